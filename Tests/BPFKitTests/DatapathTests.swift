import BPFKit
import DatapathABI
import XCTest

/// The endpoint object loaded the way the agent loads it (maps pinned by name under a pin
/// root, programs pinned beside them) into a scratch bpffs, then exercised from Swift with
/// BPF_PROG_TEST_RUN. Needs root and the object built by install/build-bpf.sh (done here).
final class DatapathTests: XCTestCase {
  /// Every map endpoint.o declares, each pinned by name.
  private let allMapNames = [
    JUNCTION_MAP_ENDPOINT_COUNTERS, JUNCTION_MAP_DROPS, JUNCTION_MAP_LB4_SERVICES,
    JUNCTION_MAP_LB4_BACKENDS, JUNCTION_MAP_LB4_REVNAT, JUNCTION_MAP_LB4_AFFINITY,
    JUNCTION_MAP_LB4_MAGLEV, JUNCTION_MAP_CT4, JUNCTION_MAP_DEVICES, JUNCTION_MAP_NODE_CONFIG,
    JUNCTION_MAP_LB4_SOCK_REVNAT, JUNCTION_MAP_EVENTS, JUNCTION_MAP_EVENTS_LOST,
    JUNCTION_MAP_MONITOR_CONFIG, JUNCTION_MAP_LB6_SERVICES, JUNCTION_MAP_LB6_BACKENDS,
    JUNCTION_MAP_LB6_REVNAT, JUNCTION_MAP_LB6_AFFINITY, JUNCTION_MAP_CT6,
    JUNCTION_MAP_PROXY_LISTENERS, JUNCTION_MAP_LB6_SOCK_REVNAT, JUNCTION_MAP_POD_NETNS,
  ]

  private var bpffs: ScratchBPFFilesystem?
  private var root: String { bpffs!.path }

  override func setUpWithError() throws {
    try requireRoot()
    _ = try DatapathBuild.endpointObject()
    bpffs = try ScratchBPFFilesystem()
  }

  override func tearDown() {
    bpffs?.remove()
    bpffs = nil
  }

  /// Opens and loads endpoint.o with maps pinned under the scratch root and pins both
  /// programs there by name, as the agent does at start.
  private func loadAndPin() throws -> BPFObject {
    let object = try BPFObject.open(path: DatapathBuild.endpointObject(), pinRoot: root)
    try object.load()
    for name in [JUNCTION_PROG_FROM_ENDPOINT, JUNCTION_PROG_TO_ENDPOINT] {
      try object.program(named: name).pin(at: "\(root)/\(name)")
    }
    return object
  }

  private func counters(_ map: BPFMap, ifindex: UInt32) throws -> junction_endpoint_counters {
    try map.lookupSum(junction_endpoint_key(ifindex: ifindex), as: junction_endpoint_counters.self)
      ?? junction_endpoint_counters()
  }

  func testLoadPinsMapsByNameAndTheProgramsReopenFromTheirPins() throws {
    let object = try loadAndPin()
    XCTAssertEqual(object.programNames, [JUNCTION_PROG_FROM_ENDPOINT, JUNCTION_PROG_TO_ENDPOINT])
    XCTAssertEqual(Set(object.mapNames), Set(allMapNames))

    for name in [JUNCTION_PROG_FROM_ENDPOINT, JUNCTION_PROG_TO_ENDPOINT] {
      let loaded = try object.program(named: name)
      let pinned = try BPFProgram.openPinned(at: "\(root)/\(name)")
      XCTAssertEqual(pinned.id, loaded.id, name)
      XCTAssertEqual(pinned.name, name)
      XCTAssertNotEqual(pinned.fd, loaded.fd, "each instance owns its descriptor")
    }

    let counters = try BPFMap.openPinned(at: "\(root)/\(JUNCTION_MAP_ENDPOINT_COUNTERS)")
    XCTAssertEqual(counters.id, try object.map(named: JUNCTION_MAP_ENDPOINT_COUNTERS).id)
    XCTAssertEqual(counters.name, JUNCTION_MAP_ENDPOINT_COUNTERS)
    XCTAssertEqual(counters.keySize, MemoryLayout<junction_endpoint_key>.size)
    XCTAssertEqual(counters.valueSize, MemoryLayout<junction_endpoint_counters>.size)
    XCTAssertEqual(counters.maxEntries, Int(JUNCTION_ENDPOINT_COUNTERS_MAX))
    XCTAssertTrue(counters.isPerCPU)

    let drops = try BPFMap.openPinned(at: "\(root)/\(JUNCTION_MAP_DROPS)")
    XCTAssertEqual(drops.keySize, MemoryLayout<junction_drop_key>.size)
    XCTAssertEqual(drops.valueSize, MemoryLayout<junction_drop_counters>.size)
    XCTAssertEqual(drops.maxEntries, Int(JUNCTION_DROPS_MAX))
  }

