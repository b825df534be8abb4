import BPFKit
import DatapathABI

#if canImport(Glibc)
  import Glibc
#endif

/// One copy of the datapath (endpoint.o) loaded with its maps pinned in its own directory
/// of the run's bpffs, sized for `services` frontends of `backendsPerService` backends.
/// Several can be loaded side by side (one per service count), each with its own maps.
final class LoadedDatapath {
  let object: BPFObject
  let pinDirectory: String
  let maps: ServiceMaps

  init(
    objectPath: String, bpffs: String, name: String, services: Int, backendsPerService: Int,
    conntrack: Int
  ) throws {
    pinDirectory = "\(bpffs)/\(name)"
    guard mkdir(pinDirectory, 0o700) == 0 else {
      throw Options.Invalid(
        description: "mkdir \(pinDirectory): \(String(cString: strerror(errno)))")
    }
    object = try BPFObject.open(path: objectPath, pinRoot: pinDirectory)
    // Never smaller than the header's defaults; bigger when the run needs it: every frontend
    // takes 1 + backends entries in jnc_lb4_svc (see junction_abi.h). The IPv6 twins are
    // sized alike (the per-packet run may load either family's services).
    let wanted: [(map: String, entries: Int, floor: Int32)] = [
      (JUNCTION_MAP_LB4_SERVICES, services * (1 + backendsPerService), JUNCTION_LB4_SERVICES_MAX),
      (JUNCTION_MAP_LB4_BACKENDS, services * backendsPerService + 16, JUNCTION_LB4_BACKENDS_MAX),
      (JUNCTION_MAP_CT4, conntrack, JUNCTION_CT4_MAX),
      (JUNCTION_MAP_LB6_SERVICES, services * (1 + backendsPerService), JUNCTION_LB6_SERVICES_MAX),
      (JUNCTION_MAP_LB6_BACKENDS, services * backendsPerService + 16, JUNCTION_LB6_BACKENDS_MAX),
      (JUNCTION_MAP_CT6, conntrack, JUNCTION_CT6_MAX),
    ]
    for (map, entries, floor) in wanted {
      try object.setMaxEntries(max(entries, Int(floor)), forMap: map)
    }
    try object.load()
    maps = try ServiceMaps(object)
  }

  func program(named name: String) throws -> BPFProgram { try object.program(named: name) }

  func map(named name: String) throws -> BPFMap { try object.map(named: name) }

  /// Removes this copy's pins (the maps die with the last descriptor, i.e. with `object`).
  func unpin() {
    guard let directory = opendir(pinDirectory) else { return }
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) {
        String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
      }
      if name != "." && name != ".." { unlink("\(pinDirectory)/\(name)") }
    }
    closedir(directory)
    rmdir(pinDirectory)
  }
}
