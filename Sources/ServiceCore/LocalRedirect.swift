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

/// Decoding and validation of the spec, with every problem as a field issue.
enum RedirectPolicyDecoding {
  static func decode(_ root: FieldReader, meta: ObjectMeta) -> LocalRedirectSpec? {
    guard let spec = root.reader("spec") else {
      root.fail("spec", "is required")
      return nil
    }
    let frontendReader = spec.reader("redirectFrontend")
    var frontend: RedirectFrontend?
    if let frontendReader {
      let serviceMatcher = frontendReader.reader("serviceMatcher")
      let addressMatcher = frontendReader.reader("addressMatcher")
      switch (serviceMatcher, addressMatcher) {
      case (nil, nil):
        spec.fail("redirectFrontend", "one of serviceMatcher or addressMatcher is required")
      case (.some, .some):
        spec.fail("redirectFrontend", "serviceMatcher and addressMatcher are mutually exclusive")
      case (let matcher?, nil):
        frontend = decodeServiceMatcher(matcher, meta: meta)
      case (nil, let matcher?):
        frontend = decodeAddressMatcher(matcher)
      }
    } else {
      spec.fail("redirectFrontend", "is required")
    }

    var selector: LabelSelector?
    var backendPorts: [RedirectPort] = []
    if let backend = spec.reader("redirectBackend") {
      if let selectorReader = backend.reader("localEndpointSelector") {
        selector = decodeSelector(selectorReader)
      } else {
        backend.fail("localEndpointSelector", "is required")
      }
      backendPorts = decodePorts(backend, required: true)
    } else {
      spec.fail("redirectBackend", "is required")
    }
    let skip = spec.bool("skipRedirectFromBackend") ?? false
    guard let frontend, let selector else { return nil }
    return LocalRedirectSpec(
      frontend: frontend, selector: selector, backendPorts: backendPorts,
      skipRedirectFromBackend: skip)
  }

  static func decodeServiceMatcher(_ matcher: FieldReader, meta: ObjectMeta) -> RedirectFrontend? {
    let name = matcher.string("serviceName") ?? ""
    if name.isEmpty {
      matcher.fail("serviceName", "is required")
    } else if let problem = KubernetesNames.dns1035Label(name) {
      matcher.fail("serviceName", "\"\(name)\" is not valid: \(problem)")
    }
    let namespace = matcher.string("namespace") ?? meta.namespace
    // As Cilium: a policy redirects only Services of its own namespace.
    if namespace != meta.namespace {
      matcher.fail(
        "namespace",
        "\"\(namespace)\" must be the policy's own namespace \"\(meta.namespace)\"")
    }
    let ports = decodePorts(matcher, required: false)
    guard !name.isEmpty else { return nil }
    return .service(NamespacedName(namespace: namespace, name: name), ports: ports)
  }

  static func decodeAddressMatcher(_ matcher: FieldReader) -> RedirectFrontend? {
    var address: IPAddress?
    if let text = matcher.string("ip") {
      if let parsed = IPAddress(text), parsed.isIPv4 {
        address = parsed
      } else {
        matcher.fail("ip", "\"\(text)\" is not an IPv4 address")
      }
    } else {
      matcher.fail("ip", "is required")
    }
    let ports = decodePorts(matcher, required: true)
    guard let address else { return nil }
    return .address(address, ports: ports)
  }

  /// `toPorts`: port (a number, or a string of digits as Cilium writes it), name, protocol
  /// (TCP or UDP; TCP when omitted). With several ports each needs a distinct name, which is
  /// what pairs frontend and backend ports.
  static func decodePorts(_ reader: FieldReader, required: Bool) -> [RedirectPort] {
    let entries = reader.readers("toPorts")
    if entries.isEmpty && required { reader.fail("toPorts", "at least one port is required") }
    var ports: [RedirectPort] = []
    var names: Set<String> = []
    for entry in entries {
      var number: UInt16?
      switch entry.raw("port") {
      case nil:
        entry.fail("port", "is required")
      case .int(let value)?:
        number = (1...65535).contains(value) ? UInt16(value) : nil
        if number == nil { entry.fail("port", "\(value) is out of range (1-65535)") }
      case .string(let text)?:
        number = UInt16(text).flatMap { $0 == 0 ? nil : $0 }
        if number == nil { entry.fail("port", "\"\(text)\" is not a port number (1-65535)") }
      case let other?:
        entry.fail("port", "must be a port number, got \(other.typeName)")
      }
      let name = entry.string("name") ?? ""
      if !name.isEmpty {
        if let problem = KubernetesNames.dns1123Label(name) {
          entry.fail("name", "\"\(name)\" is not valid: \(problem)")
        } else if !names.insert(name).inserted {
          entry.fail("name", "\"\(name)\" is used by another port")
        }
      } else if entries.count > 1 {
        entry.fail("name", "is required when toPorts has more than one port")
      }
      var proto = L4Protocol.tcp
      if let text = entry.string("protocol") {
        if let parsed = L4Protocol(rawValue: text), parsed != .sctp {
          proto = parsed
        } else {
          entry.fail(
            "protocol", "unsupported value \"\(text)\": supported values: \"TCP\", \"UDP\"")
        }
      }
      if let number { ports.append(RedirectPort(name: name, port: number, proto: proto)) }
    }
    return ports
  }

