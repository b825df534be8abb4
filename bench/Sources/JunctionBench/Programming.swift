import Foundation
import ServiceCore

/// Programming time inside one process, phase by phase, with the agent's own steps
/// (ServiceManager.change in Sources/JunctionAgent): decode the YAML (ApplyPlan), merge it
/// into the stored set, plan the whole desired state (ServicePlanner), diff it against the
/// current one, serialise what the agent persists (the ids as JSON and every stored object
/// as one YAML List; the agent then writes both files, not timed here), and write the maps
/// (ServiceMaps: the agent's own map writer). Not the agent itself: no HTTP, no files, no
/// actor hops; bench/programming.sh times the real agent beside this.
struct ProgrammingBenchmark {
  let layout: ServiceLayout
  let changes: Int
  let objectPath: String
  let bpffs: String

  init(_ options: Options) throws {
    layout = ServiceLayout(
      services: try options.int("services", default: 10000),
      backendsPerService: try options.int("backends", default: 10))
    changes = max(1, try options.int("changes", default: 20))
    objectPath = try options.objectPath()
    bpffs = try options.bpffs()
  }

  static let phases = ["decode", "merge", "plan", "diff", "persist", "maps"]

  struct Applied {
    var milliseconds: [String: Double] = [:]
    var resources: ResourceSet
    var ids: LoadBalancerIDs
    var state: DesiredState
    var diff: DesiredStateDiff
    var operations = 0
    var persistedBytes = 0
  }

  /// One apply, as the agent does it, each phase timed.
  func apply(
    _ yaml: String, to resources: ResourceSet, ids: LoadBalancerIDs, state: DesiredState,
    maps: ServiceMaps
  ) throws -> Applied {
    var times: [String: Double] = [:]
    let (plan, decode) = timed { ApplyPlan(.apply, yaml: yaml) }
    times["decode"] = decode
    guard plan.isValid else {
      throw Options.Invalid(description: plan.errors.joined(separator: "\n"))
    }
    let (next, merge) = try timed { try plan.result(applyingTo: resources) }
    times["merge"] = merge
    var nextIDs = ids
    let (nextState, planning) = timed { ServicePlanner.plan(next, ids: &nextIDs) }
    times["plan"] = planning
    let (diff, diffing) = timed { DesiredStateDiff(from: state, to: nextState) }
    times["diff"] = diffing
    let (bytes, persist) = try timed {
      try JSONEncoder().encode(nextIDs).count + next.persistedYAML().utf8.count
    }
    times["persist"] = persist
    let (operations, writing) = try timed { try maps.apply(diff) }
    times["maps"] = writing
    return Applied(
      milliseconds: times, resources: next, ids: nextIDs, state: nextState, diff: diff,
      operations: operations, persistedBytes: bytes)
  }

  func run() throws {
    let services = layout.services
    let datapath = try LoadedDatapath(
      objectPath: objectPath, bpffs: bpffs, name: "programming", services: services,
      backendsPerService: layout.backendsPerService, conntrack: 0)
    defer { datapath.unpin() }
    let yaml = layout.fullYAML()
    standardError("programming: applying \(services) services (\(yaml.utf8.count) bytes of YAML)")
    let full = try apply(
      yaml, to: ResourceSet(), ids: LoadBalancerIDs(), state: DesiredState(), maps: datapath.maps)
    guard full.state.frontends.count == services else {
      throw Options.Invalid(
        description: "planned \(full.state.frontends.count) frontends, expected \(services)")
    }
    var current = full
    var changeTimes: [Applied] = []
    for change in 0..<changes {
      // Odd changes put the original backend back, so every change is a real one.
      let next = try apply(
        layout.changedSliceYAML(variant: change % 2 == 0 ? 1 : 0), to: current.resources,
        ids: current.ids, state: current.state, maps: datapath.maps)
      guard next.diff.changedFrontends.count == 1, next.diff.addedFrontends.isEmpty,
        next.diff.removedFrontends.isEmpty
      else {
        throw Options.Invalid(description: "the one-backend change changed more than one frontend")
      }
      changeTimes.append(next)
      current = next
    }
    print(report(full: full, changes: changeTimes, yamlBytes: yaml.utf8.count))
  }

  private func report(full: Applied, changes: [Applied], yamlBytes: Int) -> String {
    func total(_ applied: Applied) -> Double {
      Self.phases.reduce(0) { $0 + applied.milliseconds[$1]! }
    }
    func p50(_ values: [Double]) -> Double { median(values) }
    var text = """
      In-process, the agent's steps (ServiceCore + BPFKit map writes), \(layout.services) services × \(layout.backendsPerService) backends; full apply of \(yamlBytes) bytes of YAML, then \(changes.count) one-backend changes (service 0's EndpointSlice alone, its first backend swapped back and forth):

      | phase | full apply (ms) | one change p50 (ms) | one change max (ms) |
      |---|---:|---:|---:|

      """
    for phase in Self.phases {
      let values = changes.map { $0.milliseconds[phase]! }
      text += "| \(phase) | \(format(full.milliseconds[phase]!)) | \(format(p50(values), 2)) | "
      text += "\(format(values.max()!, 2)) |\n"
    }
    let totals = changes.map(total)
    text += "| **total** | **\(format(total(full)))** | **\(format(p50(totals), 2))** | "
    text += "**\(format(totals.max()!, 2))** |\n\n"
    text +=
      "Map operations: \(full.operations) for the full apply, \(changes[0].operations) for one change. "
    text +=
      "What the agent persists on every change (ids JSON + resources YAML): \(full.persistedBytes) bytes.\n"
    return text
  }
}