  func testProgramsOutliveTheObjectTheyCameFrom() throws {
    var object: BPFObject? = try loadAndPin()
    let program = try object!.program(named: JUNCTION_PROG_FROM_ENDPOINT)
    object = nil
    XCTAssertEqual(
      try ProgramTestRun.run(program: program, packet: udpFrame()).returnValue,
      UInt32(bitPattern: -1), "TC_ACT_UNSPEC: passed on")
  }

  func testOpeningPinsChecksWhatIsThere() throws {
    _ = try loadAndPin()
    XCTAssertThrowsError(try BPFProgram.openPinned(at: "\(root)/\(JUNCTION_MAP_DROPS)")) {
      XCTAssertEqual(
        $0 as? BPFError,
        .wrongKind(path: "\(root)/\(JUNCTION_MAP_DROPS)", expected: "prog", found: "map"))
    }
    XCTAssertThrowsError(try BPFMap.openPinned(at: "\(root)/\(JUNCTION_PROG_TO_ENDPOINT)")) {
      XCTAssertEqual(
        $0 as? BPFError,
        .wrongKind(path: "\(root)/\(JUNCTION_PROG_TO_ENDPOINT)", expected: "map", found: "prog"))
    }
    XCTAssertThrowsError(try BPFProgram.openPinned(at: "\(root)/missing")) {
      let error = $0 as? BPFError
      XCTAssertEqual(error?.isNotFound, true)
      XCTAssertEqual(error?.errno, ENOENT)
      XCTAssertEqual(
        error?.description,
        "bpf_obj_get \(root)/missing: No such file or directory (errno \(ENOENT))")
    }
  }

  func testFromEndpointPassesThePacketAndCountsItAsSent() throws {
    _ = try loadAndPin()
    // Through the pins, as the CNI plugin and the agent see them.
    let program = try BPFProgram.openPinned(at: "\(root)/\(JUNCTION_PROG_FROM_ENDPOINT)")
    let map = try BPFMap.openPinned(at: "\(root)/\(JUNCTION_MAP_ENDPOINT_COUNTERS)")
    let frame = udpFrame()
    // A test run's skb comes from loopback (ifindex 1) of the caller's namespace.
    let before = try counters(map, ifindex: 1)

    let result = try ProgramTestRun.run(program: program, packet: frame)

    XCTAssertEqual(result.returnValue, UInt32(bitPattern: -1), "TC_ACT_UNSPEC: passed on")
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(result.output, frame)
    let after = try counters(map, ifindex: 1)
    XCTAssertEqual(after.from_packets - before.from_packets, 1)
    XCTAssertEqual(after.from_bytes - before.from_bytes, 60)
    XCTAssertEqual(after.to_packets, before.to_packets)
    XCTAssertEqual(after.to_bytes, before.to_bytes)
    XCTAssertEqual(try map.keys(as: junction_endpoint_key.self).map(\.ifindex), [1])
  }

