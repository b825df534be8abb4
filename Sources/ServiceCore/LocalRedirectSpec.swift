import CNIKit

/// One entry of a Local Redirect Policy's `toPorts` (frontend or backend side):
/// `{port: "53", name: dns, protocol: UDP}`.
public struct RedirectPort: Hashable, Sendable, CustomStringConvertible {
  public var name: String
  public var port: UInt16
  public var proto: L4Protocol

  public init(name: String = "", port: UInt16, proto: L4Protocol = .tcp) {
    self.name = name
    self.port = port
    self.proto = proto
  }

  public var description: String {
    (name.isEmpty ? "" : "\(name)=") + "\(port)/\(proto.rawValue)"
  }
}

/// A `matchExpressions` entry of a label selector.
public struct LabelRequirement: Hashable, Sendable {
  public enum Operator: String, Hashable, Sendable, CaseIterable {
    case `in` = "In"
    case notIn = "NotIn"
    case exists = "Exists"
    case doesNotExist = "DoesNotExist"
  }

  public var key: String
  public var op: Operator
  public var values: [String]

  public init(key: String, op: Operator, values: [String] = []) {
    self.key = key
    self.op = op
    self.values = values
  }

  public func matches(_ labels: [String: String]) -> Bool {
    switch op {
    case .in: labels[key].map(values.contains) ?? false
    case .notIn: labels[key].map { !values.contains($0) } ?? true
    case .exists: labels[key] != nil
    case .doesNotExist: labels[key] == nil
    }
  }
}

/// A Kubernetes label selector: every `matchLabels` pair and every expression must hold (an
/// empty selector selects everything, as in Kubernetes).
public struct LabelSelector: Hashable, Sendable {
  public var matchLabels: [String: String]
  public var matchExpressions: [LabelRequirement]

  public init(matchLabels: [String: String] = [:], matchExpressions: [LabelRequirement] = []) {
    self.matchLabels = matchLabels
    self.matchExpressions = matchExpressions
  }

  public func matches(_ labels: [String: String]) -> Bool {
    matchLabels.allSatisfy { labels[$0.key] == $0.value }
      && matchExpressions.allSatisfy { $0.matches(labels) }
  }
}

/// What a Local Redirect Policy redirects.
public enum RedirectFrontend: Hashable, Sendable {
  /// `serviceMatcher`: the Service's ClusterIP frontends, all its ports or only `ports`.
  case service(NamespacedName, ports: [RedirectPort])
  /// `addressMatcher`: `address` on each of `ports` (a frontend of its own).
  case address(IPAddress, ports: [RedirectPort])
}

/// The meaning of a `LocalRedirectPolicy` / `CiliumLocalRedirectPolicy` spec.
public struct LocalRedirectSpec: Hashable, Sendable {
  public var frontend: RedirectFrontend
  /// `redirectBackend.localEndpointSelector`, over the ready pods of the policy's namespace
  /// on this node.
  public var selector: LabelSelector
  /// `redirectBackend.toPorts`: the pods' ports the frontend ports map to.
  public var backendPorts: [RedirectPort]
  public var skipRedirectFromBackend: Bool

  public init(
    frontend: RedirectFrontend, selector: LabelSelector, backendPorts: [RedirectPort],
    skipRedirectFromBackend: Bool = false
  ) {
    self.frontend = frontend
    self.selector = selector
    self.backendPorts = backendPorts
    self.skipRedirectFromBackend = skipRedirectFromBackend
  }

  /// The backend port a frontend port is redirected to: when both sides name their ports,
  /// the one with the same name (names pair ports, as in Cilium's node-local DNS example:
  /// `dns` to `dns`, `dns-tcp` to `dns-tcp`); otherwise the only backend port of that
  /// protocol. nil when nothing fits.
  public func backendPort(for frontend: RedirectPort) -> RedirectPort? {
    let sameProtocol = backendPorts.filter { $0.proto == frontend.proto }
    if !frontend.name.isEmpty && sameProtocol.contains(where: { !$0.name.isEmpty }) {
      return sameProtocol.first { $0.name == frontend.name }
    }
    return sameProtocol.count == 1 ? sameProtocol[0] : nil
  }
}
