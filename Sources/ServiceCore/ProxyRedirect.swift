/// A Service whose new TCP connections go to the node's L7 proxy (Envoy) instead of being
/// balanced by BPF: what a CiliumEnvoyConfig's `spec.services` or an Ingress asks for.
///
/// This is the contract between the two halves of the L7 path:
/// - the proxy side (CiliumEnvoyConfig / Ingress → Envoy resources) decides which Services
///   are redirected and to which listener port, and produces these values;
/// - the service side (ServiceTable → frontends → BPF) flags the matching frontends so the
///   datapath hands their new connections to the listener, keeping the client's source and
///   the Service address as the destination (TPROXY-style `bpf_sk_assign`).
public struct ProxyRedirect: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// The redirected Service.
  public var service: NamespacedName
  /// The Service ports (by number) redirected; empty means every TCP port of the Service.
  public var ports: Set<UInt16>
  /// The node-local proxy listener port (TCP, any local address) that takes the connections.
  public var proxyPort: UInt16
  /// Who asked for it ("CiliumEnvoyConfig default/envoy-lb-listener", "Ingress default/web"),
  /// shown in notes and listings.
  public var owner: String

  public init(service: NamespacedName, ports: Set<UInt16> = [], proxyPort: UInt16, owner: String) {
    self.service = service
    self.ports = ports
    self.proxyPort = proxyPort
    self.owner = owner
  }

  /// Whether a connection to `port` of the Service is redirected.
  public func covers(port: UInt16) -> Bool { ports.isEmpty || ports.contains(port) }

  public var description: String {
    let portList =
      ports.isEmpty ? "all ports" : ports.sorted().map(String.init).joined(separator: ",")
    return "\(service) (\(portList)) → proxy :\(proxyPort) [\(owner)]"
  }

  public static func < (lhs: Self, rhs: Self) -> Bool {
    (lhs.service, lhs.proxyPort, lhs.owner) < (rhs.service, rhs.proxyPort, rhs.owner)
  }
}
