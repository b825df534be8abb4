import Synchronization

/// The last `capacity` flows (oldest overwritten first), and the readers following new ones.
/// `append(contentsOf:)` is what the consumer thread calls per batch of events (all the ring
/// held at one poll): O(batch) under one lock, and for each follower a copy into its own
/// bounded queue plus at most one wakeup, so a slow follower loses flows (counted, per
/// follower) and never slows the consumer; a follower reads all its queue at once.
public final class FlowBuffer: Sendable {
  public let capacity: Int
  private let state: Mutex<State>

  private struct State {
    var ring: [FlowRecord?]
    /// How many records were ever appended; the next goes to ring[total % capacity].
    var total: UInt64 = 0
    var followers: [Int: Follower] = [:]
    var nextFollower = 0
  }

  private struct Follower {
    /// Wakes the reader (a wakeup pending is enough: it takes the whole queue).
    var wake: AsyncStream<Void>.Continuation
    var queue: Int
    var pending: [FlowRecord] = []
    var lost: UInt64 = 0
  }

  public init(capacity: Int) {
    precondition(capacity > 0, "a flow buffer holds at least one flow")
    self.capacity = capacity
    state = Mutex(State(ring: Array(repeating: nil, count: capacity)))
  }

  public func append(_ record: FlowRecord) {
    append(contentsOf: CollectionOfOne(record))
  }

  public func append(contentsOf records: some Collection<FlowRecord>) {
    guard !records.isEmpty else { return }
    state.withLock { state in
      for record in records {
        state.ring[Int(state.total % UInt64(capacity))] = record
        state.total &+= 1
      }
      for id in state.followers.keys {
        guard var follower = state.followers[id] else { continue }
        let room = max(0, follower.queue - follower.pending.count)
        follower.pending.append(contentsOf: records.prefix(room))
        follower.lost &+= UInt64(records.count - min(room, records.count))
        state.followers[id] = follower
        follower.wake.yield(())
      }
    }
  }

  /// Every buffered flow, oldest first.
  public func snapshot() -> [FlowRecord] {
    state.withLock { Self.ordered($0, capacity: capacity) }
  }

  /// How many flows were ever appended.
  public var total: UInt64 { state.withLock { $0.total } }

  /// A reader of the flows to come: the buffered flows at the moment it starts (so nothing
  /// falls between them and the stream), the stream of what came since, in batches
  /// (holding at most `queue` flows not yet read; more are lost), and its id for
  /// `lost(follower:)`. The stream ends when it is cancelled or `stop` is called.
  public func follow(queue: Int) -> (
    backlog: [FlowRecord], stream: AsyncStream<[FlowRecord]>, id: Int
  ) {
    let (signal, wake) = AsyncStream.makeStream(
      of: Void.self, bufferingPolicy: .bufferingNewest(1))
    let (backlog, id) = state.withLock { state in
      let id = state.nextFollower
      state.nextFollower += 1
      state.followers[id] = Follower(wake: wake, queue: queue)
      return (Self.ordered(state, capacity: capacity), id)
    }
    let wakeups = SignalIterator(signal.makeAsyncIterator())
    let stream = AsyncStream<[FlowRecord]>(
      unfolding: { [weak self] in
        while await wakeups.next() {
          guard let self else { return nil }
          let batch = self.take(follower: id)
          if !batch.isEmpty { return batch }
        }
        return nil
      }, onCancel: { [weak self] in self?.stop(follower: id) })
    return (backlog, stream, id)
  }

  /// What follower `id` has waiting, emptied.
  private func take(follower id: Int) -> [FlowRecord] {
    state.withLock { state in
      guard let pending = state.followers[id]?.pending, !pending.isEmpty else { return [] }
      state.followers[id]?.pending = []
      return pending
    }
  }

  /// Flows a follower lost because it did not read fast enough.
  public func lost(follower id: Int) -> UInt64 {
    state.withLock { $0.followers[id]?.lost ?? 0 }
  }

  public var followerCount: Int { state.withLock { $0.followers.count } }

  /// Ends every follower's stream (the agent shutting down).
  public func stopAllFollowers() {
    let followers = state.withLock { state in
      defer { state.followers = [:] }
      return Array(state.followers.values)
    }
    for follower in followers { follower.wake.finish() }
  }

  public func stop(follower id: Int) {
    let follower = state.withLock { $0.followers.removeValue(forKey: id) }
    follower?.wake.finish()
  }

  private static func ordered(_ state: State, capacity: Int) -> [FlowRecord] {
    let count = Int(min(state.total, UInt64(capacity)))
    let start = Int((state.total - UInt64(count)) % UInt64(capacity))
    return (0..<count).compactMap { state.ring[(start + $0) % capacity] }
  }
}

/// A follower's wakeups, read by one reader at a time (its stream's unfolding closure):
/// the iterator is not Sendable, the reader is the only one to touch it.
private final class SignalIterator: @unchecked Sendable {
  private var iterator: AsyncStream<Void>.Iterator

  init(_ iterator: AsyncStream<Void>.Iterator) { self.iterator = iterator }

  /// false once the follower was stopped.
  func next() async -> Bool { await iterator.next() != nil }
}
