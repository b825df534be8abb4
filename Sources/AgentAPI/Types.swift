/// The agent's API (HTTP/1.1 + JSON on a Unix socket, under /v1), as Codable types shared by
/// the agent, the CNI plugin and junctionctl. docs/openapi.yaml describes the same shapes;
/// change both together.

/// What the CNI plugin registers for one attachment (PUT /v1/endpoints/{id}).
public struct EndpointSpec: Codable, Equatable, Sendable {
  public var containerID: String
  public var ifname: String
  /// The CNI network name, so GC deregisters only its own network's endpoints.
  public var network: String
  public var podNamespace: String?
  public var podName: String?
  public var podUID: String?
  /// CNI_NETNS: the pod's network namespace path.
  public var netns: String
  public var hostInterface: String
  public var hostIfindex: Int
  public var podInterfaceIndex: Int?
  /// Pod addresses in CIDR notation ("10.244.1.5/32").
  public var ips: [String]
  /// The pod interface's MAC.
  public var mac: String?
  public var hostMAC: String?
  /// false: the pod opts out of socket LB (CNI_ARGS JUNCTION_SOCKET_LB=false), for a pod whose
  /// own proxy must see the service address (an Istio sidecar); its connections are
  /// translated per packet. Absent: socket LB covers it when the agent runs --socket-lb.
  public var socketLB: Bool?
  /// The cookie of the pod's network namespace (SO_NETNS_COOKIE, what bpf_get_netns_cookie
  /// returns for its sockets), read by the plugin from the socket it already has in there,
  /// so the agent needs no setns (CAP_SYS_ADMIN) to record the pod for socket LB. Absent
  /// from older plugins and on kernels before 5.14: the agent then reads it itself.
  public var netnsCookie: UInt64?

  public init(
    containerID: String, ifname: String, network: String, podNamespace: String? = nil,
    podName: String? = nil, podUID: String? = nil, netns: String, hostInterface: String,
    hostIfindex: Int, podInterfaceIndex: Int? = nil, ips: [String], mac: String? = nil,
    hostMAC: String? = nil, socketLB: Bool? = nil, netnsCookie: UInt64? = nil
  ) {
    self.containerID = containerID
    self.ifname = ifname
    self.network = network
    self.podNamespace = podNamespace
    self.podName = podName
    self.podUID = podUID
    self.netns = netns
    self.hostInterface = hostInterface
    self.hostIfindex = hostIfindex
    self.podInterfaceIndex = podInterfaceIndex
    self.ips = ips
    self.mac = mac
    self.hostMAC = hostMAC
    self.socketLB = socketLB
    self.netnsCookie = netnsCookie
  }

  /// The endpoint id: "containerID:ifname". Neither part may contain ':' or '/' (CNI rules),
  /// so the id is unambiguous and safe as a file name and a URL path segment.
  public var id: String { EndpointID.make(containerID: containerID, ifname: ifname) }

  public static let fieldNames: Set<String> = [
    "containerID", "ifname", "network", "podNamespace", "podName", "podUID", "netns",
    "hostInterface", "hostIfindex", "podInterfaceIndex", "ips", "mac", "hostMAC", "socketLB",
    "netnsCookie",
  ]
}

public enum EndpointID {
  public static func make(containerID: String, ifname: String) -> String {
    "\(containerID):\(ifname)"
  }

  /// Why `id` is not an endpoint id, or nil when it is one: a container id and an
  /// interface name joined by ':', with no '/', no "..", nothing outside the CNI charsets.
  public static func problem(_ id: String) -> String? {
    if id.isEmpty || id.utf8.count > 300 { return "must be 1 to 300 bytes" }
    if id.contains("/") || id.contains("..") { return "must not contain '/' or '..'" }
    let parts = id.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
      return "must be CONTAINERID:IFNAME"
    }
    let allowed = { (byte: UInt8) -> Bool in
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
        || (byte >= 0x61 && byte <= 0x7A)
        || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }
    guard id.utf8.allSatisfy({ allowed($0) || $0 == UInt8(ascii: ":") }) else {
      return "may contain only letters, digits, '_', '.', '-' and one ':'"
    }
    return nil
  }
}

