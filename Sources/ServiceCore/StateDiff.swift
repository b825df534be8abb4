/// How one frontend changed between two desired states.
public struct FrontendChange: Equatable, Sendable {
  public var old: ServiceFrontend
  public var new: ServiceFrontend
  public var addedBackends: [ServiceBackend]
  public var removedBackends: [ServiceBackend]
  /// Backends present in both whose state or locality changed (new values).
  public var stateChangedBackends: [ServiceBackend]
  /// Affinity, algorithm, type, owner, north-south flags (external, DSR, Local policy),
  /// redirect or proxy port changed (the service entry must be rewritten even if no backend did).
  public var settingsChanged: Bool
}

/// One write the agent performs, in the order `DesiredStateDiff.steps` lists them.
public enum LBStep: Equatable, Sendable {
  /// Create a backends-map entry (id → address:port/proto).
  case createBackend(id: UInt32, key: BackendKey)
  /// Write a frontend: its slots (and Maglev table) first, then its master entry (count,
  /// flags, affinity, rev-NAT id); when the count shrinks, the master entry first and the
  /// now-unused slots after. Also write its reverse-NAT entry if new.
  case writeFrontend(ServiceFrontend)
  /// Delete a frontend: master entry first (lookups stop), then its slots, affinity entries,
  /// Maglev table and reverse-NAT entry.
  case deleteFrontend(ServiceFrontend)
  /// Delete a backends-map entry no frontend references any more.
  case deleteBackend(id: UInt32, key: BackendKey)
}

/// The minimal change from one desired state to the next, so the agent touches only what
/// changed (changing one backend of one service rewrites that service only).
///
/// Order (`steps`), so that no frontend ever resolves to nothing and no slot ever names a
/// missing backend:
/// 1. create new backend entries;
/// 2. write added and changed frontends (slots before the count that makes them reachable);
/// 3. delete removed frontends;
/// 4. delete backend entries that nothing references any more.
/// A terminating backend stays referenced (it is in `backends`, just not selectable), so its
/// entry lives on and existing connections keep resolving until the slice drops it.
public struct DesiredStateDiff: Equatable, Sendable {
  public var addedFrontends: [ServiceFrontend] = []
  public var removedFrontends: [ServiceFrontend] = []
  public var changedFrontends: [FrontendChange] = []
  public var createdBackends: [(id: UInt32, key: BackendKey)] { created.map { ($0.id, $0.key) } }
  public var deletedBackends: [(id: UInt32, key: BackendKey)] { deleted.map { ($0.id, $0.key) } }

  struct BackendEntry: Equatable, Sendable {
    var id: UInt32
    var key: BackendKey
  }
  var created: [BackendEntry] = []
  var deleted: [BackendEntry] = []

  public var isEmpty: Bool {
    addedFrontends.isEmpty && removedFrontends.isEmpty && changedFrontends.isEmpty
      && created.isEmpty
      && deleted.isEmpty
  }

  public init() {}

  /// The diff between two whole states.
  public init(from old: DesiredState, to new: DesiredState) {
    let oldBackends = old.backends
    let newBackends = new.backends
    self.init(
      replacing: old.frontends, with: new.frontends,
      created: newBackends.filter { oldBackends[$0.key] != $0.value }.map { ($0.key, $0.value) },
      deleted: oldBackends.filter { newBackends[$0.key] != $0.value }.map { ($0.key, $0.value) })
  }

