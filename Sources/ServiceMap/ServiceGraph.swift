import AgentAPI

/// The service map of a set of flows, as Hubble UI draws it: pods, Services and bare
/// addresses as nodes; who talked to whom as edges, counted by verdict.
///
/// Edges follow the connection, not the packet: a reply (`isReply == true`) counts on the
/// edges of the connection it answers, so the client stays on the left. A flow to a
/// Service is two hops, client → Service → backend; one that never reached a backend (a
/// drop for want of one, a translation seen before the backend is known) stops at the
/// Service.
public struct ServiceGraph: Codable, Equatable, Sendable {
  public var nodes: [Node]
  public var edges: [Edge]

  public init(nodes: [Node] = [], edges: [Edge] = []) {
    self.nodes = nodes
    self.edges = edges
  }

  public struct Node: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
      /// A pod the agent knows (an endpoint of this node).
      case pod
      case service
      /// An address the agent cannot name (another node's pod, the world).
      case ip
    }

    /// "pod:NS/NAME", "service:NS/NAME", "ip:ADDRESS": stable across refreshes, so the
    /// page keeps a node where it was.
    public var id: String
    public var kind: Kind
    /// What the page writes in the box: "NS/NAME" or the address.
    public var label: String
    public var namespace: String?

    public init(id: String, kind: Kind, label: String, namespace: String? = nil) {
      self.id = id
      self.kind = kind
      self.label = label
      self.namespace = namespace
    }
  }

  public struct Edge: Codable, Equatable, Sendable {
    public var from: String
    public var to: String
    /// Flows by verdict ("FORWARDED", "TRANSLATED", "DROPPED", ...).
    public var verdicts: [String: Int]
    /// "80/TCP", sorted: the destination ports seen on this hop.
    public var ports: [String]
    public var total: Int { verdicts.values.reduce(0, +) }
    public var dropped: Int { verdicts["DROPPED"] ?? 0 }

    public init(from: String, to: String, verdicts: [String: Int] = [:], ports: [String] = []) {
      self.from = from
      self.to = to
      self.verdicts = verdicts
      self.ports = ports
    }

    enum CodingKeys: String, CodingKey {
      case from, to, verdicts, ports, total, dropped
    }

    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      from = try container.decode(String.self, forKey: .from)
      to = try container.decode(String.self, forKey: .to)
      verdicts = try container.decode([String: Int].self, forKey: .verdicts)
      ports = try container.decode([String].self, forKey: .ports)
    }

    /// `total` and `dropped` are written too: the page reads them without summing.
    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(from, forKey: .from)
      try container.encode(to, forKey: .to)
      try container.encode(verdicts, forKey: .verdicts)
      try container.encode(ports, forKey: .ports)
      try container.encode(total, forKey: .total)
      try container.encode(dropped, forKey: .dropped)
    }
  }

  /// The graph of `flows`. Nodes and edges come out sorted by id, so the same flows give
  /// the same JSON.
  public static func build(_ flows: [Flow]) -> ServiceGraph {
    var nodes: [String: Node] = [:]
    var edges: [String: Edge] = [:]
    var ports: [String: Set<String>] = [:]
    func count(_ from: Node, _ to: Node, verdict: String, port: String?) {
      nodes[from.id] = from
      nodes[to.id] = to
      let key = from.id + "\u{0}" + to.id
      edges[key, default: Edge(from: from.id, to: to.id)].verdicts[verdict, default: 0] += 1
      if let port { ports[key, default: []].insert(port) }
    }
    let known = knownConnections(flows)
    let services = connectionServices(flows)
    for flow in flows {
      let reply = isReply(flow, known: known)
      let service = services[connectionKey(flow, reply: reply)]
      for hop in path(flow, reply: reply, knownService: service) {
        count(hop.from, hop.to, verdict: flow.verdict, port: port(hop.port, flow.proto))
      }
    }
    for (key, set) in ports { edges[key]?.ports = set.sorted() }
    return ServiceGraph(
      nodes: nodes.values.sorted { $0.id < $1.id },
      edges: edges.values.sorted { ($0.from, $0.to) < ($1.from, $1.to) })
  }

  struct Hop {
    var from: Node
    var to: Node
    var port: Int?
  }

  /// "TCP client-ip:port>server-ip:port", the server side being the backend once
  /// translated: the same for every packet of one connection, replies included.
  static func connectionKey(_ flow: Flow, reply: Bool) -> String {
    let client = reply ? flow.destination : flow.source
    let server = reply ? flow.source : flow.destination
    return "\(flow.proto ?? "") \(client.ip):\(client.port ?? 0)>\(server.ip):\(server.port ?? 0)"
  }

  /// The connections (client>server keys) some packet of which said its direction.
  static func knownConnections(_ flows: [Flow]) -> Set<String> {
    Set(flows.compactMap { flow in flow.isReply.map { connectionKey(flow, reply: $0) } })
  }

  /// Whether `flow` is a reply: what the datapath said, else (it did not know, as for a
  /// backend's FIN leaving it) whether it runs against a connection whose direction
  /// another packet told. Without this, such packets would draw an edge from the backend
  /// back to its client.
  static func isReply(_ flow: Flow, known: Set<String>) -> Bool {
    if let reply = flow.isReply { return reply }
    if known.contains(connectionKey(flow, reply: false)) { return false }
    return known.contains(connectionKey(flow, reply: true))
  }

  /// The Service of each translated connection (what the client dialled), so that its
  /// other packets count on the Service's edges too: the backend's own node sees the SYN
  /// arrive already translated (to-endpoint) and cannot name the Service itself.
  static func connectionServices(_ flows: [Flow]) -> [String: Dialled] {
    var services: [String: Dialled] = [:]
    for flow in flows {
      if let original = flow.original,
        let service = flow.isReply == true ? flow.sourceService : flow.destinationService
      {
        services[connectionKey(flow, reply: flow.isReply == true)] = Dialled(
          service: service, port: port(of: original))
      }
    }
    return services
  }

  /// A Service and the port the client dialled on it.
  struct Dialled {
    var service: FlowService
    var port: Int?
  }

  /// 80 for "10.96.0.10:80".
  static func port(of address: String) -> Int? {
    address.split(separator: ":").last.flatMap { Int($0) }
  }

  /// The hops one flow counts on, in the connection's direction. `knownService`: the
  /// Service another packet of the same connection was translated for.
  static func path(_ flow: Flow, reply: Bool, knownService: Dialled? = nil) -> [Hop] {
    let client = reply ? flow.destination : flow.source
    let server = reply ? flow.source : flow.destination
    let clientNode = node(client)
    guard
      let service = (reply ? flow.sourceService : flow.destinationService)
        ?? knownService?.service
    else {
      return [Hop(from: clientNode, to: node(server), port: server.port)]
    }
    let serviceNode = Node(
      id: "service:\(service.namespace)/\(service.name)", kind: .service,
      label: "\(service.namespace)/\(service.name)", namespace: service.namespace)
    // The port the client dialled: the frontend's ("10.96.0.10:80"), else the server side's
    // when the datapath did not translate (the address is the Service's own).
    let dialled = flow.original.flatMap(port(of:)) ?? knownService?.port
    // Not translated yet (or dropped before): the server side is the Service's address.
    guard flow.original != nil || knownService != nil || server.podName != nil else {
      return [Hop(from: clientNode, to: serviceNode, port: dialled ?? server.port)]
    }
    return [
      Hop(from: clientNode, to: serviceNode, port: dialled ?? server.port),
      Hop(from: serviceNode, to: node(server), port: server.port),
    ]
  }

  static func node(_ peer: FlowPeer) -> Node {
    if let namespace = peer.namespace, let name = peer.podName {
      return Node(
        id: "pod:\(namespace)/\(name)", kind: .pod, label: "\(namespace)/\(name)",
        namespace: namespace)
    }
    return Node(id: "ip:\(peer.ip)", kind: .ip, label: peer.ip)
  }

  static func port(_ port: Int?, _ proto: String?) -> String? {
    guard let port else { return nil }
    return "\(port)/\(proto ?? "IP")"
  }
}
