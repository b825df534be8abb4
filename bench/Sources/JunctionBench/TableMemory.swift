import Foundation
import ServiceCore

#if canImport(Glibc)
  import Glibc
#endif

/// `junction-bench table`: the heap the `ServiceTable` holds for N Services × B backends
/// (`junction-bench yaml`), in-process: the resources are decoded first and kept, then one
/// `prepare` of them all (the prepared update alive: the transient part of an apply) and its
/// `commit` (the update dropped: what the table keeps). Heap in use from glibc's `mallinfo2`,
/// so it counts the table's own allocations, not the binary or arena slack.
struct TableMemoryBenchmark {
  let layout: ServiceLayout

  init(_ options: Options) throws { layout = try ServiceLayout(options) }

  func run() throws {
    let decoded = ResourceDecoder.decode(yaml: layout.fullYAML())
    guard decoded.problems.isEmpty else { throw Options.Invalid(description: "problems") }
    let edits = decoded.resources.map { ResourceEdit.upsert($0, document: nil) }
    malloc_trim(0)
    let base = heapInUse()
    var table = ServiceTable(nodeName: "bench")
    let update = try table.prepare(edits)
    let prepared = heapInUse()
    table.commit(update)
    let both = heapInUse()
    withExtendedLifetime(update) {}
    let frontends = table.frontends.count
    let kept = heapInUse()
    print(
      "| \(layout.services) × \(layout.backendsPerService) | \(frontends) frontends | "
        + "update after prepare \(mib(prepared - base)) MiB | table + update at commit \(mib(both - base)) MiB | "
        + "table after commit \(mib(kept - base)) MiB |")
    withExtendedLifetime((decoded, edits, table)) {}
  }

  private func heapInUse() -> Int { Int(mallinfo2().uordblks) }

  private func mib(_ bytes: Int) -> String {
    String(format: "%.1f", Double(bytes) / 1_048_576)
  }
}
