import AgentAPI
import AgentCore
import Logging
import NetKit
import Synchronization

/// Set once, when shutdown begins: from then on every request is answered 503.
final class ShutdownFlag: Sendable {
  private let flag = Atomic<Bool>(false)

  var isSet: Bool { flag.load(ordering: .acquiring) }
  func set() { flag.store(true, ordering: .releasing) }
}

/// The agent's endpoints: memory, the state files, and the datapath's view of each.
/// One actor, so changes are serialized; every change is persisted before memory moves.
actor EndpointRegistry {
  enum Failure: Error {
    case shuttingDown
    case persist(FileError)
    /// The plugin issued this request before another of the same endpoint that was already
    /// applied (`RequestOrder`): it lost a race in a thawed agent's backlog.
    case superseded
  }

  private var table: EndpointTable {
    didSet { version &+= 1 }
  }
  /// Changes whenever an endpoint is added, changed or removed (see ServiceManager.version).
  private(set) var version: UInt64 = 0
  private let store: FileEndpointStore
  private let datapath: any Datapath
  private let socketPath: String
  private let shutdown: ShutdownFlag
  private let logger: Logger
  /// Socket LB's pods (--socket-lb without --socket-lb-hostns-only); nil otherwise.
  private let podSockets: PodSocketTable?
  /// The last state write that failed, until one succeeds again (reported by /v1/healthz).
  private(set) var stateProblem: String?
  /// The plugin's newest applied request per endpoint, so an older one read late changes
  /// nothing (a registration made after its pod's deletion would stay for good).
  private var requestOrder = RequestOrder()

  init(
    endpoints: [Endpoint], store: FileEndpointStore, datapath: any Datapath, socketPath: String,
    shutdown: ShutdownFlag, logger: Logger, podSockets: PodSocketTable? = nil
  ) {
    self.podSockets = podSockets
    self.table = EndpointTable(endpoints)
    self.store = store
    self.datapath = datapath
    self.socketPath = socketPath
    self.shutdown = shutdown
    self.logger = logger
  }

  var count: Int { table.count }

  // MARK: - API

  func list() -> [Endpoint] { table.sorted.map(live) }

  func get(_ id: String) -> Endpoint? { table[id].map(live) }

  /// `issuedAt`: the plugin's `IssuedAt` reading, when the request carried one.
  func put(_ spec: EndpointSpec, issuedAt: UInt64? = nil) throws(Failure)
    -> EndpointTable.PutOutcome
  {
    // Checked here, inside the actor, so a request that raced the signal changes nothing.
    if shutdown.isSet { throw .shuttingDown }
    try refuseIfSuperseded(spec.id, issuedAt: issuedAt, doing: "registration")
    do {
      let outcome = try table.put(spec, now: Timestamp.now(), store: store)
      stateProblem = nil
      requestOrder.applied(spec.id, issuedAt: issuedAt)
      switch outcome {
      case .created(let endpoint):
        logger.info("endpoint registered", metadata: metadata(endpoint))
      case .replaced(let endpoint, let previous):
        if previous.spec.hostIfindex != endpoint.spec.hostIfindex {
          datapath.forget(hostIfindex: previous.spec.hostIfindex)
        }
        let dropped = previous.spec.ips.filter { !endpoint.spec.ips.contains($0) }
        if !dropped.isEmpty { datapath.forgetFlows(ips: dropped) }
        logger.info(
          previous.spec == endpoint.spec ? "endpoint re-registered unchanged" : "endpoint replaced",
          metadata: metadata(endpoint))
      }
      podSockets?.register(spec)
      return outcome
    } catch {
      stateProblem = "\(error)"
      logger.error("cannot persist endpoint", metadata: ["id": "\(spec.id)", "error": "\(error)"])
      throw .persist(error)
    }
  }

  /// True when it existed. `issuedAt`: as for `put`.
  func delete(_ id: String, issuedAt: UInt64? = nil) throws(Failure) -> Bool {
    if shutdown.isSet { throw .shuttingDown }
    try refuseIfSuperseded(id, issuedAt: issuedAt, doing: "deregistration")
    do {
      if let existing = table[id] { forgetFlows(of: existing.spec) }
      let removed = try table.delete(id: id, store: store)
      // Also when nothing was registered: a registration issued before it, read later, is
      // then refused.
      requestOrder.applied(id, issuedAt: issuedAt)
      guard let removed else { return false }
      stateProblem = nil
      forgetDatapathState(of: removed.spec)
      podSockets?.forget(removed.spec)
      logger.info("endpoint deregistered", metadata: metadata(removed))
      return true
    } catch {
      stateProblem = "\(error)"
      logger.error("cannot remove endpoint state", metadata: ["id": "\(id)", "error": "\(error)"])
      throw .persist(error)
    }
  }

  private func refuseIfSuperseded(_ id: String, issuedAt: UInt64?, doing what: String)
    throws(Failure)
  {
    guard requestOrder.isStale(id, issuedAt: issuedAt) else { return }
    logger.warning(
      "refused a \(what) the plugin issued before a newer request of the same endpoint",
      metadata: ["id": "\(id)", "issued_at": "\(issuedAt ?? 0)"])
    throw .superseded
  }

  /// The conntrack and affinity entries of an endpoint's addresses, which a later pod given
  /// the same address would inherit. Dropped *before* its removal is persisted, on every
  /// path (DEL, the deletion queue, reconcile): an agent killed in between still has the
  /// endpoint at its next start, and the retried DEL or replay drops them again (the soak
  /// found 2 + 2 entries left by agents SIGKILLed between the two in 1,000 chained cycles);
  /// its pod sends nothing by then (DEL removed or detached its interface first).
  private func forgetFlows(of spec: EndpointSpec) {
    let flows = datapath.forgetFlows(ips: spec.ips)
    if flows > 0 {
      logger.debug(
        "removed the conntrack and affinity entries of an endpoint being deregistered",
        metadata: ["id": "\(spec.id)", "entries": "\(flows)"])
    }
  }

  /// What else the datapath keeps per endpoint, dropped once it is deregistered: its
  /// counters (an entry a kill leaves behind goes at the start-up sweep), and the flows
  /// again (a packet that raced the removal).
  private func forgetDatapathState(of spec: EndpointSpec) {
    datapath.forget(hostIfindex: spec.hostIfindex)
    forgetFlows(of: spec)
  }

  /// With the datapath's counters and attach state when it is loaded.
  private func live(_ endpoint: Endpoint) -> Endpoint {
    guard datapath.isLoaded else { return endpoint }
    var result = endpoint
    result.counters =
      datapath.counters(hostIfindex: endpoint.spec.hostIfindex) ?? EndpointCounters()
    result.datapathAttached = datapath.isAttached(hostIfindex: endpoint.spec.hostIfindex)
    return result
  }

  private func metadata(_ endpoint: Endpoint) -> Logger.Metadata {
    [
      "id": "\(endpoint.id)", "host_if": "\(endpoint.spec.hostInterface)",
      "ifindex": "\(endpoint.spec.hostIfindex)",
      "ips": "\(endpoint.spec.ips.joined(separator: ","))",
    ]
  }

  // MARK: - Start-up

  /// Deregisters the endpoints the CNI plugin queued while the agent was down (or did not
  /// answer), and removes the queue files (`DeleteQueue.action` decides per record). A
  /// record that cannot be applied stays for the next replay. At start and every
  /// `DeleteQueue.replayInterval` seconds.
  func replayDeleteQueue() {
    let entries: [DeleteQueue.Entry]
    do {
      entries = try DeleteQueue.entries(socketPath: socketPath)
    } catch {
      logger.error("cannot read the deletion queue", metadata: ["error": "\(error)"])
      return
    }
    for entry in entries {
      switch entry.record {
      case .failure(let problem):
        logger.warning(
          "dropping an unreadable deletion record",
          metadata: ["file": "\(entry.path)", "error": "\(problem)"])
        _ = try? AtomicFile.remove(entry.path)
      case .success(let record):
        guard DeleteQueue.belongs(record, toSocket: socketPath) else {
          logger.debug(
            "deletion record is for another agent",
            metadata: ["file": "\(entry.path)", "socket": "\(record.socket ?? "")"])
          continue
        }
        do {
          let registered = table[record.id]
          switch DeleteQueue.action(
            for: record, registeredAt: registered?.createdAt,
            hostInterfaceAttached: registered.map { hostInterfaceAttached($0.spec) } ?? false,
            newestApplied: requestOrder.newestApplied(record.id))
          {
          case .deregister:
            if let registered { forgetFlows(of: registered.spec) }
            if let removed = try table.delete(id: record.id, store: store) {
              forgetDatapathState(of: removed.spec)
              podSockets?.forget(removed.spec)
              logger.info(
                "endpoint deregistered from the deletion queue",
                metadata: ["id": "\(record.id)", "queued_at": "\(record.queuedAt)"])
            }
          case .dropRecord:
            if let registered {
              logger.info(
                "queued deletion is older than the endpoint's registration; endpoint kept",
                metadata: [
                  "id": "\(record.id)", "queued_at": "\(record.queuedAt)",
                  "registered_at": "\(registered.createdAt)",
                ])
            } else {
              logger.debug(
                "queued deletion of an unknown endpoint", metadata: ["id": "\(record.id)"])
            }
          }
          requestOrder.applied(record.id, issuedAt: record.issuedAt)
          try AtomicFile.remove(entry.path)
        } catch {
          logger.error(
            "cannot apply a queued deletion; kept for the next start",
            metadata: ["id": "\(record.id)", "error": "\(error)"])
        }
      }
    }
  }

  /// Whether the endpoint's host interface exists with the ifindex it was registered with
  /// and (with a datapath loaded) runs both endpoint programs; true when that cannot be
  /// told (so a doubt keeps the endpoint).
  private func hostInterfaceAttached(_ spec: EndpointSpec) -> Bool {
    do {
      guard let info = try RouteSocket().link(named: spec.hostInterface),
        Int(info.index) == spec.hostIfindex
      else { return false }
    } catch {
      return true
    }
    return !datapath.isLoaded || datapath.isAttached(hostIfindex: spec.hostIfindex)
  }

  /// Checks every endpoint against the kernel: gone netns or host interface → removed;
  /// live → the datapath re-attaches whatever is missing. Nothing is flushed.
  func reconcile() {
    let routes = Result { () throws(NetKitError) in try RouteSocket() }
    var kept = 0
    var removed = 0
    for endpoint in table.sorted {
      let spec = endpoint.spec
      let namespace: ReconcileDecision.NamespaceState
      do {
        _ = try NetworkNamespace.open(spec.netns)
        namespace = .present
      } catch {
        switch error {
        case .notFound: namespace = .missing
        case .notANamespace: namespace = .notANamespace
        default: namespace = .unknown("\(error)")
        }
      }
      let link: ReconcileDecision.LinkState
      switch routes {
      case .failure(let error): link = .unknown("\(error)")
      case .success(let socket):
        do {
          if let info = try socket.link(named: spec.hostInterface) {
            link = .present(index: Int(info.index))
          } else {
            link = .missing
          }
        } catch {
          link = .unknown("\(error)")
        }
      }
      switch ReconcileDecision.decide(spec: spec, namespace: namespace, link: link) {
      case .remove(let reason):
        do {
          forgetFlows(of: spec)
          _ = try table.delete(id: endpoint.id, store: store)
          forgetDatapathState(of: spec)
          podSockets?.forget(spec)
          removed += 1
          logger.info(
            "stale endpoint removed", metadata: ["id": "\(endpoint.id)", "reason": "\(reason)"])
        } catch {
          logger.error(
            "cannot remove a stale endpoint",
            metadata: ["id": "\(endpoint.id)", "error": "\(error)"])
        }
      case .keepUnverified(let reason):
        kept += 1
        logger.warning(
          "endpoint kept unverified", metadata: ["id": "\(endpoint.id)", "reason": "\(reason)"])
      case .keep:
        kept += 1
        if datapath.isLoaded {
          do {
            try datapath.reattach(hostIfindex: spec.hostIfindex)
          } catch {
            logger.warning(
              "cannot re-attach the endpoint programs",
              metadata: ["id": "\(endpoint.id)", "error": "\(error)"])
          }
        }
      }
    }
    logger.info("reconciled endpoints", metadata: ["kept": "\(kept)", "removed": "\(removed)"])
    sweepCounters()
  }

  /// Deletes the counter entries that belong to no registered endpoint and no link on the
  /// node (`CounterSweep`). Inside the actor, so no registration or deletion interleaves;
  /// the keys are read before the links, so a link born after the read cannot own a key
  /// judged stale. Returns how many went.
  @discardableResult
  func sweepCounters() -> Int {
    guard datapath.isLoaded else { return 0 }
    let stale: [Int]
    do {
      let keys = try datapath.counterKeys()
      if keys.isEmpty { return 0 }
      let links = try RouteSocket().links().map { Int($0.index) }
      stale = CounterSweep.staleKeys(
        counterKeys: keys, registeredIfindexes: Set(table.endpoints.values.map(\.spec.hostIfindex)),
        linkIndexes: Set(links))
    } catch {
      logger.warning("cannot sweep the endpoint counters", metadata: ["error": "\(error)"])
      return 0
    }
    for ifindex in stale { datapath.forget(hostIfindex: ifindex) }
    if !stale.isEmpty {
      logger.info(
        "removed counter entries of no endpoint",
        metadata: [
          "count": "\(stale.count)",
          "ifindexes": "\(stale.map(String.init).joined(separator: ","))",
        ])
    }
    return stale.count
  }
}
