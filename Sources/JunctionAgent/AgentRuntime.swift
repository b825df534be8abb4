import AgentAPI
import AgentCore
import AgentMetrics
import Dispatch
import FlowPipeline
import Hummingbird
import KubernetesClient
import Logging
import NetKit
import ProxyManager
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The agent from start to clean exit: checks that can refuse to start (each a one-line
/// `StartFailure`, printed before anything else is logged), loading and reconciling the
/// state, then serving until SIGTERM/SIGINT.
struct AgentRuntime {
  let settings: AgentSettings
  let shutdownGrace: Double
  /// Seconds between sweeps of counter entries of no endpoint.
  let counterSweepInterval: Double
  /// Seconds between replays of the deletion queue while running.
  let deleteQueueInterval: Double
  /// Seconds between sweeps of expired conntrack entries (`ConntrackExpiry`).
  var conntrackSweepInterval: Double = ConntrackExpiry.defaultInterval
  /// Entries those sweeps deleted, IPv4 and IPv6 (/metrics `junction_conntrack_swept_total`).
  let conntrackSwept = ConntrackSweptTotals()
  let logger: Logger
  let datapath: any Datapath
  let registry: EndpointRegistry
  let services: ServiceManager
  let shutdown: ShutdownFlag
  /// Held (flock) for the process's life: one agent per state directory.
  let stateLock: Int32
  /// `--socket-lb`: the cgroup attachments, held for the process's life.
  let socketLB: SocketLoadBalancer?
  /// The Kubernetes API the Services come from; nil standalone.
  let cluster: ClusterFollower?
  /// The last --flow-buffer-size flows; fed by `flowConsumer` (nil without a datapath).
  let flows: FlowBuffer
  let flowConsumer: FlowConsumer?
  /// `--prometheus-serve-addr`: where /metrics is served; nil: not served.
  var metricsAddress: MetricsAddress? = nil
  /// `--envoy`: the node's Envoy and its configuration; nil: L7 resources are not served.
  var proxy: ProxyManager? = nil
  /// The L7 redirect's socket lookup and its listener map (nil without a datapath, or when
  /// the kernel refused it: redirects then keep tc's bpf_sk_assign).
  var proxyListeners: ProxyListeners? = nil

  static func start(
    settings: AgentSettings, cluster: ClusterConfig?, shutdownGrace: Double,
    counterSweepInterval: Double = CounterSweep.interval,
    deleteQueueInterval: Double = DeleteQueue.replayInterval,
    conntrackSweepInterval: Double = ConntrackExpiry.defaultInterval,
    metricsAddress: MetricsAddress? = nil
  ) throws(StartFailure) -> AgentRuntime {
    let level = Logger.Level(rawValue: settings.logLevel) ?? .info
    LoggingSystem.bootstrap { label in LogfmtHandler(label: label, level: level) }
    let logger = Logger(label: "junction-agent")

    // 1. The socket: refuse a live one, note a stale one (removed once nothing can fail).
    let staleSocket = try SocketFile.preflight(settings.socket)

    // 2. The state directory, locked against a second agent using it.
    let store = FileEndpointStore(layout: StateLayout(stateDirectory: settings.stateDir))
    do {
      try store.prepare()
    } catch {
      throw StartFailure("cannot prepare state dir \(settings.stateDir): \(error)")
    }
    let lock = try lockDirectory(settings.stateDir)

    // 2b. The external devices, read once: their addresses are the node's NodePort
    // frontends. Before the datapath, so a missing device leaves nothing behind.
    let devices: [NodeDevice]
    do {
      devices = try NodeDevices.read(settings.devices)
    } catch {
      close(lock)
      throw StartFailure("\(error)")
    }

    // 3. The datapath (loads or reuses the pins under --bpf-fs).
    let datapath: any Datapath
    do {
      datapath = try makeDatapath(
        bpfFS: settings.bpfFS, objectDirectory: settings.bpfObjects, mapSizes: settings.mapSizes,
        devices: devices, tcHook: try resolveTCHook(settings.tcHook), logger: logger)
    } catch {
      close(lock)
      throw StartFailure("\(error)")
    }
    do {
      try datapath.configureNorthSouth(settings.northSouth)
    } catch {
      close(lock)
      throw StartFailure("cannot write the node config (jnc_node_cfg): \(error)")
    }
    // 3b. Flow events: the level the datapath writes at, and the ring's reader.
    let flows = FlowBuffer(capacity: settings.flows.bufferSize)
    let flowConsumer: FlowConsumer?
    do {
      try datapath.setMonitorLevel(settings.flows.level)
      flowConsumer = try datapath.makeFlowConsumer(
        buffer: flows, logger: Logger(label: "flows"))
    } catch {
      close(lock)
      throw StartFailure("cannot set up the flow events (jnc_mon_cfg, jnc_events): \(error)")
    }

    // 4. The stored endpoints.
    let loaded: (endpoints: [Endpoint], problems: [String])
    do {
      loaded = try store.loadAll()
    } catch {
      close(lock)
      throw StartFailure("cannot read state dir \(settings.stateDir): \(error)")
    }

    // 5. The socket's directory, and the stale socket out of the way.
    do {
      try AtomicFile.makeDirectory(PathNames.directory(of: settings.socket), mode: 0o755)
    } catch {
      close(lock)
      throw StartFailure("cannot create the socket directory: \(error)")
    }
    if staleSocket {
      guard unlink(settings.socket) == 0 || errno == ENOENT else {
        let code = errno
        close(lock)
        throw StartFailure(
          "cannot remove stale socket \(settings.socket): \(String(cString: strerror(code)))")
      }
    }

    logger.info(
      "starting",
      metadata: [
        "version": "\(AgentVersion.current)", "node": "\(settings.nodeName)",
        "socket": "\(settings.socket)",
        "state_dir": "\(settings.stateDir)", "bpf_fs": "\(settings.bpfFS)",
        "devices": "\(settings.devices.joined(separator: ","))", "pid": "\(getpid())",
        "node_addresses":
          "\(NodeDevices.addresses(of: devices).map(\.description).joined(separator: ","))",
        "lb_mode": "\(settings.northSouth.lbMode.rawValue)",
        "datapath_loaded": "\(datapath.isLoaded)",
        "lb_services_max": "\(settings.mapSizes.lbServices)",
        "lb_backends_max": "\(settings.mapSizes.lbBackends)",
        "conntrack_max": "\(settings.mapSizes.conntrack)",
        "affinity_max": "\(settings.mapSizes.affinity)",
        "monitor_level": "\(settings.flows.level.rawValue)",
        "flow_buffer_size": "\(settings.flows.bufferSize)",
      ])
    if staleSocket {
      logger.info("removed a stale socket", metadata: ["socket": "\(settings.socket)"])
    }
    for problem in loaded.problems {
      logger.warning("ignoring a state file", metadata: ["problem": "\(problem)"])
    }
    logger.info("loaded endpoints", metadata: ["count": "\(loaded.endpoints.count)"])

    let shutdown = ShutdownFlag()
    // Socket LB for pods: the map rewritten from the registered endpoints (a start with
    // --socket-lb-hostns-only or without socket LB empties it instead).
    var podSockets: PodSocketTable?
    if datapath.isLoaded {
      if settings.northSouth.socketLB && !settings.northSouth.socketLBHostNamespaceOnly {
        podSockets = PodSocketTable.open(bpfFS: settings.bpfFS, logger: logger)
        podSockets?.sync(loaded.endpoints.map(\.spec))
      } else {
        PodSocketTable.clear(bpfFS: settings.bpfFS, logger: logger)
      }
    }
    let registry = EndpointRegistry(
      endpoints: loaded.endpoints, store: store, datapath: datapath, socketPath: settings.socket,
      shutdown: shutdown, logger: logger, podSockets: podSockets)
    let services: ServiceManager
    do {
      services = try ServiceManager(
        stateDirectory: settings.stateDir, nodeName: settings.nodeName,
        nodeAddresses: NodeDevices.addresses(of: devices), northSouth: settings.northSouth,
        proxyRedirects: settings.proxyRedirects.map(\.proxyRedirect),
        proxyRouting: datapath.isLoaded ? NodeProxyRouting.apply : nil, datapath: datapath,
        logger: Logger(label: "services"))
    } catch {
      throw StartFailure("cannot restore the services: \(error)")
    }
    // 4b. The L7 redirect's socket lookup: attached whether or not anything is redirected
    // yet (it passes what it does not know), so a redirect never waits for it.
    let proxyListeners =
      datapath.isLoaded
      ? ProxyListeners.start(
        bpfFS: settings.bpfFS, objectDirectory: settings.bpfObjects,
        mapSizes: settings.mapSizes, logger: Logger(label: "proxy-listeners")) : nil
    // 5a. The node's Envoy (`--envoy`), fed by the ServiceManager; started on the first L7
    // resource. Its redirects go through ProxyRedirectTarget (the service side's call point).
    var proxy: ProxyManager?
    if let envoy = settings.envoy {
      let target = ServiceManagerRedirects(services: services, logger: Logger(label: "envoy"))
      do {
        proxy = try ProxyManager(
          settings: ProxySettings(
            envoyPath: envoy, runDirectory: PathNames.join(settings.stateDir, "envoy"),
            nodeID: settings.nodeName),
          logger: Logger(label: "envoy"),
          redirectSink: orderedRedirectSink(target))
      } catch {
        close(lock)
        throw StartFailure("cannot prepare Envoy's directory: \(error)")
      }
    }
    // 5b. The Kubernetes API, when one is configured: followed once serving starts.
    var follower: ClusterFollower?
    if let cluster {
      do {
        follower = try ClusterFollower(
          config: cluster, nodeName: settings.nodeName,
          serviceProxyName: settings.k8sServiceProxyName, services: services)
      } catch {
        close(lock)
        throw error
      }
    }
    // 6. Socket LB, last: nothing after it can fail and leave it attached.
    var socketLB: SocketLoadBalancer?
    if settings.northSouth.socketLB {
      do {
        socketLB = try SocketLoadBalancer.start(
          cgroupRoot: settings.northSouth.cgroupRoot, stateDirectory: settings.stateDir,
          bpfFS: settings.bpfFS,
          objectDirectory: settings.bpfObjects, mapSizes: settings.mapSizes, logger: logger)
      } catch {
        close(lock)
        throw StartFailure("\(error)")
      }
    } else {
      // Socket LB's links are pinned and outlive an agent: a start without --socket-lb is
      // how it is turned off.
      SocketLoadBalancer.removePinnedLinks(bpfFS: settings.bpfFS, logger: logger)
    }
    return AgentRuntime(
      settings: settings, shutdownGrace: shutdownGrace,
      counterSweepInterval: counterSweepInterval, deleteQueueInterval: deleteQueueInterval,
      conntrackSweepInterval: conntrackSweepInterval, logger: logger, datapath: datapath,
      registry: registry, services: services, shutdown: shutdown, stateLock: lock,
      socketLB: socketLB, cluster: follower, flows: flows, flowConsumer: flowConsumer,
      metricsAddress: metricsAddress, proxy: proxy, proxyListeners: proxyListeners)
  }

  private static func lockDirectory(_ directory: String) throws(StartFailure) -> Int32 {
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else {
      throw StartFailure("cannot open state dir \(directory): \(String(cString: strerror(errno)))")
    }
    if flock(fd, LOCK_EX | LOCK_NB) != 0 {
      let code = errno
      close(fd)
      if code == EWOULDBLOCK {
        throw StartFailure("state dir \(directory) is in use by another agent")
      }
      throw StartFailure("cannot lock state dir \(directory): \(String(cString: strerror(code)))")
    }
    return fd
  }

  /// Replays the deletion queue, reconciles, serves; returns after a clean shutdown.
  func serve() async throws {
    defer { socketLB?.stop() }
    defer { proxy?.stop() }
    var accessLog: Task<Void, Never>?
    if let proxy {
      let services = self.services
      let logger = self.logger
      await services.connect(
        proxy: ProxyWiring(
          manager: proxy,
          publisher: cluster.map { follower in
            IngressPublisher(
              writer: follower.transport, logger: Logger(label: "ingress"),
              isReady: { await follower.isSynced })
          }
        ) { edits in
          // From the proxy's queue: wait, so generated Services are applied in order.
          let done = DispatchSemaphore(value: 0)
          Task {
            do {
              try await services.apply(edits: edits)
            } catch {
              logger.error("cannot apply the Ingress Services: \(error)")
            }
            done.signal()
          }
          done.wait()
        })
      let flows = AccessLogFlows(
        follower: AccessLogFollower(path: proxy.settings.translation.layout.accessLogPath),
        flows: self.flows)
      accessLog = Task { await flows.run() }
    }
    defer { accessLog?.cancel() }
    await registry.replayDeleteQueue()
    await registry.reconcile()
    // Every endpoint has the new programs now: the old LRU conntrack maps (an upgrade from
    // ABI 4) are no longer written to; the entries they got meanwhile are copied.
    datapath.finishConntrackMigration()

    let config = AgentConfig(
      version: AgentVersion.current, nodeName: settings.nodeName, socket: settings.socket,
      stateDir: settings.stateDir, bpfFS: settings.bpfFS,
      fromEndpointProgram: datapath.fromEndpointPin,
      toEndpointProgram: datapath.toEndpointPin, devices: settings.devices,
      lbServicesMax: settings.mapSizes.lbServices, lbBackendsMax: settings.mapSizes.lbBackends,
      conntrackMax: settings.mapSizes.conntrack, affinityMax: settings.mapSizes.affinity,
      tcHook: datapath.tcHookName)
    let responder = APIResponder(
      registry: registry, services: services, cluster: cluster, config: config,
      datapath: datapath, flows: flows, shutdown: shutdown, logger: Logger(label: "api"),
      proxy: proxy, socketLBRoot: socketLB?.cgroupRoot)
    let socket = SocketFile(path: settings.socket)
    let logger = self.logger
    let registry = self.registry

    // The socket is born 0600: bind() applies the umask. Restored as soon as it exists.
    let previousUmask = umask(0o177)
    let umaskRestored = Atomic<Bool>(false)
    @Sendable func restoreUmask() {
      if !umaskRestored.exchange(true, ordering: .acquiringAndReleasing) { umask(previousUmask) }
    }

    var serverLogger = Logger(label: "http")
    // Hummingbird's own lines (bind, per-request ids) are only interesting when debugging.
    serverLogger.logLevel = max(logger.logLevel, .notice)
    let app = Application(
      responder: responder,
      server: .http1(configuration: .init(idleTimeout: .seconds(60))),
      configuration: ApplicationConfiguration(address: .unixDomainSocket(path: settings.socket)),
      onServerRunning: { _ in
        restoreUmask()
        socket.secure(logger: logger)
        // Published only now that the socket answers: the plugin reads it on every ADD.
        do {
          try AgentDiscovery.write(config, socketPath: socket.path)
        } catch {
          logger.error("cannot publish the agent config", metadata: ["error": "\(error)"])
        }
        logger.info("listening", metadata: ["socket": "\(socket.path)"])
        // A DEL queued between the first replay and the bind is not left for the next start.
        await registry.replayDeleteQueue()
      },
      logger: serverLogger)
    let gate = ShutdownGate(shutdown: shutdown, grace: shutdownGrace, logger: logger)
    let metricsServices: [ServiceGroupConfiguration.ServiceConfiguration] =
      metricsServer().map { [.init(service: $0, serviceName: "metrics")] } ?? []
    let proxyListenerServices: [ServiceGroupConfiguration.ServiceConfiguration] =
      proxyListenerSync().map { [.init(service: $0, serviceName: "proxy-listeners")] } ?? []
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        // Shut down in reverse: the gate, the API, the counter sweep, then the Kubernetes
        // follower.
        services: (cluster.map {
          [
            ServiceGroupConfiguration.ServiceConfiguration(
              service: $0, serviceName: "kubernetes")
          ]
        } ?? []) + [
          .init(
            // Counter entries of no endpoint (the start-up sweep is reconcile's).
            service: Periodic(interval: counterSweepInterval) { await registry.sweepCounters() },
            serviceName: "counter-sweep"),
          .init(
            // The conntrack maps never evict: expired entries go here.
            service: Periodic(interval: conntrackSweepInterval) {
              [datapath, logger, conntrackSwept] in
              let swept = datapath.sweepConntrack()
              conntrackSwept.add(swept)
              if swept.deleted > 0 {
                logger.debug(
                  "conntrack sweep",
                  metadata: [
                    "deleted4": "\(swept.deleted4)", "scanned4": "\(swept.scanned4)",
                    "deleted6": "\(swept.deleted6)", "scanned6": "\(swept.scanned6)",
                  ])
              }
            },
            serviceName: "conntrack-sweep"),
          .init(
            service: Periodic(interval: deleteQueueInterval) {
              await registry.replayDeleteQueue()
            },
            serviceName: "delete-queue-replay"),
          .init(service: app, serviceName: "api"),
        ] + proxyListenerServices + metricsServices + [
          .init(service: gate, serviceName: "shutdown-gate")
        ]
          // Last, so shut down first: it ends the flow followers' streaming answers,
          // which the HTTP server would otherwise wait for.
          + (flowConsumer.map { [.init(service: $0, serviceName: "flows")] } ?? []),
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: Logger(label: "lifecycle")))
    do {
      try await group.run()
    } catch {
      restoreUmask()
      if socket.removeIfOurs() { AgentDiscovery.remove(socketPath: socket.path) }
      throw StartFailure(Self.describeServeError(error, socket: settings.socket))
    }
    restoreUmask()
    if socket.removeIfOurs() { AgentDiscovery.remove(socketPath: socket.path) }
    close(stateLock)
    logger.info("stopped")
  }

  /// Every second: the proxy listeners of the redirects in force into the datapath's map
  /// (a proxy that started, restarted or changed its listeners is found within a second;
  /// until then tc's own hand-off serves it).
  private func proxyListenerSync() -> Periodic? {
    guard let proxyListeners else { return nil }
    let services = self.services
    return Periodic(interval: ProxyListeners.syncInterval) {
      proxyListeners.sync(ports: Set(await services.proxyRedirects.map(\.proxyPort)))
    }
  }

  static func describeServeError(_ error: any Error, socket: String) -> String {
    if let metrics = error as? MetricsServerFailure { return metrics.description }
    let text = "\(error)"
    if text.contains("Address already in use") {
      return "socket \(socket) is in use by another agent"
    }
    return "serving on \(socket): \(text)"
  }
}

