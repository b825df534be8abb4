/// `ServiceTable`'s Local Redirect Policy state, kept up to date change by change like the
/// Services': each policy's contribution (`LocalRedirectPlanner`), the policies redirecting
/// each frontend, and this node's pods. A change re-plans the policies it touches: the
/// policy itself, a pod on this node in the policy's namespace, or the Service it names.
struct RedirectIndex: Sendable {
  private(set) var contributions: [ResourceKey: RedirectContribution] = [:]
  /// The policies redirecting each frontend, sorted: the first one wins.
  private var claimants: [FrontendKey: [ResourceKey]] = [:]
  /// Pods on this node (`spec.nodeName`), the only possible backends.
  private var localPods: [ResourceKey: Pod] = [:]

  struct Changes: Sendable {
    var contributions: [ResourceKey: RedirectContribution?] = [:]
    var claimants: [FrontendKey: [ResourceKey]] = [:]
    var localPods: [ResourceKey: Pod?] = [:]
    /// The notes of the policies re-planned.
    var notes: [String] = []
  }

  var notes: [String] { contributions.keys.sorted().flatMap { contributions[$0]!.notes } }

  static func isPolicy(_ key: ResourceKey) -> Bool {
    key.kind == .localRedirectPolicy || key.kind == .ciliumLocalRedirectPolicy
  }

  /// Re-plans the policies `changed` touches (`object` reads a key as it will be) and adds
  /// every frontend whose redirect may change to `frontendKeys`.
  func prepare(
    changed: Set<ResourceKey>, object: (ResourceKey) -> Resource?, nodeName: String?,
    frontendKeys: inout Set<FrontendKey>
  ) -> Changes {
    var result = Changes()
    var podNamespaces: Set<String> = []
    var services: Set<NamespacedName> = []
    var affected: Set<ResourceKey> = []
    for key in changed {
      switch key.kind {
      case .pod:
        var pod: Pod?
        if case .pod(let value) = object(key), nodeName != nil, value.nodeName == nodeName {
          pod = value
        }
        if pod != nil || localPods[key] != nil {
          result.localPods[key] = .some(pod)
          podNamespaces.insert(key.namespace)
        }
      case .service:
        services.insert(NamespacedName(namespace: key.namespace, name: key.name))
      case .localRedirectPolicy, .ciliumLocalRedirectPolicy:
        affected.insert(key)
      default:
        continue
      }
    }
    guard !affected.isEmpty || !podNamespaces.isEmpty || !services.isEmpty else { return result }
    for (key, contribution) in contributions
    where podNamespaces.contains(key.namespace)
      || contribution.service.map(services.contains) == true
    {
      affected.insert(key)
    }
    guard !affected.isEmpty else { return result }

    var pods = localPods
    for (key, pod) in result.localPods { pods[key] = pod }
    let podList = pods.keys.sorted().map { pods[$0]! }
    var newClaims: [FrontendKey: [ResourceKey]] = [:]
    for key in affected {
      var contribution: RedirectContribution?
      if case .redirectPolicy(let policy) = object(key) {
        var service: Service?
        if case .service(let name, _) = policy.redirect?.frontend,
          case .service(let value) = object(
            ResourceKey(kind: .service, namespace: name.namespace, name: name.name))
        {
          service = value
        }
        contribution = LocalRedirectPlanner.contribution(
          of: key, policy: policy, service: service,
          localPods: podList.filter { $0.meta.namespace == key.namespace })
      }
      result.contributions[key] = .some(contribution)
      result.notes += contribution?.notes ?? []
      for claim in contributions[key]?.claims ?? [] { frontendKeys.insert(claim.key) }
      for claim in contribution?.claims ?? [] {
        frontendKeys.insert(claim.key)
        newClaims[claim.key, default: []].append(key)
      }
    }
    for key in frontendKeys {
      let before = claimants[key] ?? []
      let after = (before.filter { !affected.contains($0) } + (newClaims[key] ?? [])).sorted()
      if after != before { result.claimants[key] = after }
    }
    return result
  }

  /// The redirects of `key` once `changes` are applied, first policy first.
  func claims(for key: FrontendKey, in changes: Changes) -> [RedirectClaim] {
    (changes.claimants[key] ?? claimants[key] ?? []).compactMap { policy in
      let contribution: RedirectContribution?
      if let planned = changes.contributions[policy] {
        contribution = planned
      } else {
        contribution = contributions[policy]
      }
      return contribution?.claims.first { $0.key == key }
    }
  }

  mutating func commit(_ changes: Changes) {
    for (key, contribution) in changes.contributions { contributions[key] = contribution }
    for (key, names) in changes.claimants { claimants[key] = names.isEmpty ? nil : names }
    for (key, pod) in changes.localPods { localPods[key] = pod }
  }
}

/// One Local Redirect Policy as this node applies it (`junctionctl lrp list`).
public struct LocalRedirectStatus: Hashable, Sendable {
  public struct Frontend: Hashable, Sendable {
    public var key: FrontendKey
    /// The policy holds the frontend now. False when no selected pod is ready here (the
    /// Service keeps it, or an address is not served) or another owner holds it.
    public var redirected: Bool
    public var backends: [BackendKey]
  }

  public var policy: ResourceKey
  /// "service" or "address".
  public var matcher: String
  /// The Service a service matcher names.
  public var service: NamespacedName?
  public var skipRedirectFromBackend: Bool
  public var frontends: [Frontend]
  public var pods: [LocalPod]
  public var notes: [String]
}

extension ServiceTable {
  /// Every policy the table holds, sorted by kind, namespace and name.
  public var localRedirects: [LocalRedirectStatus] {
    resources.objects.keys.filter(RedirectIndex.isPolicy).sorted().compactMap { key in
      guard case .redirectPolicy(let policy) = resources.objects[key] else { return nil }
      let contribution = redirects.contributions[key] ?? RedirectContribution()
      var matcher = "service"
      if case .address = policy.redirect?.frontend { matcher = "address" }
      return LocalRedirectStatus(
        policy: key, matcher: matcher, service: contribution.service,
        skipRedirectFromBackend: policy.redirect?.skipRedirectFromBackend ?? false,
        frontends: contribution.claims.map { claim in
          LocalRedirectStatus.Frontend(
            key: claim.key, redirected: frontends[claim.key]?.redirect?.policy == key,
            backends: claim.backends.map(\.key))
        },
        pods: contribution.pods, notes: contribution.notes)
    }
  }
}
