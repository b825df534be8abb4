import CNIKit

/// One object to store or remove.
public enum ResourceEdit: Sendable {
  case upsert(Resource, document: StoredDocument?)
  case remove(ResourceKey)

  public var key: ResourceKey {
    switch self {
    case .upsert(let resource, _): resource.key
    case .remove(let key): key
    }
  }
}

/// The node's services, kept up to date one change at a time: the stored resources, the id
/// tables, and the desired frontends, with indexes so that a change costs what it touches,
/// not what the node holds (changing one backend among 10,000 services re-plans one Service
/// and diffs its frontends only).
///
/// A change is worked out first without touching the table (`prepare`), so it can be refused
/// (a frontend conflict it would introduce) or abandoned (the journal could not be written,
/// a map write failed) at no cost, and applied with `commit` once it has been stored and
/// programmed. Its result is always what `ServicePlanner.plan` gives for the whole new set.
///
/// Frontend ownership: when several Services claim one address:port/protocol, the first by
/// namespace/name holds it (the others are listed in `conflicts`); when the holder lets go,
/// the next claimant takes the frontend over, keeping its id.
public struct ServiceTable: Sendable {
  public private(set) var resources = ResourceSet()
  public private(set) var ids: LoadBalancerIDs
  /// Where NodePorts listen and which protocols use DSR.
  public let northSouth: NorthSouthPolicy
  public var nodeAddresses: [IPAddress] { northSouth.nodeAddresses }
  /// This node's name and zone, for topology-aware backends; the zone follows the applied
  /// `Node` of that name.
  public private(set) var topology: NodeTopology
  public private(set) var frontends: [FrontendKey: ServiceFrontend] = [:]
  /// Each Service's IPv4 and IPv6 EndpointSlices (by the `kubernetes.io/service-name` label).
  private var slicesByService: [NamespacedName: Set<ResourceKey>] = [:]
  /// Each Service's plan as far as it is needed later (`PlanSummary`): not its backends.
  private var contributions: [NamespacedName: PlanSummary] = [:]
  /// The Services claiming each frontend, sorted: the first holds it.
  private var claimants: [FrontendKey: [NamespacedName]] = [:]
  /// How many frontends reference each backend, for the backends referenced more than once;
  /// a backend's entry (and id) lives while it has users (`users(of:)`). A backend with an id
  /// and no count here has exactly one: most backends (a ClusterIP Service's pods) then take
  /// no slot in a dictionary of every backend (5 MiB at 100,000: 262,144 buckets of a 16-byte
  /// key and a count). Int32: at most two references from each of ≤ 65,535 frontends.
  private var backendUsers: [BackendKey: Int32] = [:]
  /// False while every count is kept here, ones too: when the backend id table was handed in
  /// with keys that nothing in this table is known to use yet (a stored table, before
  /// `init(resources:ids:)` has released the unused ones).
  private var singleUsersImplied: Bool
  /// Local Redirect Policies: see ServiceTable+LocalRedirect.swift.
  var redirects = RedirectIndex()
  /// Services whose TCP frontends go to the node's L7 proxy (`ProxyRedirectIndex`): an
  /// input beside the resources, changed through `prepare(_:proxyRedirects:)` like them.
  public private(set) var proxyRedirects = ProxyRedirectIndex()

  public init(
    ids: LoadBalancerIDs = LoadBalancerIDs(), northSouth: NorthSouthPolicy = NorthSouthPolicy(),
    nodeName: String? = nil
  ) {
    self.ids = ids
    self.northSouth = northSouth
    singleUsersImplied = ids.backends.table.ids.isEmpty
    topology = NodeTopology(nodeName: nodeName)
  }

