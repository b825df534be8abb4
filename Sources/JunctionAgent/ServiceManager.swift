import AgentAPI
import AgentCore
import FoundationEssentials
import Logging
import ServiceCore

/// The node's services: the Kubernetes objects applied to it, the stable ids, and the
/// datapath programmed from them. One actor, so changes are serialized.
///
/// A change is all or nothing: the whole input is validated first (every problem reported
/// with its field path), then persisted, then programmed; if programming fails, the files
/// go back to what they were and the error is returned, so the state on disk, in memory and
/// in the maps agree.
actor ServiceManager {
  enum Failure: Error, CustomStringConvertible {
    case persist(String)
    case datapath(String)

    var description: String {
      switch self {
      case .persist(let why): "cannot store the services: \(why)"
      case .datapath(let why): "cannot program the datapath: \(why)"
      }
    }
  }

  private var resources: ResourceSet
  private var ids: LoadBalancerIDs
  private var state: DesiredState
  private let files: ServiceFiles
  private let datapath: any Datapath
  private let logger: Logger

  /// Loads what a previous run stored and programs it: maps pinned from a previous run are
  /// rewritten with the same values, so a restart changes nothing a packet can see.
  init(stateDirectory: String, datapath: any Datapath, logger: Logger) throws {
    files = ServiceFiles(directory: PathNames.join(stateDirectory, "services"))
    let stored = try files.load()
    var restoredIDs = stored.ids
    let restored = ServicePlanner.plan(stored.resources, ids: &restoredIDs)
    try datapath.programServices(DesiredStateDiff(from: DesiredState(), to: restored))
    if !restored.frontends.isEmpty {
      logger.info("services restored", metadata: ["frontends": "\(restored.frontends.count)"])
    }
    resources = stored.resources
    ids = restoredIDs
    state = restored
    self.datapath = datapath
    self.logger = logger
  }

  func change(yaml: String, delete: Bool) throws(Failure) -> ResourceChange {
    let plan = ApplyPlan(delete ? .delete : .apply, yaml: yaml)
    let skipped = plan.skipped.map(\.description)
    let next: ResourceSet
    do {
      next = try plan.result(applyingTo: resources)
    } catch {
      return ResourceChange(
        skipped: skipped, notes: plan.notes, errors: error.messages,
        error: "\(error.messages.count) problem(s); nothing was \(delete ? "deleted" : "applied")")
    }
    var nextIDs = ids
    let nextState = ServicePlanner.plan(next, ids: &nextIDs)
    let diff = DesiredStateDiff(from: state, to: nextState)
    do {
      try files.save(next, nextIDs)
    } catch {
      throw .persist("\(error)")
    }
    do {
      try datapath.programServices(diff)
    } catch {
      // Put the files back; the maps keep what they had where the diff did not get to.
      try? files.save(resources, ids)
      try? datapath.programServices(DesiredStateDiff(from: nextState, to: state))
      throw .datapath("\(error)")
    }
    resources = next
    ids = nextIDs
    state = nextState
    let changed = plan.resources.map(\.key.description)
    logger.info(
      delete ? "resources deleted" : "resources applied",
      metadata: ["objects": "\(changed.count)", "frontends": "\(state.frontends.count)"])
    return ResourceChange(
      changed: changed, skipped: skipped, notes: plan.notes + nextState.notes + nextState.conflicts)
  }

  func list() -> [ServiceStatus] {
    state.frontends.sorted { $0.id < $1.id }.map { frontend in
      ServiceStatus(
        id: Int(frontend.id), frontend: frontend.key.description, type: frontend.type.rawValue,
        service: frontend.service.description, portName: frontend.portName,
        backends: frontend.backends.map {
          ServiceStatus.Backend(id: $0.id, address: $0.key.description, state: $0.state.rawValue)
        },
        affinityTimeout: frontend.affinityTimeout, algorithm: frontend.algorithm.rawValue)
    }
  }
}

/// `<state-dir>/services/resources.yaml` (a `kind: List`, as `kubectl` prints one) and
/// `ids.json`. Unlike endpoint records these outlive a reboot, so they are written durably.
struct ServiceFiles {
  let directory: String

  var resourcesPath: String { PathNames.join(directory, "resources.yaml") }
  var idsPath: String { PathNames.join(directory, "ids.json") }

  struct Stored {
    var resources = ResourceSet()
    var ids = LoadBalancerIDs()
  }

  func load() throws -> Stored {
    var stored = Stored()
    if AtomicFile.exists(resourcesPath) {
      let yaml = String(
        decoding: try AtomicFile.read(resourcesPath, limit: 256 << 20), as: UTF8.self)
      do {
        stored.resources = try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
      } catch {
        throw ServiceManager.Failure.persist("\(resourcesPath): \(error)")
      }
    }
    if AtomicFile.exists(idsPath) {
      stored.ids = try JSONDecoder().decode(
        LoadBalancerIDs.self, from: Data(try AtomicFile.read(idsPath, limit: 64 << 20)))
    }
    return stored
  }

  func save(_ resources: ResourceSet, _ ids: LoadBalancerIDs) throws {
    try AtomicFile.makeDirectory(directory, mode: 0o700)
    try AtomicFile.write(Array(try JSONEncoder().encode(ids)), to: idsPath)
    try AtomicFile.write(Array(try resources.persistedYAML().utf8), to: resourcesPath)
  }
}
