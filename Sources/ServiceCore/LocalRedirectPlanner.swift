import CNIKit

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

/// A pod a policy redirects to, with one of its addresses (a dual-stack pod is listed once per
/// family).
public struct LocalPod: Hashable, Sendable {
  public var name: NamespacedName
  public var address: IPAddress
}

/// Local Redirect Policy planning, per node (Cilium's redirectpolicy controller, per agent):
///
/// - Backends: the pods of the policy's namespace on this node that are Ready and match
///   `localEndpointSelector`, on the backend port each frontend port maps to
///   (`LocalRedirectSpec.backendPort(for:)`), at their address of the frontend's family (an
///   IPv6 frontend goes to the pods' IPv6 addresses, as kube-proxy and Cilium keep families
///   apart; a pod without one is no backend of it).
/// - `serviceMatcher`: every cluster IP of either family × Service port (or only the ports
///   its `toPorts` names, by name or number). The frontend keeps its key and rev-NAT id and
///   becomes type `LocalRedirect` with the local pods as its only backends; with none ready
///   (of that family) it stays the Service's (traffic falls back to the original Service).
/// - `addressMatcher`: a `LocalRedirect` frontend at ip:port (IPv4 or IPv6) for each of its
///   ports, present only while a local backend of that family is ready; an address another
///   Service already serves is left to that Service (Cilium: "refusing to override").
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
        && !$0.podIPs.isEmpty
    }.sorted { $0.meta.name < $1.meta.name }
    // One address per family (a pod's first of each), IPv4 first.
    func address(of pod: Pod, ipv4: Bool) -> IPAddress? {
      pod.podIPs.first { $0.isIPv4 == ipv4 }
    }
    result.pods = pods.flatMap { pod in
      [true, false].compactMap { ipv4 in
        address(of: pod, ipv4: ipv4).map { LocalPod(name: pod.meta.namespacedName, address: $0) }
      }
    }

    /// The local backends of an IPv4 (`ipv4`) or IPv6 frontend on `frontendPort`; nil
    /// when the port maps to no backend port.
    func backends(_ frontendPort: RedirectPort, ipv4: Bool) -> [PlannedBackend]? {
      guard let target = spec.backendPort(for: frontendPort) else {
        result.notes.append(
          "\(label): frontend port \(frontendPort) has no matching redirectBackend port: not redirected"
        )
        return nil
      }
      var seen: Set<BackendKey> = []
      return pods.compactMap { pod in
        guard let address = address(of: pod, ipv4: ipv4) else { return nil }
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
      // Both families: each cluster IP goes to the pods' addresses of its own family.
      let clusterIPs = service.clusterIPs
      if clusterIPs.isEmpty {
        result.notes.append("\(label): Service \(name) has no clusterIP: nothing redirected")
      }
      for ipv4 in [true, false]
      where clusterIPs.contains(where: { $0.isIPv4 == ipv4 }) && !pods.isEmpty
        && !pods.contains(where: { address(of: $0, ipv4: ipv4) != nil })
      {
        result.notes.append(
          "\(label): no selected pod here has an \(ipv4 ? "IPv4" : "IPv6") address: the "
            + "Service's \(ipv4 ? "IPv4" : "IPv6") clusterIP keeps its own backends")
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
        guard let planned4 = backends(frontendPort, ipv4: true),
          let planned6 = backends(frontendPort, ipv4: false)
        else { continue }
        for address in clusterIPs {
          let planned = address.isIPv4 ? planned4 : planned6
          result.claims.append(
            RedirectClaim(
              key: FrontendKey(address: address, port: port.port, proto: port.proto),
              policy: policyKey, service: name, portName: port.name, backends: planned,
              skipFromBackend: spec.skipRedirectFromBackend))
        }
      }
    case .address(let address, let ports):
      for port in ports {
        guard let planned = backends(port, ipv4: address.isIPv4) else { continue }
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
