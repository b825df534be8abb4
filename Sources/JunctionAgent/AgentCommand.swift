import AgentCore
import AgentMetrics
import ArgumentParser

#if canImport(Glibc)
  import Glibc
#endif

@main
struct AgentCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "junction-agent",
    abstract: "The Junction node agent: owns the BPF datapath and serves the endpoint API.",
    discussion: """
      Serves HTTP/1.1 + JSON under /v1 on a Unix socket (mode 0600, root only), described \
      by docs/openapi.yaml. Endpoints are kept under --state-dir and reconciled with the \
      kernel at start. Several agents can share a machine when each has its own --socket, \
      --state-dir and --bpf-fs. SIGTERM or SIGINT stops it cleanly and removes the socket.

      Settings come from the flags, else from --config, else from the environment \
      (JUNCTION_SOCKET for the socket), else from the defaults shown.

      Services come from the Kubernetes API when one is configured (--kubeconfig, \
      --k8s-api-server, or in a pod KUBERNETES_SERVICE_HOST with the service account): \
      Services, EndpointSlices, this node's Node and Pods, and LocalRedirectPolicies are \
      listed and watched, applied in one diff once all have synced, and `junctionctl \
      apply/delete` are refused. Otherwise they come from `junctionctl apply`. An API that \
      is unreachable or refuses the agent never stops it: it keeps serving what it has.

      Map sizes (--lb-services-max, --lb-backends-max, --conntrack-max, --affinity-max) \
      must be 1 to \(MapSizes.maximum). The maps are pinned under --bpf-fs and keep their \
      contents across restarts, so a pinned map is never resized: when a size differs \
      from the pinned map's, the agent refuses to start and says which pin to remove \
      (which drops that map's state).

      Exit status: 0 after a clean shutdown; 1 when it cannot start, with one line on \
      standard error ("junction-agent: <reason>"); 64 for a bad command line.
      """,
    version: AgentVersion.current
  )

  @Option(name: .long, help: "This node's name (default: the host name).")
  var nodeName: String?

  @Option(
    help: ArgumentHelp(
      "The API socket (default: $JUNCTION_SOCKET, else \(AgentSettings.defaultSocket)).",
      valueName: "path"))
  var socket: String?

  @Option(
    help: ArgumentHelp(
      "Where endpoints are stored (default: \(AgentSettings.defaultStateDir)).", valueName: "dir"))
  var stateDir: String?

  @Option(
    name: .customLong("bpf-fs"),
    help: ArgumentHelp(
      "The bpffs directory for the agent's pins; a bpffs is mounted there when none is "
        + "(default: \(AgentSettings.defaultBPFFS)).", valueName: "dir"))
  var bpfFS: String?

  @Option(
    help: ArgumentHelp(
      "Where the datapath's BPF objects are (default: \(AgentSettings.defaultBPFObjects)).",
      valueName: "dir"))
  var bpfObjects: String?

  @Option(
    name: .customLong("proxy-redirect"),
    help: ArgumentHelp(
      "Send the TCP connections of Service NS/NAME (its PORTs, default all) to a proxy "
        + "listening with IP_TRANSPARENT on PROXYPORT in the node's namespace, instead of its "
        + "backends; repeatable. For an externally managed proxy, and tests.",
      valueName: "ns/name[:port,...]=proxyport"))
  var proxyRedirect: [String] = []

  @Option(
    help: ArgumentHelp(
      "The node's external devices, comma-separated (default: none). NodePorts are served on "
        + "their IPv4 addresses (read at start: each must exist and have one), on their "
        + "global IPv6 addresses for IPv6 Services, and on 0.0.0.0.",
      valueName: "if,..."))
  var devices: String?

  @Option(
    help: ArgumentHelp(
      "How NodePort, ExternalIPs and LoadBalancer connections reach a backend on another "
        + "node: snat, dsr (an IPv4 option tells the backend's node the frontend; it answers "
        + "the client directly) or hybrid (DSR for TCP, SNAT for UDP) (default: snat).",
      valueName: "mode"))
  var lbMode: String?

  @Option(
    help: ArgumentHelp(
      "The cluster's NodePort range (default: \(PortRange.defaultNodePorts)).",
      valueName: "low-high"))
  var nodePortRange: String?

  @Option(
    name: .customLong("snat-port-range"),
    help: ArgumentHelp(
      "Source ports for SNAT'd north-south connections; must not overlap the NodePort range "
        + "(default: \(PortRange.defaultSNATPorts)).", valueName: "low-high"))
  var snatPortRange: String?

  @Flag(
    name: .customLong("socket-lb"),
    help: ArgumentHelp(
      "Translate service addresses at connect()/sendmsg() for the node's own processes "
        + "(cgroup v2 socket programs, under --cgroup-root). They stay attached while the "
        + "agent is down (links pinned under --bpf-fs); a start without this flag detaches them. "
        + "Also this node's pods (each recognised by its network namespace, recorded when it "
        + "registers), except those registered with CNI_ARGS JUNCTION_SOCKET_LB=false."))
  var socketLB: Bool = false

  @Flag(
    name: .customLong("socket-lb-hostns-only"),
    help: ArgumentHelp(
      "Socket LB (implies --socket-lb) for the node's own processes only: pods are "
        + "translated per packet, as Cilium's socketLB.hostNamespaceOnly."))
  var socketLBHostnsOnly: Bool = false

  @Option(
    help: ArgumentHelp(
      "Where the tc programs attach on pods' veths and --devices: clsact (a clsact qdisc and "
        + "a cls_bpf filter, any kernel), tcx (the kernel's tcx hook, 6.6 or later: no qdisc "
        + "or classifier layer, about 1.3 us less per pod connection) or auto (tcx where the "
        + "kernel has it). A start with another hook moves Junction's programs "
        + "(default: clsact: tcx's attach and detach add about 30 ms to each CNI ADD and "
        + "DEL).", valueName: "hook"))
  var tcHook: String?

  @Option(
    help: ArgumentHelp(
      "The cgroup v2 directory the socket programs attach to; a cgroup2 is mounted there "
        + "when none is (default: \(NorthSouthSettings.defaultCgroupRoot)).", valueName: "dir"))
  var cgroupRoot: String?

  @Option(
    name: .customLong("lb-services-max"),
    help: ArgumentHelp(
      "Size of the service map jnc_lb4_svc: one entry per frontend and one per backend slot, "
        + "so frontends × (1 + backends) (default: \(MapSizes.defaultLBServices)).",
      valueName: "n"))
  var lbServicesMax: Int?

  @Option(
    name: .customLong("lb-backends-max"),
    help: ArgumentHelp(
      "Size of the backend map jnc_lb4_be (default: \(MapSizes.defaultLBBackends)).",
      valueName: "n"))
  var lbBackendsMax: Int?

  @Option(
    help: ArgumentHelp(
      "Size of the conntrack map jnc_ct4 (preallocated; two entries per connection; when "
        + "full, new connections are dropped, counted as \"CT: Map insertion failed\", and established "
        + "ones keep working) (default: \(MapSizes.defaultConntrack)).", valueName: "n"))
  var conntrackMax: Int?

  @Option(
    help: ArgumentHelp(
      "Seconds between sweeps deleting expired conntrack entries (the maps never evict): "
        + "idle past \(ConntrackExpiry.datapath.tcpLifetime / 1_000_000_000) s for TCP, "
        + "\(ConntrackExpiry.datapath.closeTimeout / 1_000_000_000) s once a FIN or RST "
        + "was seen, \(ConntrackExpiry.datapath.nonTCPLifetime / 1_000_000_000) s for UDP.",
      valueName: "seconds"))
  var conntrackSweepInterval: Double = ConntrackExpiry.defaultInterval

  @Option(
    help: ArgumentHelp(
      "Size of the ClientIP affinity map jnc_lb4_aff (LRU; one entry per client and "
        + "service) (default: \(MapSizes.defaultAffinity)).", valueName: "n"))
  var affinityMax: Int?

  @Option(
    help: ArgumentHelp(
      "Follow the Kubernetes API with this kubeconfig's current context (server, CA, token, "
        + "token file or client certificate). In a pod the service account is used instead "
        + "(KUBERNETES_SERVICE_HOST/_PORT and its token and CA). With the API followed, "
        + "`junctionctl apply/delete` are refused: the cluster is the source.",
      valueName: "file"))
  var kubeconfig: String?

  @Option(
    name: .customLong("k8s-api-server"),
    help: ArgumentHelp(
      "The API server's real address (https://HOST:PORT), overriding the kubeconfig's or the "
        + "in-cluster one. Never a ClusterIP this agent translates (the DaemonSet passes the "
        + "real address, as Cilium's k8sServiceHost).", valueName: "url"))
  var k8sAPIServer: String?

  @Option(
    name: .customLong("k8s-service-proxy-name"),
    help: ArgumentHelp(
      "Serve only Services labelled service.kubernetes.io/service-proxy-name=NAME (Cilium's "
        + "behaviour). Default: as kube-proxy, serve every Service without that label.",
      valueName: "name"))
  var k8sServiceProxyName: String?

  @Option(
    help: ArgumentHelp(
      "What the datapath reports as flows (GET /v1/flows, junctionctl observe): off; flows "
        + "(a connection's first packet with its Service translation, TCP FIN and RST, every "
        + "drop, socket LB connects; established packets report nothing); all (every packet, "
        + "for debugging) (default: \(FlowSettings.defaultLevel.rawValue)).",
      valueName: "off|flows|all"))
  var monitorLevel: String?

  @Option(
    help: ArgumentHelp(
      "How many of the last flows the agent keeps for GET /v1/flows "
        + "(default: \(FlowSettings.defaultBufferSize), at most \(FlowSettings.maximumBufferSize)).",
      valueName: "n"))
  var flowBufferSize: Int?

  @Option(
    name: .customLong("prometheus-serve-addr"),
    help: ArgumentHelp(
      "Serve Prometheus metrics on GET /metrics at this TCP address, e.g. :9962 (every "
        + "address) or 127.0.0.1:9962 (default: off; the DaemonSet serves :9962). A flag "
        + "only, not a --config key.",
      valueName: "host:port"))
  var prometheusServeAddr: String?

  @Option(
    help: ArgumentHelp(
      "The Envoy binary (1.40, install/envoy/) serving CiliumEnvoyConfig and Ingress: started "
        + "when the first one exists, restarted with backoff when it dies, admin API on "
        + "STATE-DIR/envoy/envoy-admin.sock (default: none; L7 resources are kept but not "
        + "served). L4 Services never depend on it.", valueName: "path"))
  var envoy: String?

  @Option(
    help: ArgumentHelp(
      "A JSON file whose keys are long flag names, e.g. {\"socket\": \"/run/j.sock\", "
        + "\"devices\": [\"eth0\"]}; flags win over it.", valueName: "file"))
  var config: String?

  @Option(
    help: ArgumentHelp(
      "One of \(AgentSettings.logLevels.joined(separator: ", ")) (default: \(AgentSettings.defaultLogLevel)).",
      valueName: "level"))
  var logLevel: String?

  /// Test hook: after SIGTERM, answer every request 503 for this long before closing.
  @Option(help: .hidden)
  var shutdownGrace: Double = 0

  /// Test hook: seconds between sweeps of counter entries of no endpoint (CounterSweep).
  @Option(help: .hidden)
  var counterSweepInterval: Double = CounterSweep.interval

  /// Test hook: seconds between replays of the deletion queue while running (DeleteQueue).
  @Option(help: .hidden)
  var deleteQueueInterval: Double = DeleteQueue.replayInterval

  func run() async throws {
    FreedMemory.configure()
    do {
      let settings = try resolveSettings()
      let metricsAddress = try prometheusServeAddr.map { text throws(StartFailure) in
        switch MetricsAddress.parse(text) {
        case .success(let address): return address
        case .failure(let problem): throw StartFailure("--prometheus-serve-addr: \(problem)")
        }
      }
      let runtime = try AgentRuntime.start(
        settings: settings,
        cluster: try ClusterFollower.config(
          settings: settings, environment: Self.environment()),
        shutdownGrace: max(0, shutdownGrace),
        counterSweepInterval: max(0.1, counterSweepInterval),
        deleteQueueInterval: max(0.1, deleteQueueInterval),
        conntrackSweepInterval: max(0.1, conntrackSweepInterval), metricsAddress: metricsAddress)
      try await runtime.serve()
    } catch let failure as StartFailure {
      Self.printFailure(failure.reason)
      throw ExitCode(1)
    } catch {
      Self.printFailure("\(error)")
      throw ExitCode(1)
    }
  }

  private func resolveSettings() throws(StartFailure) -> AgentSettings {
    var file: AgentConfigFile?
    if let config {
      let bytes: [UInt8]
      do {
        bytes = try AtomicFile.read(config, limit: 1 << 20)
      } catch {
        throw StartFailure("cannot read config \(config): \(Self.reason(error))")
      }
      do {
        file = try AgentConfigFile.parse(bytes)
      } catch {
        throw StartFailure("config \(config) \(error.description)")
      }
    }
    let flags = AgentConfigFile(
      nodeName: nodeName, socket: socket, stateDir: stateDir, bpfFS: bpfFS, bpfObjects: bpfObjects,
      devices: devices.map(AgentConfigFile.splitDevices), logLevel: logLevel,
      lbServicesMax: lbServicesMax, lbBackendsMax: lbBackendsMax, conntrackMax: conntrackMax,
      affinityMax: affinityMax, lbMode: lbMode, nodePortRange: nodePortRange,
      snatPortRange: snatPortRange, socketLB: socketLB ? true : nil, cgroupRoot: cgroupRoot,
      kubeconfig: kubeconfig, k8sAPIServer: k8sAPIServer,
      k8sServiceProxyName: k8sServiceProxyName, monitorLevel: monitorLevel,
      flowBufferSize: flowBufferSize, proxyRedirects: proxyRedirect.isEmpty ? nil : proxyRedirect,
      envoy: envoy, tcHook: tcHook)
    var settings = AgentSettings.resolve(
      flags: flags, file: file, environment: Self.environment(), hostname: Self.hostname())
    if let problem = settings.problem { throw StartFailure(problem) }
    if socketLBHostnsOnly {
      settings.northSouth.socketLB = true
      settings.northSouth.socketLBHostNamespaceOnly = true
    }
    return settings
  }

  private static func reason(_ error: FileError) -> String {
    String(cString: strerror(error.code))
  }

  static func printFailure(_ reason: String) {
    let line =
      "junction-agent: \(reason.split(whereSeparator: \.isNewline).joined(separator: " "))\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
  }

  static func hostname() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
    return String(
      decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  static func environment() -> [String: String] {
    var result: [String: String] = [:]
    for name in ["JUNCTION_SOCKET", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"] {
      if let value = getenv(name) { result[name] = String(cString: value) }
    }
    return result
  }
}

/// Why the agent cannot start: printed as the one line "junction-agent: <reason>", exit 1.
struct StartFailure: Error, CustomStringConvertible {
  var reason: String

  init(_ reason: String) { self.reason = reason }

  var description: String { reason }
}