  func testToEndpointPassesThePacketAndCountsItAsReceived() throws {
    _ = try loadAndPin()
    let program = try BPFProgram.openPinned(at: "\(root)/\(JUNCTION_PROG_TO_ENDPOINT)")
    let map = try BPFMap.openPinned(at: "\(root)/\(JUNCTION_MAP_ENDPOINT_COUNTERS)")
    let frame = udpFrame()
    let before = try counters(map, ifindex: 1)

    let result = try ProgramTestRun.run(program: program, packet: frame, repeat: 3)

    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(result.output, frame)
    let after = try counters(map, ifindex: 1)
    XCTAssertEqual(after.to_packets - before.to_packets, 3, "one per repetition")
    XCTAssertEqual(after.to_bytes - before.to_bytes, 180)
    XCTAssertEqual(after.from_packets, before.from_packets)
  }

  func testNothingIsDroppedYet() throws {
    let object = try loadAndPin()
    _ = try ProgramTestRun.run(
      program: object.program(named: JUNCTION_PROG_FROM_ENDPOINT), packet: udpFrame())
    _ = try ProgramTestRun.run(
      program: object.program(named: JUNCTION_PROG_TO_ENDPOINT), packet: udpFrame())
    let drops = try object.map(named: JUNCTION_MAP_DROPS)
    XCTAssertEqual(try drops.keys(as: junction_drop_key.self).count, 0)
  }

  func testReloadingWithTheSamePinRootReusesThePinnedMaps() throws {
    let key = junction_endpoint_key(ifindex: 4242)
    let written = junction_endpoint_counters(
      from_packets: 7, from_bytes: 700, to_packets: 9, to_bytes: 900)
    var first: BPFObject? = try loadAndPin()
    let firstID = try first!.map(named: JUNCTION_MAP_ENDPOINT_COUNTERS).id
    try first!.map(named: JUNCTION_MAP_ENDPOINT_COUNTERS).updatePerCPU(key, [written])
    first = nil  // the agent exits; the pins keep the maps

    let second = try loadAndPin()
    let map = try second.map(named: JUNCTION_MAP_ENDPOINT_COUNTERS)
    XCTAssertEqual(map.id, firstID, "the same kernel map, not a fresh one")
    let read = try map.lookupSum(key, as: junction_endpoint_counters.self)
    XCTAssertEqual(read?.from_packets, 7)
    XCTAssertEqual(read?.to_bytes, 900)

    // And the reloaded programs count into it.
    _ = try ProgramTestRun.run(
      program: second.program(named: JUNCTION_PROG_FROM_ENDPOINT), packet: udpFrame())
    let reopened = try BPFMap.openPinned(at: "\(root)/\(JUNCTION_MAP_ENDPOINT_COUNTERS)")
    XCTAssertEqual(
      try reopened.lookupSum(
        junction_endpoint_key(ifindex: 1), as: junction_endpoint_counters.self)?
        .from_packets, 1)
  }

  func testPinningAgainReplacesThePinInPlace() throws {
    let object = try loadAndPin()
    let path = "\(root)/\(JUNCTION_PROG_FROM_ENDPOINT)"
    let to = try object.program(named: JUNCTION_PROG_TO_ENDPOINT)
    try to.pin(at: path)
    XCTAssertEqual(try BPFProgram.openPinned(at: path).id, to.id)
    // No temporary pin is left behind. (Names with a dot are the kernel's own preloaded
    // iterators, maps.debug and progs.debug, on kernels built with CONFIG_BPF_PRELOAD.)
    let entries = try FileManager.default.contentsOfDirectory(atPath: root)
      .filter { !$0.contains(".") }.sorted()
    XCTAssertEqual(
      entries,
      ([JUNCTION_PROG_FROM_ENDPOINT, JUNCTION_PROG_TO_ENDPOINT] + allMapNames).sorted())
    try BPFFilesystem.removePin(at: path)
    try BPFFilesystem.removePin(at: path)  // missing is fine
    XCTAssertFalse(FileManager.default.fileExists(atPath: path))
  }