/// Per-endpoint packet and byte counters from the datapath.
public struct EndpointCounters: Codable, Equatable, Sendable {
  /// Leaving the pod (tc ingress on the host veth).
  public var fromPackets: UInt64
  public var fromBytes: UInt64
  /// Entering the pod (tc egress on the host veth).
  public var toPackets: UInt64
  public var toBytes: UInt64

  public init(
    fromPackets: UInt64 = 0, fromBytes: UInt64 = 0, toPackets: UInt64 = 0, toBytes: UInt64 = 0
  ) {
    self.fromPackets = fromPackets
    self.fromBytes = fromBytes
    self.toPackets = toPackets
    self.toBytes = toBytes
  }
}

/// An endpoint as the agent reports it.
public struct Endpoint: Codable, Equatable, Sendable {
  public var id: String
  public var spec: EndpointSpec
  /// RFC 3339, when the agent first registered it.
  public var createdAt: String
  /// Present on GET of one endpoint and in lists when the datapath is loaded.
  public var counters: EndpointCounters?
  /// Whether both endpoint programs are attached on the host interface now.
  public var datapathAttached: Bool?

  public init(
    id: String, spec: EndpointSpec, createdAt: String, counters: EndpointCounters? = nil,
    datapathAttached: Bool? = nil
  ) {
    self.id = id
    self.spec = spec
    self.createdAt = createdAt
    self.counters = counters
    self.datapathAttached = datapathAttached
  }
}

/// GET /v1/config: what a client needs to work with this agent.
public struct AgentConfig: Codable, Equatable, Sendable {
  public var version: String
  public var nodeName: String
  public var socket: String
  public var stateDir: String
  public var bpfFS: String
  /// Absolute pin paths of the endpoint programs the CNI plugin attaches.
  public var fromEndpointProgram: String
  public var toEndpointProgram: String
  public var devices: [String]
  /// max_entries of the datapath's maps as configured (and loaded): jnc_lb4_svc (frontend
  /// and slot entries), jnc_lb4_be, jnc_ct4, jnc_lb4_aff. Absent from older agents.
  public var lbServicesMax: Int?
  public var lbBackendsMax: Int?
  public var conntrackMax: Int?
  public var affinityMax: Int?
  /// The hook the CNI plugin attaches the endpoint programs to: "clsact" or "tcx" (the
  /// agent's --tc-hook, resolved). Absent from older agents: clsact.
  public var tcHook: String?

  public init(
    version: String, nodeName: String, socket: String, stateDir: String, bpfFS: String,
    fromEndpointProgram: String, toEndpointProgram: String, devices: [String],
    lbServicesMax: Int? = nil, lbBackendsMax: Int? = nil, conntrackMax: Int? = nil,
    affinityMax: Int? = nil, tcHook: String? = nil
  ) {
    self.tcHook = tcHook
    self.lbServicesMax = lbServicesMax
    self.lbBackendsMax = lbBackendsMax
    self.conntrackMax = conntrackMax
    self.affinityMax = affinityMax
    self.version = version
    self.nodeName = nodeName
    self.socket = socket
    self.stateDir = stateDir
    self.bpfFS = bpfFS
    self.fromEndpointProgram = fromEndpointProgram
    self.toEndpointProgram = toEndpointProgram
    self.devices = devices
  }
}

/// GET /v1/healthz.
public struct Health: Codable, Equatable, Sendable {
  /// "ok", "degraded" or "shutting-down".
  public var status: String
  public var version: String
  public var nodeName: String
  public var datapathLoaded: Bool
  public var endpoints: Int
  /// Each part's state, e.g. {"api": "ok", "datapath": "ok", "state": "ok"}.
  public var components: [String: String]
  /// The Kubernetes API the agent follows; nil standalone (Services from `junctionctl apply`).
  public var cluster: ClusterStatus?

  public init(
    status: String, version: String, nodeName: String, datapathLoaded: Bool, endpoints: Int,
    components: [String: String], cluster: ClusterStatus? = nil
  ) {
    self.cluster = cluster
    self.status = status
    self.version = version
    self.nodeName = nodeName
    self.datapathLoaded = datapathLoaded
    self.endpoints = endpoints
    self.components = components
  }
}

/// Every non-2xx answer carries one of these.
public struct APIErrorBody: Codable, Equatable, Sendable {
  public var error: String

  public init(error: String) { self.error = error }
}
