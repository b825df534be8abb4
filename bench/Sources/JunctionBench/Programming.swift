import AgentCore
import Foundation
import ServiceCore

/// Programming time inside one process, phase by phase, with the agent's own steps
/// (ServiceManager.change in Sources/JunctionAgent): decode the YAML (ApplyPlan), prepare the
/// change against the node's ServiceTable (validation, re-planning the touched Services, the
/// diff of their frontends), journal it (one JSON line appended and fdatasync'd, as the
/// agent's ServiceStore does, into a temporary directory), write the maps (ServiceMaps: the
/// agent's own map writer), and commit it to the table. Not the agent itself: no HTTP, no
/// actor hops; bench/programming.sh times the real agent beside this.
struct ProgrammingBenchmark {
  let layout: ServiceLayout
  let changes: Int
  let objectPath: String
  let bpffs: String

  init(_ options: Options) throws {
    layout = try ServiceLayout(options)
    changes = max(1, try options.int("changes", default: 20))
    objectPath = try options.objectPath()
    bpffs = try options.bpffs()
  }

  static let phases = ["decode", "prepare", "encode", "journal", "maps", "commit"]

  struct Applied {
    var milliseconds: [String: Double] = [:]
    var diff: DesiredStateDiff
    var operations = 0
    var journalBytes = 0
  }

  /// One apply, as the agent does it, each phase timed.
  func apply(
    _ yaml: String, to table: inout ServiceTable, journal: String, sequence: UInt64,
    maps: ServiceMaps
  ) throws -> Applied {
    var times: [String: Double] = [:]
    let (plan, decode) = timed { ApplyPlan(.apply, yaml: yaml) }
    times["decode"] = decode
    // Timed inline, not in a closure: a closure holding a copy of the table would make the
    // commit below copy every dictionary (the agent's actor holds the only copy).
    let started = monotonicNanoseconds()
    let update = try plan.update(for: table)
    times["prepare"] = Double(monotonicNanoseconds() - started) / 1e6
    let (record, encoding) = try timed {
      try ServiceJournal.encode(
        ServiceJournalRecord(sequence: sequence, edits: plan.edits, update: update))
    }
    times["encode"] = encoding
    let ((), journaling) = try timed { try AtomicFile.append(record, to: journal) }
    times["journal"] = journaling
    let (operations, writing) = try timed { try maps.apply(update.diff) }
    times["maps"] = writing
    let ((), committing) = timed { table.commit(update) }
    times["commit"] = committing
    return Applied(
      milliseconds: times, diff: update.diff, operations: operations, journalBytes: record.count)
  }

  func run() throws {
    let services = layout.services
    let datapath = try LoadedDatapath(
      objectPath: objectPath, bpffs: bpffs, name: "programming", services: services,
      backendsPerService: layout.backendsPerService, conntrack: 0)
    defer { datapath.unpin() }
    var template = Array("/tmp/junction-bench-journal.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else {
      throw Options.Invalid(description: "cannot make a temporary directory for the journal")
    }
    let directory = String(cString: made)
    let journal = directory + "/journal.jsonl"
    defer {
      unlink(journal)
      rmdir(directory)
    }
    let yaml = layout.fullYAML()
    standardError("programming: applying \(services) services (\(yaml.utf8.count) bytes of YAML)")
    var table = ServiceTable()
    let full = try apply(yaml, to: &table, journal: journal, sequence: 1, maps: datapath.maps)
    guard table.frontends.count == services else {
      throw Options.Invalid(
        description: "planned \(table.frontends.count) frontends, expected \(services)")
    }
    var changeTimes: [Applied] = []
    for change in 0..<changes {
      // Odd changes put the original backend back, so every change is a real one.
      let next = try apply(
        layout.changedSliceYAML(variant: change % 2 == 0 ? 1 : 0), to: &table, journal: journal,
        sequence: UInt64(change + 2), maps: datapath.maps)
      guard next.diff.changedFrontends.count == 1, next.diff.addedFrontends.isEmpty,
        next.diff.removedFrontends.isEmpty
      else {
        throw Options.Invalid(description: "the one-backend change changed more than one frontend")
      }
      changeTimes.append(next)
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
      "Journal record: \(full.journalBytes) bytes for the full apply, \(changes[0].journalBytes) for one change (appended, then fdatasync).\n"
    return text
  }
}
