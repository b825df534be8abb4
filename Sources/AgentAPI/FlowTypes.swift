/// One flow as GET /v1/flows returns it (one JSON object per line): a datapath event
/// (bpf/junction_abi.h, struct junction_flow_event or _event6) named with what the agent
/// knows, after Hubble's Flow. `junctionctl observe` prints it.
public struct Flow: Codable, Equatable, Sendable {
  /// RFC 3339 UTC with nanoseconds, "2026-12-06T02:59:24.123456789Z".
  public var time: String
  /// The agent's --node-name.
  public var nodeName: String
  /// "trace" (a packet passed), "drop", "sock" (socket LB translated a connect or send), or
  /// "l7" (an HTTP request or response through the node's Envoy; tracePoint "http-request" or
  /// "http-response", details in `l7`).
  public var type: String
  /// Where it was seen: "from-endpoint", "to-endpoint", "from-netdev", "to-netdev", "sock",
  /// "to-proxy" (handed to the node's L7 proxy: verdict "REDIRECTED").
  public var tracePoint: String
  /// "FORWARDED", "DROPPED" or "TRANSLATED".
  public var verdict: String
  /// Drops: the reason in words, and its code (enum junction_drop_reason).
  public var dropReason: String?
  public var dropReasonCode: Int?
  /// "TCP", "UDP", or the IP protocol number; nil when the packet was not IPv4.
  public var proto: String?
  /// The sender and receiver. For a connection to a Service, the destination is the
  /// backend it went to (the Service asked for is `destinationService` and `original`); for
  /// a reply, the source is the backend that answered (`sourceService`).
  public var source: FlowPeer
  public var destination: FlowPeer
  /// The Service the client asked for, and the address:port it dialled before translation.
  public var destinationService: FlowService?
  /// Replies: the Service the backend answered for (the client sees its address).
  public var sourceService: FlowService?
  /// The frontend "ip:port" (the Service's address the client used), when translated.
  public var original: String?
  /// TCP only: the header's flags, "SYN", "ACK", "FIN", "RST", "PSH", "URG", "ECE", "CWR".
  public var tcpFlags: [String]?
  /// Whether the packet is a reply; nil when the datapath does not know.
  public var isReply: Bool?
  /// The first packet of a connection.
  public var newConnection: Bool
  /// Seen from the pod: "egress" (from-endpoint), "ingress" (to-endpoint); nil elsewhere.
  public var trafficDirection: String?
  /// The interface (host-side veth or device) the program ran on; nil for socket events.
  public var interfaceIndex: Int?
  /// North-south (from-netdev, to-netdev): how the connection reaches its backend: "snat"
  /// (from the node's address, `snat`), "dsr" (direct server return: the client's address
  /// kept, the backend answers it directly), or "local" (a backend on this node). nil for
  /// east-west flows.
  public var northSouth: String?
  /// With "snat": the node's "ip:port" the connection uses towards the backend.
  public var snat: String?
  /// true when the frontend is a Local Redirect Policy's (redirected to a node-local pod);
  /// absent otherwise.
  public var localRedirect: Bool?
  /// L7 flows only: the HTTP request or response.
  public var l7: FlowHTTP? = nil
  /// At the "to-proxy" trace point: the node's L7 proxy listener port the connection was
  /// handed to (its destination stays the Service frontend); absent otherwise.
  public var proxyPort: Int?

  public init(
    time: String, nodeName: String, type: String, tracePoint: String, verdict: String,
    dropReason: String? = nil, dropReasonCode: Int? = nil, proto: String?, source: FlowPeer,
    destination: FlowPeer, destinationService: FlowService? = nil,
    sourceService: FlowService? = nil, original: String? = nil, tcpFlags: [String]? = nil,
    isReply: Bool?, newConnection: Bool, trafficDirection: String? = nil,
    interfaceIndex: Int? = nil, northSouth: String? = nil, snat: String? = nil,
    localRedirect: Bool? = nil, proxyPort: Int? = nil
  ) {
    self.proxyPort = proxyPort
    self.time = time
    self.nodeName = nodeName
    self.type = type
    self.tracePoint = tracePoint
    self.verdict = verdict
    self.dropReason = dropReason
    self.dropReasonCode = dropReasonCode
    self.proto = proto
    self.source = source
    self.destination = destination
    self.destinationService = destinationService
    self.sourceService = sourceService
    self.original = original
    self.tcpFlags = tcpFlags
    self.isReply = isReply
    self.newConnection = newConnection
    self.trafficDirection = trafficDirection
    self.interfaceIndex = interfaceIndex
    self.northSouth = northSouth
    self.snat = snat
    self.localRedirect = localRedirect
  }
}

/// One side of a flow: its address and port, and the pod behind the address when the
/// agent knows it (an endpoint of this node, or a Pod it follows or was given).
public struct FlowPeer: Codable, Equatable, Sendable {
  public var ip: String
  public var port: Int?
  public var namespace: String?
  public var podName: String?
  /// The pod's labels as "key=value", sorted (Hubble's Endpoint.labels); absent when the
  /// agent knows none.
  public var labels: [String]?

  public init(
    ip: String, port: Int? = nil, namespace: String? = nil, podName: String? = nil,
    labels: [String]? = nil
  ) {
    self.ip = ip
    self.port = port
    self.namespace = namespace
    self.podName = podName
    self.labels = labels
  }
}

public struct FlowService: Codable, Equatable, Sendable {
  public var namespace: String
  public var name: String

  public init(namespace: String, name: String) {
    self.namespace = namespace
    self.name = name
  }
}

/// One line of a GET /v1/flows answer (NDJSON), after Hubble's GetFlowsResponse: a flow,
/// or a report of flows lost.
public struct FlowsLine: Codable, Equatable, Sendable {
  public var flow: Flow?
  public var lostEvents: LostEvents?

  public init(flow: Flow? = nil, lostEvents: LostEvents? = nil) {
    self.flow = flow
    self.lostEvents = lostEvents
  }
}

/// Flows the agent could not keep or send.
public struct LostEvents: Codable, Equatable, Sendable {
  /// "datapath-ring": events the datapath's ring was too full to take (jnc_ev_lost): at
  /// the end of an answer that does not follow, all since the map was pinned (when not
  /// 0); while following, those since the reader started, checked at most once a second.
  /// "follower": flows this reader was too slow for (follow only, sent with its next flow).
  public var source: String
  public var count: UInt64

  public init(source: String, count: UInt64) {
    self.source = source
    self.count = count
  }
}

/// The HTTP side of an L7 flow (Hubble's `l7.http` and `l7.latency_ns`).
public struct FlowHTTP: Codable, Equatable, Sendable {
  public var method: String
  /// "http://authority/path", as the client asked (before any rewrite).
  public var url: String
  public var `protocol`: String
  /// The status, on the response.
  public var code: Int?
  /// Request to last response byte, on the response.
  public var latencyNs: Int64?

  public init(method: String, url: String, protocol: String, code: Int?, latencyNs: Int64?) {
    self.method = method
    self.url = url
    self.protocol = `protocol`
    self.code = code
    self.latencyNs = latencyNs
  }
}
