import AgentAPI
import AgentCore
import AgentMetrics
import CNIKit
import FoundationEssentials
import KubernetesClient
import Logging
import ServiceCore
import ServiceLifecycle

#if canImport(Glibc)
  import Glibc
#endif

/// The agent following the Kubernetes API: one informer per followed collection, their
/// changes gathered in a `ClusterMirror`, and the mirror's edits applied to the
/// `ServiceManager` (the same incremental ServiceTable `junctionctl apply` feeds standalone).
///
/// Restore, then sync, then prune: the ServiceManager restored and programmed the stored
/// state before this starts; nothing from the API is applied until every collection has
/// listed once, and then the stored state is replaced by the cluster's in one diff. While
/// the API is unreachable, at start or later, the node keeps its last-known state.
actor ClusterFollower: ServiceLifecycle.Service {
  /// Events arriving within this of each other are applied as one batch.
  static let coalesceDelay: Duration = .milliseconds(5)

  let config: ClusterConfig
  private let services: ServiceManager
  private let logger: Logger
  private nonisolated let informers: [Informer]
  /// Also the Ingress side's writes (IngressPublisher): the same TLS and credentials.
  let transport: HTTPTransport
  private var mirror = ClusterMirror()
  private var listed: Set<String> = []
  private var syncedAt: String?
  private var latency = LatencyWindow()
  /// The earliest arrival among the changes waiting to be applied.
  private var firstArrival: Double?
  private var flushScheduled = false
  /// A failed apply: the next flush replaces the table's state by the mirror's in full.
  private var needsFullSync = false
  private var mapWritesAtStart = 0
  /// The highest object resourceVersion received (see `ClusterStatus.appliedResourceVersion`),
  /// and the applies in flight.
  private var seenVersion = 0
  private var applying = 0
  private var serverWarningLogged = false

  /// The cluster configuration the settings ask for: `--kubeconfig` (with `--k8s-api-server`
  /// overriding its server), else in-cluster when the pod's environment says so (with the
  /// override), else nil (standalone).
  static func config(settings: AgentSettings, environment: [String: String])
    throws(StartFailure) -> ClusterConfig?
  {
    let read: FileReader = { path in try AtomicFile.read(path, limit: 1 << 20) }
    do {
      var config: ClusterConfig?
      if let kubeconfig = settings.kubeconfig {
        config = try ClusterConfig.kubeconfig(path: kubeconfig, readFile: read)
      } else if settings.k8sAPIServer != nil
        || environment["KUBERNETES_SERVICE_HOST"] != nil
      {
        // The service account's token and CA; with --k8s-api-server, its server (below).
        var env = environment
        if env["KUBERNETES_SERVICE_HOST"] == nil {
          env["KUBERNETES_SERVICE_HOST"] = "unset"
          env["KUBERNETES_SERVICE_PORT"] = "443"
        }
        config = try ClusterConfig.inCluster(environment: env, readFile: read)
      }
      if let server = settings.k8sAPIServer, let current = config {
        config = try current.overridingServer(server)
      }
      return config
    } catch {
      throw StartFailure(error.description)
    }
  }

  init(config: ClusterConfig, nodeName: String, serviceProxyName: String?, services: ServiceManager)
    throws(StartFailure)
  {
    self.config = config
    self.services = services
    let logger = Logger(label: "kubernetes")
    self.logger = logger
    do {
      transport = try HTTPTransport(
        config: config, readFile: { path in try AtomicFile.read(path, limit: 1 << 20) })
    } catch {
      throw StartFailure(error.description)
    }
    var informers: [Informer] = []
    let box = WeakFollower()
    for resource in APIResource.followed(nodeName: nodeName, serviceProxyName: serviceProxyName) {
      informers.append(
        Informer(resource: resource, transport: transport, logger: logger) { delivery in
          await box.follower?.receive(delivery)
        })
    }
    self.informers = informers
    box.follower = self
  }

  func run() async throws {
    mapWritesAtStart = await services.mapWrites
    logger.info(
      "following the Kubernetes API",
      metadata: ["server": "\(config.server)", "source": "\(config.source)"])
    await logServerWarning()
    await cancelWhenGracefulShutdown {
      await withTaskGroup(of: Void.self) { group in
        for informer in self.informers {
          group.addTask { await informer.run() }
        }
      }
    }
    await transport.shutdown()
  }

  private func receive(_ delivery: InformerDelivery) async {
    let kind = ResourceKind(rawValue: delivery.resource.kind)
    for change in delivery.changes {
      switch change {
      case .upsert(_, let object), .delete(_, let object):
        seenVersion = max(seenVersion, Int(object.resourceVersion ?? "") ?? 0)
      }
      switch change {
      case .upsert(_, let object):
        for problem in mirror.upsert(YAMLValue(json: object)) {
          logger.warning("skipped an object the API sent: \(problem)")
        }
      case .delete(let key, _):
        guard let kind else { continue }
        mirror.remove(
          ResourceKey(kind: kind, namespace: kind.isNamespaced ? key.namespace : "", name: key.name)
        )
      }
    }
    let arrival = delivery.arrival.timeIntervalSince1970
    if !delivery.changes.isEmpty { firstArrival = min(firstArrival ?? arrival, arrival) }
    if delivery.isList {
      listed.insert(delivery.resource.rbacName)
    } else if !delivery.isListPart {
      AgentMetrics.shared.countWatchEvents(
        resource: delivery.resource.rbacName, delivery.changes.count)
    }
    if syncedAt == nil {
      if listed.count == informers.count { await sync() }
      return
    }
    if (mirror.hasPending || needsFullSync) && !flushScheduled {
      flushScheduled = true
      Task {
        try? await Task.sleep(for: Self.coalesceDelay)
        await self.flush()
      }
    }
  }

  /// Nothing received waits to be applied: the datapath holds everything seen.
  private var isIdle: Bool {
    syncedAt != nil && !mirror.hasPending && !needsFullSync && !flushScheduled && applying == 0
  }

  /// Says once, in the log, that the server is reached through a frontend this agent
  /// translates (Cilium issue #34653); status says it for as long as it is true.
  private func logServerWarning() async {
    guard !serverWarningLogged, let warning = await serverWarning() else { return }
    serverWarningLogged = true
    logger.warning("\(warning)")
  }

  private func serverWarning() async -> String? {
    var frontends: [ServerAddressCheck.Frontend] = []
    for case .service(let service) in await services.resources.objects.values {
      let addresses = service.clusterIPs + service.externalIPs + service.loadBalancerIngress
      frontends.append(
        ServerAddressCheck.Frontend(
          service: "\(service.meta.namespace)/\(service.meta.name)",
          addresses: addresses.map { "\($0)" }))
    }
    return ServerAddressCheck.warning(server: config.server, frontends: frontends)
  }

  /// Every collection has listed: the stored state is replaced by the cluster's, one diff.
  private func sync() async {
    let edits = mirror.syncEdits(against: await services.resources)
    applying += 1
    do {
      try await services.apply(edits: edits)
      applying -= 1
      _ = mirror.takePending()
      firstArrival = nil
      syncedAt = Timestamp.now()
      logger.info(
        "synced with the Kubernetes API",
        metadata: ["objects": "\(mirror.objects.count)", "edits": "\(edits.count)"])
      await logServerWarning()
      FreedMemory.release()
    } catch {
      applying -= 1
      logger.error("cannot apply the cluster's state: \(error); retrying in 1 s")
      Task {
        try? await Task.sleep(for: .seconds(1))
        await self.retrySync()
      }
    }
  }

  private func retrySync() async {
    if syncedAt == nil { await sync() }
  }

  private func flush() async {
    flushScheduled = false
    let batch = mirror.takePending()
    var edits = batch.edits
    if needsFullSync {
      edits = mirror.syncEdits(against: await services.resources)
    }
    let arrival = firstArrival
    firstArrival = nil
    applying += 1
    do {
      try await services.apply(edits: edits)
      applying -= 1
      needsFullSync = false
    } catch {
      applying -= 1
      needsFullSync = true
      logger.error("cannot apply changes from the API: \(error); retrying")
      Task {
        try? await Task.sleep(for: .seconds(1))
        await self.retry()
      }
      return
    }
    let now = Date().timeIntervalSince1970
    var measured = 0
    for time in batch.triggerTimes {
      if let trigger = RFC3339.seconds(time), now >= trigger {
        latency.record(now - trigger)
        AgentMetrics.shared.observeNetworkProgramming(seconds: now - trigger)
        measured += 1
      }
    }
    if let arrival {
      for _ in measured..<max(measured, batch.edits.count) {
        latency.record(now - arrival)
        AgentMetrics.shared.observeNetworkProgramming(seconds: now - arrival)
      }
    }
  }

  private func retry() async {
    if !flushScheduled { await flush() }
  }

  var isSynced: Bool { syncedAt != nil }

  func status() async -> ClusterStatus {
    let statuses = informers.map(\.status)
    let now = Date()
    let failing = statuses.compactMap(\.failingSince).min()
    return ClusterStatus(
      server: config.server, source: config.source, synced: syncedAt != nil, syncedAt: syncedAt,
      unreachableSince: failing.map {
        Timestamp.format(
          seconds: Int($0.timeIntervalSince1970),
          milliseconds: Int($0.timeIntervalSince1970 * 1000) % 1000)
      },
      lastError: statuses.first(where: { !$0.notInstalled && $0.lastError != nil })?.lastError,
      resources: statuses.map { status in
        ClusterResourceStatus(
          resource: status.resource,
          state: status.notInstalled ? "not-installed" : status.synced ? "synced" : "waiting",
          objects: status.objects,
          lastEventAgeSeconds: status.lastEvent.map { now.timeIntervalSince($0) },
          relists: status.relists, errors: status.errors, malformed: status.malformed,
          lastError: status.lastError)
      },
      skippedObjects: mirror.skipped + statuses.reduce(0) { $0 + $1.malformed },
      mapWrites: await services.mapWrites - mapWritesAtStart,
      programmingLatency: LatencySummary(
        count: latency.count, p50Milliseconds: latency.percentile(0.5).map { $0 * 1000 },
        p99Milliseconds: latency.percentile(0.99).map { $0 * 1000 }),
      serverWarning: await serverWarning(),
      appliedResourceVersion: isIdle ? String(seenVersion) : nil)
  }
}

/// The informers' callbacks reach the follower through this, set once it exists.
private final class WeakFollower: @unchecked Sendable {
  weak var follower: ClusterFollower?
}