  func testPerCPUEntriesCanBeWrittenListedAndDeleted() throws {
    let map = try loadAndPin().map(named: JUNCTION_MAP_ENDPOINT_COUNTERS)
    let cpus = try LibBPF.possibleCPUs()
    let one = junction_endpoint_counters(
      from_packets: 1, from_bytes: 10, to_packets: 0, to_bytes: 0)
    try map.updatePerCPU(junction_endpoint_key(ifindex: 7), Array(repeating: one, count: cpus))
    try map.updatePerCPU(junction_endpoint_key(ifindex: 8), [one], mode: .createOnly)
    XCTAssertThrowsError(
      try map.updatePerCPU(junction_endpoint_key(ifindex: 8), [one], mode: .createOnly)
    ) { XCTAssertEqual(($0 as? BPFError)?.errno, EEXIST) }

    XCTAssertEqual(
      Set(try map.keys(as: junction_endpoint_key.self).map(\.ifindex)), [7, 8])
    let perCPU = try map.lookupPerCPU(
      junction_endpoint_key(ifindex: 7), as: junction_endpoint_counters.self)
    XCTAssertEqual(perCPU?.count, cpus)
    XCTAssertEqual(
      try map.lookupSum(junction_endpoint_key(ifindex: 7), as: junction_endpoint_counters.self)?
        .from_bytes, UInt64(10 * cpus))
    XCTAssertEqual(
      try map.lookupSum(junction_endpoint_key(ifindex: 8), as: junction_endpoint_counters.self)?
        .from_packets, 1, "CPUs past the values given are zero")

    XCTAssertTrue(try map.delete(junction_endpoint_key(ifindex: 7)))
    XCTAssertFalse(try map.delete(junction_endpoint_key(ifindex: 7)))
    XCTAssertNil(
      try map.lookupSum(junction_endpoint_key(ifindex: 7), as: junction_endpoint_counters.self))
  }

  func testMapsRefuseTypesThatDoNotFit() throws {
    let map = try loadAndPin().map(named: JUNCTION_MAP_ENDPOINT_COUNTERS)
    // A per-CPU map read as a plain one would have the kernel write one value per CPU
    // into room for one.
    XCTAssertThrowsError(
      try map.lookup(junction_endpoint_key(ifindex: 1), as: junction_endpoint_counters.self)
    ) { XCTAssertTrue("\($0)".contains("per-CPU"), "\($0)") }
    XCTAssertThrowsError(
      try map.lookupSum(UInt64(1), as: junction_endpoint_counters.self)
    ) { XCTAssertTrue("\($0)".contains("key type UInt64 is 8 bytes"), "\($0)") }
    XCTAssertThrowsError(
      try map.lookupSum(junction_endpoint_key(ifindex: 1), as: junction_drop_counters.self)
    ) { XCTAssertTrue("\($0)".contains("value type"), "\($0)") }
  }

  func testObjectsRefuseMisuse() throws {
    let object = try BPFObject.open(path: DatapathBuild.endpointObject(), pinRoot: root)
    XCTAssertThrowsError(try object.program(named: JUNCTION_PROG_FROM_ENDPOINT)) {
      XCTAssertTrue("\($0)".contains("not loaded"), "\($0)")
    }
    try object.load()
    XCTAssertThrowsError(try object.program(named: "nope")) {
      XCTAssertEqual(($0 as? BPFError)?.isNotFound, true)
    }
    XCTAssertThrowsError(try BPFObject.open(path: "/no/such.o")) {
      XCTAssertEqual(($0 as? BPFError)?.errno, ENOENT)
    }
    XCTAssertThrowsError(try BPFObject.open(path: DatapathBuild.endpointObject(), pinRoot: "/tmp"))
    {
      XCTAssertTrue("\($0)".contains("not a directory on a bpffs"), "\($0)")
    }
  }
}
