import AgentCore
import BPFKit

extension BPFObject {
  /// The object at `path`, its maps pinned under `bpfFS`, sized to the agent's `mapSizes`
  /// and loaded. Every object the agent loads shares the pinned maps, and libbpf reuses a
  /// pinned map only when its size matches: so all of them are sized the same way, here.
  static func loadSized(path: String, bpfFS: String, mapSizes: MapSizes) throws -> BPFObject {
    let object = try BPFObject.open(path: path, pinRoot: bpfFS)
    for (_, map, maxEntries) in mapSizes.byMap {
      try object.setMaxEntries(maxEntries, forMap: map)
    }
    try object.load()
    return object
  }

  /// The loaded program `name`, pinned at `<bpfFS>/<name>` (where a restarted agent, and
  /// the tools, find it).
  func pinnedProgram(named name: String, bpfFS: String) throws -> BPFProgram {
    let program = try program(named: name)
    try program.pin(at: bpfFS + "/" + name)
    return program
  }
}
