import CNIKit

/// The addresses and routes native mode gives a pod, computed from the IPAM result
/// before anything touches the kernel.
///
/// Every pod address is a host address (/32, /128) whatever prefix IPAM returned: the pod
/// reaches everything, its own subnet included, through one gateway on its veth, and the
/// node routes each pod address to its veth. The gateway is IPAM's, or a link-local one
/// (169.254.1.1, fe80::1) when IPAM names none; both ends of the veth get permanent
/// neighbour entries for each other, so the gateway never has to exist as an address.
public struct PodAddressing: Equatable, Sendable {
  public struct Family: Equatable, Sendable {
    public var addresses: [IPPrefix]
    public var gateway: IPAddress
    /// Routes inside the pod, via `gateway` unless they name their own.
    public var routes: [CNIResult.Route]
  }

  public var ipv4: Family?
  public var ipv6: Family?
  public var dns: CNIResult.DNS

  public static let fallbackGatewayIPv4 = IPAddress("169.254.1.1")!
  public static let fallbackGatewayIPv6 = IPAddress("fe80::1")!

  public var families: [Family] { [ipv4, ipv6].compactMap { $0 } }

  public static func plan(ipam: CNIResult, dnsOverride: CNIResult.DNS?) throws(CNIError)
    -> PodAddressing
  {
    guard !ipam.ips.isEmpty else {
      throw CNIError(.delegatedPluginFailed, "the IPAM plugin returned no IP addresses")
    }
    func family(_ ipv4: Bool) throws(CNIError) -> Family? {
      let ips = ipam.ips.filter { $0.address.address.isIPv4 == ipv4 }
      guard !ips.isEmpty else { return nil }
      let gateway =
        ips.compactMap(\.gateway).first ?? (ipv4 ? fallbackGatewayIPv4 : fallbackGatewayIPv6)
      let addresses = ips.map(\.address.hostPrefix)
      if addresses.contains(where: { $0.address == gateway }) {
        throw CNIError(
          .delegatedPluginFailed, "the IPAM plugin gave the pod its own gateway address \(gateway)")
      }
      var routes = ipam.routes.filter { $0.dst.address.isIPv4 == ipv4 }
      if routes.isEmpty {
        routes = [CNIResult.Route(dst: .defaultRoute(ipv4: ipv4))]
      }
      routes = routes.map { route in
        var route = route
        route.dst = route.dst.network
        if route.gw == nil { route.gw = gateway }
        return route
      }
      if let crossed = routes.first(where: { $0.gw.map(\.isIPv4) == !ipv4 }) {
        throw CNIError(
          .delegatedPluginFailed,
          "the IPAM plugin returned the route \(crossed.dst) via \(crossed.gw!), a gateway of "
            + "the other address family")
      }
      return Family(addresses: addresses, gateway: gateway, routes: routes)
    }
    return PodAddressing(
      ipv4: try family(true), ipv6: try family(false), dns: dnsOverride ?? ipam.dns)
  }

  /// The ADD result: the host-side veth first, the pod interface second, addresses and
  /// routes on the pod interface (index 1).
  public func result(
    host: CNIResult.Interface, pod: CNIResult.Interface
  ) -> CNIResult {
    CNIResult(
      interfaces: [host, pod],
      ips: families.flatMap { family in
        family.addresses.map {
          CNIResult.IPConfig(address: $0, gateway: family.gateway, interface: 1)
        }
      },
      routes: families.flatMap(\.routes),
      dns: dns)
  }
}
