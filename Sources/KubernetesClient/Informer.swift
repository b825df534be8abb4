import CNIKit
import FoundationEssentials
import Logging
import Synchronization

/// What an informer hands on: the real changes of one list or of some watch events.
public struct InformerDelivery: Sendable {
  public var resource: APIResource
  public var changes: [ObjectChange]
  /// True for the result of a (re)list: from now on the collection is synced.
  public var isList: Bool
  /// A page of a (re)list that has more to come: its upserts, handed on early so that no
  /// list is held whole (its deletes come with the last page, `isList`).
  public var isListPart = false
  /// When the events arrived (for the programming latency when an object carries no
  /// trigger time).
  public var arrival: Date
}

/// One followed collection's health, for the log and `junctionctl status`.
public struct InformerStatus: Equatable, Sendable {
  public var resource: String
  public var synced = false
  /// A custom resource whose CRD is not installed (404): followed as empty, checked again.
  public var notInstalled = false
  public var objects = 0
  public var lastEvent: Date?
  public var relists = 0
  public var errors = 0
  /// Objects skipped because they could not be read (no name, not JSON).
  public var malformed = 0
  /// The last failure's one line, cleared by the next success.
  public var lastError: String?
  /// Since when requests fail (nil while they succeed).
  public var failingSince: Date?

  public init(resource: String) { self.resource = resource }
}

/// List-then-watch of one collection, forever (until its task is cancelled): the `Reflector`
/// decides, this runs the requests, keeps the `InformerStore`, and hands the real changes to
/// `deliver`, in order.
public final class Informer: Sendable {
  public let resource: APIResource
  private let transport: any APITransport
  private let deliver: @Sendable (InformerDelivery) async -> Void
  private let logger: Logger
  private let pageSize: Int
  private let batchSize: Int
  private let watchTimeout: @Sendable () -> Int
  private let state: Mutex<InformerStatus>

  /// `watchTimeout` gives each watch's `timeoutSeconds` (client-go draws it from
  /// [300, 600) so that clients do not reconnect in lockstep). `pageSize` is the LIST's
  /// `limit`; a page's objects are read and handed on `batchSize` at a time.
  public init(
    resource: APIResource, transport: any APITransport, logger: Logger, pageSize: Int = 500,
    batchSize: Int = 100,
    watchTimeout: @escaping @Sendable () -> Int = { Int.random(in: 300..<600) },
    deliver: @escaping @Sendable (InformerDelivery) async -> Void
  ) {
    self.resource = resource
    self.transport = transport
    self.deliver = deliver
    self.logger = logger
    self.pageSize = pageSize
    self.batchSize = max(1, batchSize)
    self.watchTimeout = watchTimeout
    state = Mutex(InformerStatus(resource: resource.rbacName))
  }

  public var status: InformerStatus { state.withLock { $0 } }

  public func run(backoff: Backoff = Backoff()) async {
    var reflector = Reflector(backoff: backoff)
    var store = InformerStore(resource: resource)
    var action = reflector.start()
    while !Task.isCancelled {
      if action.delay > 0 {
        try? await Task.sleep(for: .milliseconds(Int(action.delay * 1000)))
        if Task.isCancelled { return }
      }
      switch action.step {
      case .list(let version):
        do {
          var relist = InformerStore.Relist()
          let (changes, listVersion) = try await listPages(
            resourceVersion: version, against: store, into: &relist)
          let deletes = store.finish(relist)
          let relisted = reflector.resourceVersion != nil
          let unnamed = relist.unnamed
          note { status in
            status.synced = true
            status.notInstalled = false
            status.objects = store.count
            status.malformed += unnamed
            if relisted { status.relists += 1 }
          }
          if unnamed > 0 {
            logger.warning("\(resource): \(unnamed) object(s) without a name skipped")
          }
          await deliver(
            InformerDelivery(
              resource: resource, changes: changes + deletes, isList: true, arrival: Date()))
          action = reflector.listed(resourceVersion: listVersion)
        } catch {
          if case .notInstalled = error {
            // Followed as empty (nothing of it can exist), so it does not hold up the sync.
            let changes = store.replace(with: []).changes
            let wasNoted = status.notInstalled
            note { status in
              status.synced = true
              status.notInstalled = true
              status.objects = 0
              status.lastError = error.description
            }
            if !wasNoted { logger.notice("\(error)") }
            await deliver(
              InformerDelivery(resource: resource, changes: changes, isList: true, arrival: Date()))
          } else {
            failed(error)
          }
          action = reflector.listFailed(error, requested: version)
        }
      case .watch(let version):
        let started = ContinuousClock.now
        var events = 0
        var failure: APIError?
        do {
          let stream = try await transport.watch(
            resource, resourceVersion: version, timeoutSeconds: watchTimeout())
          recovered()
          for try await event in stream {
            if event.type == .error {
              failure = APIError.fromStatus(event.object, resource: resource)
              break
            }
            events += 1
            reflector.observed(resourceVersion: event.object.resourceVersion)
            if event.type == .bookmark { continue }
            do {
              if let change = try store.apply(event) {
                let count = store.count
                note { status in
                  status.objects = count
                  status.lastEvent = Date()
                }
                await deliver(
                  InformerDelivery(
                    resource: resource, changes: [change], isList: false, arrival: Date()))
              }
            } catch {
              note { $0.malformed += 1 }
              logger.warning("\(resource): skipped a malformed event: \(error)")
            }
          }
        } catch let error as APIError {
          failure = error
        } catch {
          failure = .unreachable(server: "", detail: "\(error)")
        }
        if let failure, !failure.needsRelist { failed(failure) }
        if let failure, failure.needsRelist {
          logger.info("\(resource): \(failure)")
        }
        let elapsed = ContinuousClock.now - started
        let seconds =
          Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        action = reflector.watchEnded(events: events, duration: seconds, error: failure)
      }
    }
  }