  static func decodeSelector(_ reader: FieldReader) -> LabelSelector {
    var selector = LabelSelector(matchLabels: reader.stringMap("matchLabels"))
    for entry in reader.readers("matchExpressions") {
      let key = entry.string("key") ?? ""
      if key.isEmpty { entry.fail("key", "is required") }
      let opText = entry.string("operator") ?? ""
      let values = entry.strings("values").map(\.value)
      guard let op = LabelRequirement.Operator(rawValue: opText) else {
        entry.fail(
          "operator",
          opText.isEmpty
            ? "is required"
            : "unsupported value \"\(opText)\": supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
        )
        continue
      }
      switch op {
      case .in, .notIn:
        if values.isEmpty { entry.fail("values", "must be non-empty for operator \(opText)") }
      case .exists, .doesNotExist:
        if !values.isEmpty { entry.fail("values", "must be empty for operator \(opText)") }
      }
      if !key.isEmpty {
        selector.matchExpressions.append(LabelRequirement(key: key, op: op, values: values))
      }
    }
    return selector
  }
}

/// The part a policy plays on one frontend: redirect it to these local pods.
public struct RedirectClaim: Hashable, Sendable {
  public var key: FrontendKey
  /// The policy (kind, namespace, name).
  public var policy: ResourceKey
  /// The frontend's original Service (service matcher), nil for an address matcher.
  public var service: NamespacedName?
  public var portName: String
  /// This node's ready pods selected by the policy, on the mapped port; empty when none is
  /// ready (the frontend then stays the Service's, or is absent for an address matcher).
  public var backends: [PlannedBackend]
  public var skipFromBackend: Bool
}

/// Everything one policy contributes, computed from the policy, its Service and this node's
/// pods alone (so a change to one of those re-plans this policy only).
public struct RedirectContribution: Hashable, Sendable {
  public var claims: [RedirectClaim] = []
  public var notes: [String] = []
  /// The Service a service matcher names (its changes re-plan the policy).
  public var service: NamespacedName?
  /// The policy's backends: this node's ready selected pods, by name.
  public var pods: [LocalPod] = []
}

/// A pod a policy redirects to.
public struct LocalPod: Hashable, Sendable {
  public var name: NamespacedName
  public var address: IPAddress
}

/// Local Redirect Policy planning, per node (Cilium's redirectpolicy controller, per agent):
///
/// - Backends: the pods of the policy's namespace on this node that are Ready, have an IPv4
///   address and match `localEndpointSelector`, on the backend port each frontend port maps
///   to (`LocalRedirectSpec.backendPort(for:)`).
/// - `serviceMatcher`: every IPv4 cluster IP × Service port (or only the ports its `toPorts`
///   names, by name or number). The frontend keeps its key and rev-NAT id and becomes type
///   `LocalRedirect` with the local pods as its only backends; with none ready it stays the
///   Service's (traffic falls back to the original Service).
/// - `addressMatcher`: a `LocalRedirect` frontend at ip:port for each of its ports, present
///   only while a local backend is ready; an address another Service already serves is left
///   to that Service (Cilium: "refusing to override").
/// - `skipRedirectFromBackend`: the backends' own traffic to the frontend is not redirected
///   back to them (it gets the original Service, or passes untouched).
public enum LocalRedirectPlanner {
  public static func contribution(
    of policyKey: ResourceKey, policy: RedirectPolicy, service: Service?, localPods: [Pod]
  ) -> RedirectContribution {
    var result = RedirectContribution()
    guard let spec = policy.redirect else { return result }
    let label = "\(policy.kind) \(policy.meta.namespacedName)"
    let pods = localPods.filter {
      $0.ready && $0.meta.namespace == policy.meta.namespace
        && spec.selector.matches($0.meta.labels)
        && $0.podIPs.contains(where: \.isIPv4)
    }.sorted { $0.meta.name < $1.meta.name }
    result.pods = pods.map {
      LocalPod(name: $0.meta.namespacedName, address: $0.podIPs.first(where: \.isIPv4)!)
    }

    func backends(_ frontendPort: RedirectPort) -> [PlannedBackend]? {
      guard let target = spec.backendPort(for: frontendPort) else {
        result.notes.append(
          "\(label): frontend port \(frontendPort) has no matching redirectBackend port: not redirected"
        )
        return nil
      }
      var seen: Set<BackendKey> = []
      return pods.compactMap { pod in
        let address = pod.podIPs.first(where: \.isIPv4)!
        let key = BackendKey(address: address, port: target.port, proto: target.proto)
        guard seen.insert(key).inserted else { return nil }
        return PlannedBackend(
          key: key, state: .active, nodeName: pod.nodeName, zone: nil, isLocal: true)
      }.sorted { $0.key < $1.key }
    }

    switch spec.frontend {
    case .service(let name, let wanted):
      result.service = name
      guard let service else {
        result.notes.append("\(label): Service \(name) not found: nothing redirected yet")
        return result
      }
      if service.clusterIPs.isEmpty {
        result.notes.append("\(label): Service \(name) has no IPv4 clusterIP: nothing redirected")
      }
      for port in service.ports {
        if !wanted.isEmpty
          && !wanted.contains(where: {
            $0.proto == port.proto
              && (port.name.isEmpty
                ? $0.port == port.port : $0.name == port.name || $0.port == port.port)
          })
        {
          continue
        }
        let frontendPort = RedirectPort(name: port.name, port: port.port, proto: port.proto)
        guard let planned = backends(frontendPort) else { continue }
        for address in service.clusterIPs {
          result.claims.append(
            RedirectClaim(
              key: FrontendKey(address: address, port: port.port, proto: port.proto),
              policy: policyKey, service: name, portName: port.name, backends: planned,
              skipFromBackend: spec.skipRedirectFromBackend))
        }
      }
    case .address(let address, let ports):
      for port in ports {
        guard let planned = backends(port) else { continue }
        result.claims.append(
          RedirectClaim(
            key: FrontendKey(address: address, port: port.port, proto: port.proto),
            policy: policyKey, service: nil, portName: port.name, backends: planned,
            skipFromBackend: spec.skipRedirectFromBackend))
      }
    }
    return result
  }