  /// Everything in `resources` at once, keeping the ids a previous run gave (`ids`, as
  /// stored) and releasing those nothing uses any more.
  public init(
    resources: ResourceSet, ids: LoadBalancerIDs,
    northSouth: NorthSouthPolicy = NorthSouthPolicy(), nodeName: String? = nil,
    proxyRedirects: [ProxyRedirect] = []
  ) {
    self.init(ids: ids, northSouth: northSouth, nodeName: nodeName)
    let edits = resources.objects.keys.sorted().map {
      ResourceEdit.upsert(resources.objects[$0]!, document: resources.documents[$0])
    }
    // Conflicts already stored are reported (`conflicts`), not refused.
    singleUsersImplied = false
    commit(try! prepare(edits, proxyRedirects: proxyRedirects, refusingNewConflicts: false))
    self.ids.services.table.retain(only: Set(frontends.keys))
    self.ids.backends.table.retain(only: Set(backendUsers.keys))
    // Now every backend with an id is in use: the ones used once need no count.
    backendUsers = backendUsers.filter { $0.value > 1 }
    singleUsersImplied = true
  }

  /// The whole desired state, frontends sorted by key.
  public var desiredState: DesiredState {
    let services = contributions.keys.sorted()
    return DesiredState(
      frontends: frontends.keys.sorted().map { frontends[$0]! },
      notes: services.flatMap { contributions[$0]!.notes } + redirects.notes
        + proxyRedirects.notes + missingProxyServices(proxyRedirects),
      conflicts: claimants.keys.sorted().flatMap { Self.conflicts($0, claimants[$0]!) })
  }

  /// A change worked out against the table, ready to `commit`.
  public struct Update: Sendable {
    /// The map writes that take the datapath from the table's state to the new one.
    public fileprivate(set) var diff = DesiredStateDiff()
    /// Notes of the Services the change touched (headless, unresolvable ports, ids
    /// exhausted, ...).
    public fileprivate(set) var notes: [String] = []
    /// Conflicts the touched frontends have after the change (including ones already there).
    public fileprivate(set) var conflicts: [String] = []

    fileprivate var resources: [ResourceKey: (Resource, StoredDocument?)?] = [:]
    fileprivate var slicesByService: [NamespacedName: Set<ResourceKey>] = [:]
    fileprivate var contributions: [NamespacedName: ServiceContribution?] = [:]
    fileprivate var claimants: [FrontendKey: [NamespacedName]] = [:]
    fileprivate var frontends: [FrontendKey: ServiceFrontend?] = [:]
    fileprivate var backendUsers: [BackendKey: Int32] = [:]
    fileprivate var serviceIDs: StableIDDraft<FrontendKey>
    fileprivate var backendIDs: StableIDDraft<BackendKey>
    fileprivate var zone: String?
    var redirects = RedirectIndex.Changes()
    fileprivate var proxyRedirects: ProxyRedirectIndex?

    /// What the id tables gain and lose (for the journal).
    public var idChanges: LoadBalancerIDChanges {
      LoadBalancerIDChanges(services: serviceIDs, backends: backendIDs)
    }
  }

