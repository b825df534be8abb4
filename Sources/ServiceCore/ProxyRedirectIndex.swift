/// The node's proxy redirects (`ProxyRedirect`) by Service, as `ServiceTable` applies them:
/// which TCP frontends of a Service go to the L7 proxy, and to which listener port.
///
/// A frontend is redirected when its Service has a redirect covering its *service* port
/// (`ProxyRedirect.ports`, by number): the ClusterIP frontend, and the NodePort, ExternalIP
/// and LoadBalancer frontends of the same port (their own port is the nodePort for NodePort
/// frontends, which is why claims carry the Service port). Only TCP frontends: the proxy
/// listens on TCP. Two redirects of one Service port (two owners asking for different
/// listeners): the first in `ProxyRedirect`'s order wins, and the set says so in `notes`.
/// A Local Redirect Policy's frontend is not proxy-redirected (the policy took the address
/// over); neither are frontends of a Service that does not exist (a note, until it does).
public struct ProxyRedirectIndex: Hashable, Sendable {
  /// Sorted, without duplicates.
  public private(set) var redirects: [ProxyRedirect] = []
  private var byService: [NamespacedName: [ProxyRedirect]] = [:]

  public init(_ redirects: [ProxyRedirect] = []) {
    self.redirects = Array(Set(redirects)).sorted()
    for redirect in self.redirects { byService[redirect.service, default: []].append(redirect) }
  }

  /// The redirected Services.
  public var services: Set<NamespacedName> { Set(byService.keys) }

  /// The listener port for a frontend of `service` on `servicePort`/`proto`, or nil.
  public func proxyPort(service: NamespacedName, servicePort: UInt16, proto: L4Protocol)
    -> UInt16?
  {
    guard proto == .tcp else { return nil }
    return byService[service]?.first { $0.covers(port: servicePort) }?.proxyPort
  }

  /// Redirects that ask for a port another redirect of the same Service already has.
  public var notes: [String] {
    var notes: [String] = []
    for service in byService.keys.sorted() {
      let list = byService[service]!
      for (index, later) in list.enumerated() {
        for earlier in list[..<index] where earlier.proxyPort != later.proxyPort {
          let overlap =
            earlier.ports.isEmpty || later.ports.isEmpty
            || !earlier.ports.isDisjoint(with: later.ports)
          if overlap {
            notes.append(
              "proxy redirect \(later): ports already sent to proxy :\(earlier.proxyPort) [\(earlier.owner)] keep that listener"
            )
            break
          }
        }
      }
    }
    return notes
  }
}
