import Synchronization

/// The last `capacity` flows (oldest overwritten first), and the readers following new ones.
/// `append` is what the consumer thread calls per event: O(1) under a lock, plus one
/// non-blocking yield per follower, so a slow follower loses flows (counted, per
/// follower) and never slows the consumer.
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
    var continuation: AsyncStream<FlowRecord>.Continuation
    var lost: UInt64 = 0
  }

  public init(capacity: Int) {
    precondition(capacity > 0, "a flow buffer holds at least one flow")
    self.capacity = capacity
    state = Mutex(State(ring: Array(repeating: nil, count: capacity)))
  }

  public func append(_ record: FlowRecord) {
    state.withLock { state in
      state.ring[Int(state.total % UInt64(capacity))] = record
      state.total &+= 1
      for (id, follower) in state.followers {
        if case .dropped = follower.continuation.yield(record) {
          state.followers[id]?.lost &+= 1
        }
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
  /// falls between them and the stream), the stream (holding at most `queue` flows not yet
  /// read; more are lost), and its id for `lost(follower:)`. The stream ends when its
  /// iterator is dropped or `stop` is called.
  public func follow(queue: Int) -> (
    backlog: [FlowRecord], stream: AsyncStream<FlowRecord>, id: Int
  ) {
    let (stream, continuation) = AsyncStream.makeStream(
      of: FlowRecord.self, bufferingPolicy: .bufferingOldest(queue))
    let (backlog, id) = state.withLock { state in
      let id = state.nextFollower
      state.nextFollower += 1
      state.followers[id] = Follower(continuation: continuation)
      return (Self.ordered(state, capacity: capacity), id)
    }
    continuation.onTermination = { [weak self] _ in self?.stop(follower: id) }
    return (backlog, stream, id)
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
    for follower in followers { follower.continuation.finish() }
  }

  public func stop(follower id: Int) {
    let follower = state.withLock { $0.followers.removeValue(forKey: id) }
    follower?.continuation.finish()
  }

  private static func ordered(_ state: State, capacity: Int) -> [FlowRecord] {
    let count = Int(min(state.total, UInt64(capacity)))
    let start = Int((state.total - UInt64(count)) % UInt64(capacity))
    return (0..<count).compactMap { state.ring[(start + $0) % capacity] }
  }
}