  /// Works out `edits` (applied in order; the last edit of a key wins) and, when given, the
  /// new whole set of `proxyRedirects` (nil: unchanged). With `refusingNewConflicts`, a
  /// frontend conflict the edits introduce refuses them all; conflicts already present are
  /// not the edits' fault.
  public func prepare(
    _ edits: [ResourceEdit], proxyRedirects newRedirects: [ProxyRedirect]? = nil,
    refusingNewConflicts: Bool = true
  ) throws(ApplyRejected) -> Update {
    var changed: [ResourceKey: (Resource, StoredDocument?)?] = [:]
    for edit in edits {
      switch edit {
      case .upsert(let resource, let document): changed[edit.key] = .some((resource, document))
      case .remove(let key): changed[key] = .some(nil)
      }
    }
    func object(_ key: ResourceKey) -> Resource? {
      if let edited = changed[key] { return edited?.0 }
      return resources.objects[key]
    }

    // Which Services the edits touch: their own object, or a slice that is (or was) theirs;
    // every topology-aware one when this node's zone changes. (The node's name is fixed for
    // the table's life: a new name is a new table, which plans every Service.)
    var affected: Set<NamespacedName> = []
    var node = topology
    if let name = node.nodeName {
      let key = ResourceKey(kind: .node, namespace: "", name: name)
      if changed[key] != nil {
        if case .node(let object) = object(key) {
          node.zone = object.labels[NodeTopology.zoneLabel]
        } else {
          node.zone = nil
        }
      }
    }
    if node.zone != topology.zone {
      for (name, contribution) in contributions where contribution.isTopologyAware {
        affected.insert(name)
      }
    }
    // A redirect set that changes re-plans the Services it names, before and after.
    var proxyIndex = proxyRedirects
    if let newRedirects {
      let index = ProxyRedirectIndex(newRedirects)
      if index != proxyRedirects {
        affected.formUnion(Self.changedProxyServices(proxyRedirects, index))
        proxyIndex = index
      }
    }
    var slicesLeaving: [NamespacedName: [ResourceKey]] = [:]
    var slicesJoining: [NamespacedName: [ResourceKey]] = [:]
    for key in changed.keys {
      switch key.kind {
      case .service:
        affected.insert(NamespacedName(namespace: key.namespace, name: key.name))
      case .endpointSlice:
        if let owner = Self.owner(resources.objects[key]) {
          affected.insert(owner)
          slicesLeaving[owner, default: []].append(key)
        }
        if let owner = Self.owner(object(key)) {
          affected.insert(owner)
          slicesJoining[owner, default: []].append(key)
        }
      default:
        continue
      }
    }

    var update = Update(
      serviceIDs: ids.services.table.draft(), backendIDs: ids.backends.table.draft(),
      zone: node.zone)
    update.resources = changed
    update.proxyRedirects = proxyIndex
    var frontendKeys: Set<FrontendKey> = []
    update.redirects = redirects.prepare(
      changed: Set(changed.keys), object: object, nodeName: node.nodeName,
      frontendKeys: &frontendKeys)
    var newClaims: [FrontendKey: [NamespacedName]] = [:]
    for name in affected {
      var slices = slicesByService[name] ?? []
      for key in slicesLeaving[name] ?? [] { slices.remove(key) }
      for key in slicesJoining[name] ?? [] { slices.insert(key) }
      update.slicesByService[name] = slices
      let contribution = plan(name, slices: slices, object: object, topology: node)
      update.contributions[name] = .some(contribution)
      for key in contributions[name]?.claimKeys ?? [] { frontendKeys.insert(key) }
      for claim in contribution?.claims ?? [] {
        frontendKeys.insert(claim.key)
        newClaims[claim.key, default: []].append(name)
      }
    }
    // A Service the edits leave alone is planned again only when its claim is needed (it
    // takes over a frontend): its resources are unchanged, so this gives the claims it had.
    var replanned: [NamespacedName: ServiceContribution] = [:]
    func contribution(_ name: NamespacedName) -> ServiceContribution? {
      if let planned = update.contributions[name] { return planned }
      guard contributions[name] != nil else { return nil }
      if let planned = replanned[name] { return planned }
      let planned = plan(name, slices: slicesByService[name] ?? [], object: object, topology: node)
      replanned[name] = planned
      return planned
    }

    // Who holds each touched frontend now, and which conflicts that makes.
    var introduced: [String] = []
    var conflicts: [String] = []
    let keys = frontendKeys.sorted()
    for key in keys {
      let before = claimants[key] ?? []
      let after = (before.filter { !affected.contains($0) } + (newClaims[key] ?? [])).sorted()
      update.claimants[key] = after
      let old = Set(Self.conflicts(key, before))
      for message in Self.conflicts(key, after) {
        conflicts.append(message)
        if !old.contains(message) { introduced.append(message) }
      }
    }
    if refusingNewConflicts && !introduced.isEmpty {
      throw ApplyRejected(messages: introduced)
    }

    // Frontend ids in key order (so a fresh table always gives the same input the same
    // ids), then the backends' use counts, then backend ids.
    var notes = affected.sorted().flatMap { contribution($0)?.notes ?? [] }
    notes += update.redirects.notes
    var claims: [FrontendKey: (id: UInt16, claim: FrontendClaim, owner: NamespacedName)] = [:]
    for key in keys {
      let owner = update.claimants[key]?.first
      guard
        let (claim, owner) = LocalRedirectPlanner.resolve(
          serviceClaim: owner.flatMap { contribution($0)?.claims.first(where: { $0.key == key }) },
          owner: owner, redirects: redirects.claims(for: key, in: update.redirects), notes: &notes)
      else {
        ids.services.table.release(key, in: &update.serviceIDs)
        continue
      }
      guard let id = ids.services.table.id(for: key, in: &update.serviceIDs) else {
        notes.append(
          "frontend \(key): no free service id (all \(ServiceIDAllocator.maxID) in use)")
        continue
      }
      claims[key] = (UInt16(id), claim, owner)
    }
    var users: [BackendKey: Int32] = [:]
    for key in keys {
      for backend in frontends[key]?.allBackends ?? [] {
        users[backend.key, default: self.users(of: backend.key)] -= 1
      }
      for backend in claims[key].map({ $0.claim.backends + ($0.claim.redirect?.origin ?? []) })
        ?? []
      {
        users[backend.key, default: self.users(of: backend.key)] += 1
      }
    }
    for (backend, count) in users where count == 0 {
      ids.backends.table.release(backend, in: &update.backendIDs)
    }
    update.backendUsers = users

    var old: [ServiceFrontend] = []
    var new: [ServiceFrontend] = []
    for key in keys {
      if let previous = frontends[key] { old.append(previous) }
      guard let (id, claim, owner) = claims[key] else {
        update.frontends[key] = .some(nil)
        continue
      }
      func entries(_ planned: [PlannedBackend]) -> [ServiceBackend] {
        // Sized once: the table keeps these arrays, and grown by appending, 10 backends took
        // room for 16 (≈ 4 MiB at 10,000 Services × 10).
        var backends: [ServiceBackend] = []
        backends.reserveCapacity(planned.count)
        for planned in planned {
          guard
            let backendID = ids.backends.table.id(
              for: planned.key, in: &update.backendIDs)
          else { continue }
          backends.append(
            ServiceBackend(
              id: backendID, key: planned.key, state: planned.state, isLocal: planned.isLocal))
        }
        return backends
      }
      let frontend = ServiceFrontend(
        id: id, key: key, type: claim.type, service: owner, portName: claim.portName,
        backends: entries(claim.backends), affinityTimeout: claim.affinityTimeout,
        algorithm: claim.algorithm, isExternal: claim.isExternal, usesDSR: claim.usesDSR,
        isLocalPolicy: claim.isLocalPolicy,
        redirect: claim.redirect.map {
          FrontendRedirect(
            policy: $0.policy, skipFromBackend: $0.skipFromBackend, origin: $0.origin.map(entries))
        },
        proxyPort: claim.redirect != nil
          ? nil
          : proxyIndex.proxyPort(
            service: owner, servicePort: claim.servicePort, proto: claim.key.proto))
      update.frontends[key] = .some(frontend)
      new.append(frontend)
    }

    var created: [(id: UInt32, key: BackendKey)] = []
    var deleted: [(id: UInt32, key: BackendKey)] = []
    for (backend, count) in users {
      let before = self.users(of: backend)
      if before == 0, count > 0,
        let id = update.backendIDs.assigned[backend]
          ?? ids.backends.table.lookup(backend)
      {
        created.append((id, backend))
      } else if before > 0, count == 0, let id = ids.backends.table.lookup(backend) {
        deleted.append((id, backend))
      }
    }
    update.diff = DesiredStateDiff(replacing: old, with: new, created: created, deleted: deleted)
    update.notes = notes
    update.conflicts = conflicts
    return update
  }

