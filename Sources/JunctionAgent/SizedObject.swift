import AgentCore
import BPFKit
import Logging

#if canImport(Glibc)
  import Glibc
#endif

extension BPFObject {
  /// The object at `path`, its maps pinned under `bpfFS`, sized to the agent's `mapSizes`
  /// and loaded. Every object the agent loads shares the pinned maps, and libbpf reuses a
  /// pinned map only when its size matches: so all of them are sized the same way, here.
  ///
  /// A pinned map of an earlier ABI's layout (junction_abi.h; libbpf would refuse it) is
  /// unpinned first, so the load creates the new one: the programs still attached keep the
  /// old map until they are replaced, and the agent writes the new one as on a fresh node.
  /// The conntrack maps, whose entries must survive, are migrated before this instead
  /// (ConntrackMaps); a size the operator changed is refused before it (checkPinnedSizes).
  /// An IPv6 twin pinned at another size than its flag asks (agents before the flags sized
  /// both families left them at the header's) is such a pin too: replaced, or, jnc_ct6,
  /// migrated.
  static func loadSized(
    path: String, bpfFS: String, mapSizes: MapSizes, logger: Logger
  ) throws -> BPFObject {
    let object = try BPFObject.open(path: path, pinRoot: bpfFS)
    for (_, map, maxEntries) in mapSizes.allMaps {
      try object.setMaxEntries(maxEntries, forMap: map)
    }
    for pin in object.pinsOfAnotherLayout() {
      guard unlink(pin) == 0 else {
        throw DatapathStartFailure(
          "cannot remove \(pin), a map of an earlier datapath ABI: \(String(cString: strerror(errno)))"
        )
      }
      logger.notice(
        "map of an earlier datapath ABI replaced (the agent writes the new one)",
        metadata: ["pin": "\(pin)"])
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
