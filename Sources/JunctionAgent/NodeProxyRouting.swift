import AgentCore
import DatapathABI
import NetKit
import ServiceCore

/// The agent's side of the L7 proxy redirect: the routing that makes the node take the
/// packets the datapath hands to its proxy (bpf/junction_abi.h, "L7 proxy redirect"), in the
/// agent's own namespace (the node's).
enum NodeProxyRouting {
  static let routing = ProxyRouting(
    mark: UInt32(JUNCTION_MARK_TO_PROXY), mask: UInt32(JUNCTION_MARK_TO_PROXY_MASK),
    table: UInt32(JUNCTION_PROXY_ROUTE_TABLE), priority: UInt32(JUNCTION_PROXY_RULE_PRIORITY))

  /// Installs (idempotently) or removes the rule and the route.
  @Sendable static func apply(_ present: Bool) throws {
    let socket = try RouteSocket()
    if present {
      try socket.installProxyRouting(routing)
    } else {
      try socket.removeProxyRouting(routing)
    }
  }
}

extension ProxyRedirectFlag {
  /// The redirect this flag asks for, owned by "--proxy-redirect".
  var proxyRedirect: ProxyRedirect {
    ProxyRedirect(
      service: NamespacedName(namespace: namespace, name: name), ports: Set(ports),
      proxyPort: proxyPort, owner: "--proxy-redirect")
  }
}
