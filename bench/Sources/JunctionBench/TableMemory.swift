import Foundation
import ServiceCore

#if canImport(Glibc)
  import Glibc
#endif

/// `junction-bench table`: the heap the `ServiceTable` holds for N Services × B backends
/// (`junction-bench yaml`), in-process: the resources are decoded first and kept, then one
/// `prepare` of them all (the prepared update alive: the transient part of an apply) and its
/// `commit` (the update dropped: what the table keeps). Each figure is the growth of the
/// resident size after `malloc_trim(0)` (freed pages returned), so it is the live heap the
/// table and update add, to a page.
struct TableMemoryBenchmark {
  let layout: ServiceLayout

  init(_ options: Options) throws { layout = try ServiceLayout(options) }

  func run() throws {
    let decoded = ResourceDecoder.decode(yaml: layout.fullYAML())
    guard decoded.problems.isEmpty else { throw Options.Invalid(description: "problems") }
    let edits = decoded.resources.map { ResourceEdit.upsert($0, document: nil) }
    let base = heapInUse()
    var table = ServiceTable(nodeName: "bench")
    var prepared = 0
    var both = 0
    do {
      let update = try table.prepare(edits)
      prepared = heapInUse()
      table.commit(update)
      both = heapInUse()
    }
    let kept = heapInUse()
    // What a table that kept each Service's whole contribution (claims with their planned
    // backends, as before the PlanSummary) held on top: the same contributions, planned again.
    var slices: [NamespacedName: [EndpointSlice]] = [:]
    for case .endpointSlice(let slice) in decoded.resources {
      if let owner = slice.serviceName { slices[owner, default: []].append(slice) }
    }
    var plans: [NamespacedName: ServiceContribution] = [:]
    for case .service(let service) in decoded.resources {
      plans[service.meta.namespacedName] = ServicePlanner.contribution(
        of: service, slices: slices[service.meta.namespacedName] ?? [],
        topology: NodeTopology(nodeName: "bench"))
    }
    slices = [:]
    let withPlans = heapInUse()
    print(
      "| \(layout.services) × \(layout.backendsPerService) | \(table.frontends.count) frontends | "
        + "update after prepare \(mib(prepared - base)) MiB | table + update at commit \(mib(both - base)) MiB | "
        + "table after commit \(mib(kept - base)) MiB | whole contributions \(mib(withPlans - kept)) MiB |"
    )
    withExtendedLifetime(plans) {}
    withExtendedLifetime((decoded, edits, table)) {}
  }

  /// Resident bytes after returning freed pages (`malloc_trim` looked up as the agent's
  /// FreedMemory does: Glibc's module does not declare it).
  private func heapInUse() -> Int {
    typealias Trim = @convention(c) (Int) -> Int32
    if let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_trim") {
      _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
    // glibc's own count of bytes in use (live heap, holes excluded) goes to stderr: the
    // last "in use bytes" of each call is the total.
    if let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_stats") {
      unsafeBitCast(symbol, to: (@convention(c) () -> Void).self)()
    }
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
      let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  private func mib(_ bytes: Int) -> String {
    String(format: "%.1f", Double(bytes) / 1_048_576)
  }
}