  /// Applies a prepared update. It must have been prepared against this table as it is now.
  public mutating func commit(_ update: Update) {
    for (key, value) in update.resources {
      if let (resource, document) = value {
        resources.upsert(resource, document: document)
      } else {
        resources.remove(key)
      }
    }
    for (name, slices) in update.slicesByService {
      slicesByService[name] = slices.isEmpty ? nil : slices
    }
    for (name, contribution) in update.contributions {
      contributions[name] = contribution.map(PlanSummary.init)
    }
    for (key, names) in update.claimants { claimants[key] = names.isEmpty ? nil : names }
    for (key, frontend) in update.frontends { frontends[key] = frontend }
    // A count this low is not stored (see `backendUsers`).
    let implied: Int32 = singleUsersImplied ? 1 : 0
    for (backend, count) in update.backendUsers {
      backendUsers[backend] = count > implied ? count : nil
    }
    ids.services.table.apply(update.serviceIDs)
    ids.backends.table.apply(update.backendIDs)
    topology.zone = update.zone
    redirects.commit(update.redirects)
    if let index = update.proxyRedirects { proxyRedirects = index }
  }

  /// How many frontends reference `backend` (see `backendUsers`).
  private func users(of backend: BackendKey) -> Int32 {
    if let count = backendUsers[backend] { return count }
    return singleUsersImplied && ids.backends.table.lookup(backend) != nil ? 1 : 0
  }