/// Runs `work` every `interval` seconds until shutdown begins (the counter sweep and the
/// deletion queue's replay while the agent runs).
struct Periodic: Service {
  let interval: Double
  let work: @Sendable () async -> Void

  func run() async throws {
    while !Task.isShuttingDownGracefully {
      do {
        try await cancelOnGracefulShutdown {
          try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
        }
      } catch {
        return  // shutting down (or cancelled)
      }
      if Task.isShuttingDownGracefully || Task.isCancelled { return }
      await work()
    }
  }
}

/// Waits for SIGTERM/SIGINT (the service group's graceful shutdown reaches it first, as the
/// last service), sets the shutdown flag so every request is answered 503, holds that for
/// `grace` seconds, then lets the HTTP server close.
struct ShutdownGate: Service {
  let shutdown: ShutdownFlag
  let grace: Double
  let logger: Logger

  func run() async throws {
    do {
      try await gracefulShutdown()
    } catch {
      return  // cancelled: the server already stopped on its own
    }
    shutdown.set()
    logger.info("shutting down; new requests are answered 503", metadata: ["grace_s": "\(grace)"])
    if grace > 0 {
      try? await Task.sleep(for: .milliseconds(Int(grace * 1000)))
    }
  }
}

/// Running totals of the conntrack sweep's deletions, read by /metrics.
final class ConntrackSweptTotals: Sendable {
  private let ipv4 = Atomic<UInt64>(0)
  private let ipv6 = Atomic<UInt64>(0)

  func add(_ result: ConntrackSweepResult) {
    ipv4.add(UInt64(result.deleted4), ordering: .relaxed)
    ipv6.add(UInt64(result.deleted6), ordering: .relaxed)
  }

  var byFamily: [String: UInt64] {
    ["ipv4": ipv4.load(ordering: .relaxed), "ipv6": ipv6.load(ordering: .relaxed)]
  }
}