  /// Every page of one LIST (following `continue`), with the list's version. An expired
  /// continue token starts the list again as a consistent read.
  /// Reads a list page by page, and each page `batchSize` objects at a time: each batch's
  /// changes against `store` (recorded in `relist`) are delivered at once (`isListPart`) but
  /// for the very last batch's, returned with the list's version for the caller to deliver
  /// with what it adds.
  /// Neither the pages nor a page's objects are gathered as trees: the API server answers a
  /// LIST at version 0 in one page, and 10,000 EndpointSlices as JSON trees were 40 MiB held
  /// at once, the initial sync's peak (bench/results/agent-memory.md). Batches of 100, not
  /// 500: each batch's parse trees are freed among the objects the follower keeps of it, and
  /// smaller ones left fewer holes the allocator cannot return (an initial sync of 10,000 × 10
  /// peaked 1–2 MiB lower and settled up to 1 MiB lower, no slower).
  private func listPages(
    resourceVersion: String?, against store: InformerStore,
    into relist: inout InformerStore.Relist
  ) async throws(APIError) -> ([ObjectChange], String) {
    var token: String?
    repeat {
      let page = try await transport.list(
        resource, limit: pageSize, continueToken: token, resourceVersion: resourceVersion)
      recovered()
      token = page.continueToken
      var items = page.makeItemIterator()
      var batch: [JSONValue] = []
      batch.reserveCapacity(min(batchSize, page.itemCount))
      var remaining = page.itemCount
      while let item = items.next() {
        batch.append(item)
        remaining -= 1
        guard batch.count == batchSize || remaining == 0 else { continue }
        let found = store.changes(inPage: batch, relist: &relist)
        batch.removeAll(keepingCapacity: true)
        if token == nil && remaining == 0 { return (found, page.resourceVersion) }
        if !found.isEmpty {
          var part = InformerDelivery(
            resource: resource, changes: found, isList: false, arrival: Date())
          part.isListPart = true
          await deliver(part)
        }
      }
      if token == nil { return ([], page.resourceVersion) }
    } while !Task.isCancelled
    throw .unreachable(server: "", detail: "cancelled")
  }

  private func note(_ body: (inout InformerStatus) -> Void) {
    state.withLock { body(&$0) }
  }

  private func recovered() {
    note { status in
      if status.failingSince != nil || status.lastError != nil {
        status.failingSince = nil
        status.lastError = nil
      }
    }
  }

  private func failed(_ error: APIError) {
    let first: Bool = state.withLock { status in
      status.errors += 1
      let first = status.lastError != error.description
      status.lastError = error.description
      if status.failingSince == nil { status.failingSince = Date() }
      return first
    }
    // One line per new failure, not one per retry.
    if first {
      logger.warning("\(resource): \(error)")
    } else {
      logger.debug("\(resource): \(error)")
    }
  }
}