  /// One Service's contribution from its object and `slices` as `object` gives them; nil when
  /// there is no such Service.
  private func plan(
    _ name: NamespacedName, slices: Set<ResourceKey>, object: (ResourceKey) -> Resource?,
    topology: NodeTopology
  ) -> ServiceContribution? {
    let serviceKey = ResourceKey(kind: .service, namespace: name.namespace, name: name.name)
    guard case .service(let service) = object(serviceKey) else { return nil }
    let sliceObjects = slices.sorted().compactMap { key -> EndpointSlice? in
      if case .endpointSlice(let slice) = object(key) { return slice }
      return nil
    }
    return ServicePlanner.contribution(
      of: service, slices: sliceObjects, northSouth: northSouth, topology: topology)
  }

  /// What the table keeps of a Service's contribution after `commit`: the frontend keys it
  /// claims, its notes and whether it depends on the node's zone. Not the claims' backends
  /// (100,000 `PlannedBackend`s at 10,000 Services × 10): the holder's are in `frontends`,
  /// and a claimant taking a frontend over is planned again (`prepare`).
  struct PlanSummary: Sendable {
    var claimKeys: [FrontendKey]
    var notes: [String]
    var isTopologyAware: Bool

    init(_ contribution: ServiceContribution) {
      claimKeys = contribution.claims.map(\.key)
      notes = contribution.notes
      isTopologyAware = contribution.isTopologyAware
    }
  }

  /// The Services whose redirects differ between two sets.
  private static func changedProxyServices(_ old: ProxyRedirectIndex, _ new: ProxyRedirectIndex)
    -> Set<NamespacedName>
  {
    let before = Set(old.redirects)
    let after = Set(new.redirects)
    return Set(before.symmetricDifference(after).map(\.service))
  }

  /// Redirects naming a Service the node does not hold: nothing is redirected (yet).
  private func missingProxyServices(_ index: ProxyRedirectIndex) -> [String] {
    index.redirects.compactMap { redirect in
      contributions[redirect.service] == nil
        ? "proxy redirect \(redirect): no such Service: nothing redirected" : nil
    }
  }

  private static func owner(_ resource: Resource?) -> NamespacedName? {
    guard case .endpointSlice(let slice) = resource, slice.addressType != .fqdn else { return nil }
    return slice.serviceName
  }

  private static func conflicts(_ key: FrontendKey, _ names: [NamespacedName]) -> [String] {
    guard let holder = names.first else { return [] }
    return names.dropFirst().map {
      "frontend \(key) of Service \($0) is already used by Service \(holder)"
    }
  }
}
