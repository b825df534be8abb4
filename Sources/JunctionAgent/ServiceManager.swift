import AgentAPI
import AgentCore
import AgentMetrics
import CNIKit
import FoundationEssentials
import Logging
import ServiceCore

/// The node's services: the Kubernetes objects applied to it, the stable ids, and the
/// datapath programmed from them. One actor, so changes are serialized.
///
/// A change is all or nothing: the whole input is validated first (every problem reported
/// with its field path), then journaled, then programmed, then committed to the table; if
/// programming fails, the maps and the stored state go back to what they were and the error
/// is returned, so the state on disk, in memory and in the maps agree.
actor ServiceManager {
  enum Failure: Error, CustomStringConvertible {
    case persist(String)
    case datapath(String)

    var description: String {
      switch self {
      case .persist(let why): "cannot store the services: \(why)"
      case .datapath(let why): "cannot program the datapath: \(why)"
      }
    }
  }

  /// Every change of it bumps `version` (a didSet that does not read the old value, so
  /// changes still happen in place).
  private var table: ServiceTable {
    didSet { version &+= 1 }
  }
  /// Changes whenever the Services or the objects behind them do: a flow follower rebuilds
  /// its names only then.
  private(set) var version: UInt64 = 0
  private var store: ServiceStore
  /// Redirects from the agent's configuration (--proxy-redirect: an externally managed
  /// proxy, or tests), always in force; `setProxyRedirects` adds the proxy manager's.
  private let staticProxyRedirects: [ProxyRedirect]
  private var dynamicProxyRedirects: [ProxyRedirect] = []
  /// Puts the node's proxy routing in place (true) or takes it away (false): present while
  /// any redirect is, installed before the first redirected frontend is programmed and
  /// removed after the last is gone (nil in tests without a kernel).
  private let proxyRouting: (@Sendable (_ present: Bool) throws -> Void)?
  private let datapath: any Datapath
  private let logger: Logger
  /// The L7 side (`--envoy`): told after every committed change; nil without Envoy.
  private var proxy: ProxyWiring?

  /// Connects the L7 side and hands it the current state.
  func connect(proxy: ProxyWiring) {
    self.proxy = proxy
    proxy.resourcesChanged(table.resources, frontends: table.frontends.values)
  }

  /// Loads what a previous run stored and programs it: maps pinned from a previous run are
  /// rewritten with the same values, so a restart changes nothing a packet can see.
  /// `nodeName` is this node's (`--node-name`): the applied `Node` of that name gives the
  /// zone for topology-aware backends, and endpoints with that nodeName are its local ones
  /// (Local traffic policies). `nodeAddresses` (the `--devices` addresses) and `northSouth`
  /// (`--lb-mode`) say where NodePorts listen and which protocols use DSR; a change of them
  /// between runs is programmed by the first write below, which rewrites every frontend with
  /// its flags.
  init(
    stateDirectory: String, nodeName: String, nodeAddresses: [IPAddress] = [],
    northSouth: NorthSouthSettings = NorthSouthSettings(), proxyRedirects: [ProxyRedirect] = [],
    proxyRouting: (@Sendable (_ present: Bool) throws -> Void)? = nil, datapath: any Datapath,
    logger: Logger
  ) throws {
    staticProxyRedirects = proxyRedirects
    self.proxyRouting = proxyRouting
    // Also takes away what a previous run left when nothing is redirected now: best effort,
    // so a node without policy routing still starts when it needs none.
    if proxyRedirects.isEmpty {
      try? proxyRouting?(false)
    } else {
      try proxyRouting?(true)
    }
    store = ServiceStore(directory: PathNames.join(stateDirectory, "services"))
    let stored = try store.load()
    if let warning = stored.warning { logger.warning("\(warning)") }
    let restored = ServiceTable(
      resources: stored.resources, ids: stored.ids,
      northSouth: NorthSouthPolicy(nodeAddresses: nodeAddresses, settings: northSouth),
      nodeName: nodeName, proxyRedirects: proxyRedirects)
    try datapath.programServices(DesiredStateDiff(from: DesiredState(), to: restored.desiredState))
    if !restored.frontends.isEmpty {
      logger.info("services restored", metadata: ["frontends": "\(restored.frontends.count)"])
    }
    table = restored
    self.datapath = datapath
    self.logger = logger
  }

  /// Validates, stores (one journal line) and programs one apply or delete. The work is
  /// proportional to what the input touches, not to how many services the node holds.
  /// Takes the text (`consuming`), so that it is freed once decoded (see `ApplyPlan`).
  func change(yaml: consuming String, delete: Bool) throws(Failure) -> ResourceChange {
    let outcome: Result<ResourceChange, Failure>
    do {
      outcome = .success(try planAndProgram(yaml: consume yaml, delete: delete))
    } catch {
      outcome = .failure(error)
    }
    // Parsing, planning and journaling a large input leave as many megabytes freed in the
    // allocator's arenas (the plan is gone once planAndProgram returns): hand them back, or
    // the resident size stays at the apply's peak (bench/results/agent-memory.md).
    FreedMemory.release()
    return try outcome.get()
  }

  private func planAndProgram(yaml: consuming String, delete: Bool) throws(Failure)
    -> ResourceChange
  {
    let plan = ApplyPlan(delete ? .delete : .apply, yaml: consume yaml)
    let skipped = plan.skipped.map(\.description)
    let edits = plan.edits
    let update: ServiceTable.Update
    do {
      update = try plan.update(for: table)
    } catch {
      return ResourceChange(
        skipped: skipped, notes: plan.notes, errors: error.messages,
        error: "\(error.messages.count) problem(s); nothing was \(delete ? "deleted" : "applied")")
    }
    try program(edits, update)
    let changed = plan.resources.map(\.key.description)
    logger.info(
      delete ? "resources deleted" : "resources applied",
      metadata: ["objects": "\(changed.count)", "frontends": "\(table.frontends.count)"])
    return ResourceChange(
      changed: changed, skipped: skipped, notes: plan.notes + update.notes + update.conflicts)
  }

  /// Edits from the Kubernetes API, which is the source of truth: a frontend conflict is
  /// reported (the first Service by namespace/name keeps the frontend), not refused, as the
  /// cluster already holds both objects. Returns the notes and conflicts of what changed.
  @discardableResult
  func apply(edits: [ResourceEdit]) throws(Failure) -> [String] {
    if edits.isEmpty { return [] }
    // Not refusing conflicts, preparing cannot fail.
    guard let update = try? table.prepare(edits, refusingNewConflicts: false) else { return [] }
    try program(edits, update)
    return update.notes + update.conflicts
  }

  /// Replaces the L7 proxy's redirect set (the proxy manager's whole current set; the
  /// configured static ones stay): the named Services' frontends are re-planned and
  /// programmed in one change, all or nothing, as a resource change is. Returns its notes.
  @discardableResult
  func setProxyRedirects(_ redirects: [ProxyRedirect]) throws(Failure) -> [String] {
    let all = staticProxyRedirects + redirects
    guard ProxyRedirectIndex(all) != table.proxyRedirects else {
      dynamicProxyRedirects = redirects
      return []
    }
    guard let update = try? table.prepare([], proxyRedirects: all, refusingNewConflicts: false)
    else { return [] }
    if !all.isEmpty { try routeToProxy(true) }
    try program([], update)
    dynamicProxyRedirects = redirects
    if all.isEmpty {
      // The maps no longer send anything to it: a rule left behind only costs a lookup.
      do {
        try proxyRouting?(false)
      } catch {
        logger.warning("cannot remove the proxy routing: \(error)")
      }
    }
    logger.info(
      "proxy redirects set",
      metadata: [
        "redirects": "\(table.proxyRedirects.redirects.map(\.description))",
        "frontends": "\(update.diff.changedFrontends.count)",
      ])
    return update.notes + update.conflicts
  }

  private func routeToProxy(_ present: Bool) throws(Failure) {
    do {
      try proxyRouting?(present)
    } catch {
      throw .datapath("cannot install the proxy routing: \(error)")
    }
  }

  /// The redirects in force (static and the proxy manager's), sorted.
  var proxyRedirects: [ProxyRedirect] { table.proxyRedirects.redirects }

  /// The objects the node holds now (restored, applied, or followed).
  var resources: ResourceSet { table.resources }

  /// Service map writes so far (each step of each diff programmed).
  private(set) var mapWrites = 0

  /// Journals, programs and commits one prepared update (see the type's comment).
  private func program(_ edits: [ResourceEdit], _ update: ServiceTable.Update) throws(Failure) {
    do {
      try store.append(edits, update)
    } catch {
      throw .persist("\(error)")
    }
    do {
      let started = ContinuousClock.now
      try datapath.programServices(update.diff)
      AgentMetrics.shared.observeDatapathProgramming(
        seconds: (ContinuousClock.now - started).metricSeconds)
    } catch {
      // The maps keep what they had where the diff did not get to; put back the rest, and
      // make the stored state say what the maps hold.
      try? datapath.programServices(update.diff.reversed)
      try? store.rewrite(table.resources, table.ids)
      throw .datapath("\(error)")
    }
    mapWrites += update.diff.stepCount
    table.commit(update)
    proxy?.resourcesChanged(table.resources, frontends: table.frontends.values)
    do {
      // The snapshot is written off the actor: the changes that follow wait for a rename,
      // not for the whole state to be encoded and written (see ServiceStore).
      if let compaction = try store.compactIfDue(table.resources, table.ids) {
        let logger = logger
        Task.detached(priority: .utility) {
          do {
            try compaction.run()
            // Encoding the snapshot of every object left its buffers free in this
            // thread's arena: hand them back, or the resident size climbs by that much
            // at each compaction (bench/results/k8s-sync.md).
            FreedMemory.release()
          } catch {
            logger.warning("cannot fold the service journal into a snapshot: \(error)")
          }
        }
      }
    } catch {
      // The journal still holds every change; a later compaction will try again.
      logger.warning("cannot fold the service journal into a snapshot: \(error)")
    }
  }

  /// Services (namespace/name), frontends and distinct backends, for /metrics: counted
  /// again only after the maps changed (O(backends) at 10,000 Services; scrapes repeat).
  func metricCounts() -> (services: Int, frontends: Int, backends: Int) {
    if let counted = countedMetrics, counted.atWrites == mapWrites { return counted.counts }
    let frontends = table.frontends.values
    let counts = (
      Set(frontends.map(\.service)).count, frontends.count,
      Set(frontends.flatMap { $0.backends.map(\.key) }).count
    )
    countedMetrics = (mapWrites, counts)
    return counts
  }
  private var countedMetrics:
    (atWrites: Int, counts: (services: Int, frontends: Int, backends: Int))?

  /// Every frontend, by id. Without `backends` their lists are left empty: flows are named
  /// by frontend, and at 10,000 Services × 10 (Pod refs) the 100,000 backend statuses took
  /// each flow name refresh (GET /v1/flows, and once a second per follower) ≈ 300 ms and
  /// 27 MiB of peak (bench/results/agent-memory.md).
  func list(backends: Bool = true) -> [ServiceStatus] {
    frontendsByID.map { Self.status($0, backends: backends) }
  }

  private var frontendsByID: [ServiceFrontend] { table.frontends.values.sorted { $0.id < $1.id } }

  /// GET /v1/services's body: `list()` as JSON, each status made as it is written. Made all at
  /// once, the 10,000 statuses' 100,000 backend strings were small blocks spread through the
  /// heap, and what the listing left behind stayed resident: the agent's RSS 1–12 MiB higher
  /// after one listing (bench/results/agent-memory.md).
  func listJSON() -> [UInt8] {
    let frontends = frontendsByID
    return ServiceStatus.jsonArray(
      frontends.lazy.map { Self.status($0, backends: true) }, frontends: frontends.count,
      backends: frontends.reduce(0) { $0 + $1.backends.count })
  }

  private static func status(_ frontend: ServiceFrontend, backends: Bool) -> ServiceStatus {
    ServiceStatus(
      id: Int(frontend.id), frontend: frontend.key.description, type: frontend.type.rawValue,
      service: frontend.service.description, portName: frontend.portName,
      backends: !backends
        ? []
        : frontend.backends.map {
          ServiceStatus.Backend(
            id: $0.id, address: $0.key.description, state: $0.state.rawValue,
            local: $0.isLocal)
        },
      affinityTimeout: frontend.affinityTimeout, algorithm: frontend.algorithm.rawValue,
      mode: frontend.isExternal ? (frontend.usesDSR ? "DSR" : "SNAT") : nil,
      trafficPolicy: frontend.isLocalPolicy ? "Local" : "Cluster",
      proxyPort: frontend.proxyPort.map(Int.init))
  }

  func redirectPolicies() -> [RedirectPolicyStatus] {
    table.localRedirects.map { policy in
      RedirectPolicyStatus(
        kind: policy.policy.kind.rawValue, namespace: policy.policy.namespace,
        name: policy.policy.name, matcher: policy.matcher, service: policy.service?.description,
        skipRedirectFromBackend: policy.skipRedirectFromBackend,
        frontends: policy.frontends.map {
          RedirectPolicyStatus.Frontend(
            frontend: $0.key.description, redirected: $0.redirected,
            backends: $0.backends.map(\.description))
        },
        localBackends: policy.pods.map {
          RedirectPolicyStatus.LocalBackend(pod: $0.name.description, address: "\($0.address)")
        }, notes: policy.notes)
    }
  }
}
