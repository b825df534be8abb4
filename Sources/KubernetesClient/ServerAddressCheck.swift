/// Whether the API server is reached through an address the agent itself translates.
///
/// In-cluster, `KUBERNETES_SERVICE_HOST` is the `kubernetes` Service's ClusterIP. An agent that
/// replaces kube-proxy translates that address itself: after a restart without the API (or
/// with a stale backend) it cannot reach the server to learn the backends it needs to reach
/// the server (Cilium issue #34653). The agent should be given the server's real address.
public enum ServerAddressCheck {
  /// One Service frontend the agent programs: its addresses (ClusterIPs, external IPs,
  /// load-balancer ingress IPs) and the Service's "namespace/name".
  public struct Frontend: Equatable, Sendable {
    public var service: String
    public var addresses: [String]

    public init(service: String, addresses: [String]) {
      self.service = service
      self.addresses = addresses
    }
  }

  /// The host of a server URL ("https://10.96.0.1:443" → "10.96.0.1", brackets of an IPv6
  /// literal removed), nil when there is none.
  public static func host(of server: String) -> String? {
    guard let schemeEnd = server.range(of: "://") else { return nil }
    var rest = server[schemeEnd.upperBound...]
    if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
    if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
    if rest.hasPrefix("[") {
      guard let close = rest.firstIndex(of: "]") else { return nil }
      return String(rest[rest.index(after: rest.startIndex)..<close]).lowercased()
    }
    if let colon = rest.lastIndex(of: ":") { rest = rest[..<colon] }
    return rest.isEmpty ? nil : rest.lowercased()
  }

  /// One line when `server`'s address is a frontend among `frontends`, else nil. A host name
  /// is not resolved (nil): only a literal address can be checked without a lookup.
  public static func warning(server: String, frontends: [Frontend]) -> String? {
    guard let host = host(of: server) else { return nil }
    let matching = frontends.filter { $0.addresses.contains { $0.lowercased() == host } }
      .map(\.service).sorted()
    guard let first = matching.first else { return nil }
    let also = matching.count > 1 ? " (and \(matching.count - 1) more)" : ""
    return
      "the API server address \(host) is a frontend of Service \(first)\(also), which this agent translates: give the server's real address (--k8s-api-server), or a restart without the API can cut the node off from it"
  }
}