  /// The frontend a key ends up with: the Service's claim (`serviceClaim`, held by `owner`),
  /// overridden by the first policy's redirect when it has ready local backends. nil: no
  /// frontend at all.
  static func resolve(
    serviceClaim: FrontendClaim?, owner: NamespacedName?, redirects: [RedirectClaim],
    notes: inout [String]
  ) -> (claim: FrontendClaim, holder: NamespacedName)? {
    let original = serviceClaim.flatMap { claim in owner.map { (claim, $0) } }
    for (index, redirect) in redirects.enumerated() {
      if index > 0 {
        notes.append(
          "frontend \(redirect.key): \(redirect.policy) is ignored: \(redirects[0].policy) already redirects it"
        )
        continue
      }
      if let service = redirect.service {
        // A service matcher only takes over its own Service's ClusterIP frontend.
        guard let (claim, holder) = original, holder == service, claim.type == .clusterIP else {
          continue
        }
        guard !redirect.backends.isEmpty else { continue }
        var redirected = claim
        redirected.type = .localRedirect
        redirected.portName = redirect.portName
        redirected.backends = redirect.backends
        redirected.affinityTimeout = nil
        redirected.algorithm = .random
        redirected.isLocalPolicy = false
        redirected.redirect = FrontendClaim.Redirect(
          policy: redirect.policy, skipFromBackend: redirect.skipFromBackend,
          origin: redirect.skipFromBackend ? claim.backends : nil)
        return (redirected, holder)
      }
      if let (_, holder) = original {
        notes.append(
          "frontend \(redirect.key): \(redirect.policy) is ignored: the address is Service \(holder)'s"
        )
        continue
      }
      guard !redirect.backends.isEmpty else { return nil }
      let holder = NamespacedName(namespace: redirect.policy.namespace, name: redirect.policy.name)
      var claim = FrontendClaim(
        key: redirect.key, type: .localRedirect, portName: redirect.portName,
        backends: redirect.backends, affinityTimeout: nil, algorithm: .random)
      claim.redirect = FrontendClaim.Redirect(
        policy: redirect.policy, skipFromBackend: redirect.skipFromBackend, origin: nil)
      return (claim, holder)
    }
    return original
  }
}

extension FrontendClaim {
  /// A redirected frontend's policy settings, with the original Service's backends when the
  /// policy's own pods must not be redirected to themselves.
  public struct Redirect: Hashable, Sendable {
    public var policy: ResourceKey
    public var skipFromBackend: Bool
    /// The original Service's backends (service matcher with `skipRedirectFromBackend`),
    /// nil when the policy's pods get no origin (address matcher, or no skip).
    public var origin: [PlannedBackend]?
  }
}

/// A `localRedirect` frontend's policy and, for `skipRedirectFromBackend`, what the policy's
/// own pods get instead of themselves: `origin`, the original Service's backends (written
/// under the frontend's redirect-origin scope), or, when nil, nothing (their packets pass
/// untouched: an address matcher).
public struct FrontendRedirect: Hashable, Sendable {
  public var policy: ResourceKey
  public var skipFromBackend: Bool
  public var origin: [ServiceBackend]?

  public init(policy: ResourceKey, skipFromBackend: Bool, origin: [ServiceBackend]? = nil) {
    self.policy = policy
    self.skipFromBackend = skipFromBackend
    self.origin = origin
  }

  /// The origin backends new connections may go to, by `ServiceFrontend.selectable`'s rule.
  public var selectableOrigin: [ServiceBackend]? {
    guard let origin else { return nil }
    let active = origin.filter { $0.state == .active }
    return active.isEmpty ? origin.filter { $0.state == .terminating } : active
  }
}

extension ServiceFrontend {
  /// Every backend entry the frontend references: its slots' and its redirect origin's.
  public var allBackends: [ServiceBackend] { backends + (redirect?.origin ?? []) }
}