  /// The diff for part of a state: `old` and `new` are the frontends of the keys that may
  /// have changed (a key in one list only was added or removed), `created` and `deleted` the
  /// backend entries that start or stop being referenced.
  public init(
    replacing old: [ServiceFrontend], with new: [ServiceFrontend],
    created: [(id: UInt32, key: BackendKey)], deleted: [(id: UInt32, key: BackendKey)]
  ) {
    let oldByKey = Dictionary(uniqueKeysWithValues: old.map { ($0.key, $0) })
    let newKeys = Set(new.map(\.key))
    for frontend in new {
      guard let previous = oldByKey[frontend.key] else {
        addedFrontends.append(frontend)
        continue
      }
      guard previous != frontend else { continue }
      let before = Dictionary(uniqueKeysWithValues: previous.backends.map { ($0.key, $0) })
      let after = Set(frontend.backends.map(\.key))
      var change = FrontendChange(
        old: previous, new: frontend, addedBackends: [], removedBackends: [],
        stateChangedBackends: [],
        settingsChanged: previous.affinityTimeout != frontend.affinityTimeout
          || previous.algorithm != frontend.algorithm || previous.type != frontend.type
          || previous.service != frontend.service || previous.portName != frontend.portName
          || previous.id != frontend.id || previous.isExternal != frontend.isExternal
          || previous.usesDSR != frontend.usesDSR
          || previous.isLocalPolicy != frontend.isLocalPolicy
          || previous.redirect != frontend.redirect || previous.proxyPort != frontend.proxyPort)
      for backend in frontend.backends {
        if let was = before[backend.key] {
          if was.state != backend.state || was.isLocal != backend.isLocal {
            change.stateChangedBackends.append(backend)
          }
        } else {
          change.addedBackends.append(backend)
        }
      }
      change.removedBackends = previous.backends.filter { !after.contains($0.key) }
      changedFrontends.append(change)
    }
    removedFrontends = old.filter { !newKeys.contains($0.key) }
    self.created = created.map { BackendEntry(id: $0.id, key: $0.key) }.sorted { $0.id < $1.id }
    self.deleted = deleted.map { BackendEntry(id: $0.id, key: $0.key) }.sorted { $0.id < $1.id }
  }

  /// The diff that undoes this one (for putting the maps back when a change could not be
  /// programmed completely).
  public var reversed: DesiredStateDiff {
    var result = DesiredStateDiff()
    result.addedFrontends = removedFrontends
    result.removedFrontends = addedFrontends
    result.changedFrontends = changedFrontends.map { change in
      let oldStates = Dictionary(uniqueKeysWithValues: change.old.backends.map { ($0.key, $0) })
      return FrontendChange(
        old: change.new, new: change.old, addedBackends: change.removedBackends,
        removedBackends: change.addedBackends,
        stateChangedBackends: change.stateChangedBackends.compactMap { oldStates[$0.key] },
        settingsChanged: change.settingsChanged)
    }
    result.created = deleted
    result.deleted = created
    return result
  }

  /// The writes, in the order documented above, handed to `body` one at a time. Why not
  /// an array: a 10,000-Service apply has 110,000 steps, and building (and concatenating)
  /// them took 48 MiB at the apply's peak (bench/results/agent-memory.md).
  public func forEachStep<Failure: Error>(_ body: (LBStep) throws(Failure) -> Void)
    throws(Failure)
  {
    for entry in created { try body(.createBackend(id: entry.id, key: entry.key)) }
    for frontend in addedFrontends { try body(.writeFrontend(frontend)) }
    for change in changedFrontends { try body(.writeFrontend(change.new)) }
    for frontend in removedFrontends { try body(.deleteFrontend(frontend)) }
    for entry in deleted { try body(.deleteBackend(id: entry.id, key: entry.key)) }
  }

  /// How many steps `forEachStep` hands out.
  public var stepCount: Int {
    created.count + addedFrontends.count + changedFrontends.count + removedFrontends.count
      + deleted.count
  }

  /// The writes as an array (tests; the agent goes through `forEachStep`).
  public var steps: [LBStep] {
    var steps: [LBStep] = []
    steps.reserveCapacity(stepCount)
    forEachStep { steps.append($0) }
    return steps
  }

  public static func == (lhs: DesiredStateDiff, rhs: DesiredStateDiff) -> Bool {
    lhs.addedFrontends == rhs.addedFrontends && lhs.removedFrontends == rhs.removedFrontends
      && lhs.changedFrontends == rhs.changedFrontends && lhs.created == rhs.created
      && lhs.deleted == rhs.deleted
  }
}
