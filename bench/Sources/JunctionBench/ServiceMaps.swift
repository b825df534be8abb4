import BPFKit
import ServiceCore
import ServiceDatapath

/// The datapath's service maps, written by the agent's own code (ServiceDatapath's
/// `ServicePrograms`), so the benchmark measures exactly what the agent does to the maps.
/// It also counts the map operations a diff asks for, for the report.
struct ServiceMaps {
  let programs: ServicePrograms

  init(_ object: BPFObject) throws {
    programs = try ServicePrograms(object)
  }

  /// Applies `diff`; about how many map updates and deletes it took (backends, reverse NAT,
  /// the count lookup, slots and the frontend entry per written frontend).
  @discardableResult
  func apply(_ diff: DesiredStateDiff) throws -> Int {
    try programs.apply(diff)
    var operations = 0
    for step in diff.steps {
      switch step {
      case .createBackend, .deleteBackend:
        operations += 1
      case .writeFrontend(let frontend):
        operations +=
          frontend.backends.filter { $0.state != .excluded }.count + 3 + frontend.selectable.count
      case .deleteFrontend(let frontend):
        operations += 3 + frontend.selectable.count
      }
    }
    return operations
  }
}
