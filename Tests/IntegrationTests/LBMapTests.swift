import BPFKit
import DatapathABI
import Foundation
import XCTest

/// `junctionctl bpf lb list` and GET /v1/bpf/lb read the service maps back from the kernel;
/// the agent sizes the maps from its flags and refuses a size that differs from a pin's.
final class LBMapTests: XCTestCase {
  private var agent: TestAgent?

  override func tearDown() {
    agent?.tearDown()
    agent = nil
    super.tearDown()
  }

  private func junctionctl(_ arguments: [String], stdin: String = "") throws -> CommandOutput {
    try CTLTests.requireBinary()
    return try Shell.run(
      [CTLTests.binary, "--socket", try XCTUnwrap(agent).socketPath] + arguments, stdin: stdin)
  }

  private func manifest(clusterIP: String, backends: [String]) -> String {
    ServiceManifest.clusterIP(name: "lbmaps", clusterIP: clusterIP, backends: backends)
  }

  /// `bpf lb list -o json`, decoded.
  private func dump(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    let listed = try junctionctl(["bpf", "lb", "list", "-o", "json"])
    XCTAssertEqual(listed.status, 0, listed.stderr, file: file, line: line)
    return try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any],
      listed.stdout, file: file, line: line)
  }

  private func entries(_ dump: [String: Any], _ key: String) -> [[String: Any]] {
    dump[key] as? [[String: Any]] ?? []
  }

  func testAClusterIPShowsUpInTheMapsAndLeavesNoEntryWhenDeleted() throws {
    agent = try TestAgent()
    let yaml = manifest(clusterIP: "10.96.7.10", backends: ["10.240.7.21", "10.240.7.22"])
    let applied = try junctionctl(["apply", "-f", "-"], stdin: yaml)
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)

    let maps = try dump()
    let services = entries(maps, "services").filter { $0["address"] as? String == "10.96.7.10" }
    let frontend = try XCTUnwrap(services.first { $0["slot"] as? Int == 0 }, "\(services)")
    XCTAssertEqual(frontend["port"] as? Int, 80)
    XCTAssertEqual(frontend["proto"] as? String, "TCP")
    XCTAssertEqual(frontend["count"] as? Int, 2)
    let revNatID = try XCTUnwrap(frontend["revNatID"] as? Int)
    XCTAssertGreaterThan(revNatID, 0)
    let slots = services.filter { ($0["slot"] as? Int ?? 0) > 0 }
    XCTAssertEqual(slots.compactMap { $0["slot"] as? Int }.sorted(), [1, 2])
    let backends = Dictionary(
      uniqueKeysWithValues: entries(maps, "backends").map { ($0["id"] as? Int ?? -1, $0) })
    let slotBackends = slots.compactMap { backends[$0["backendID"] as? Int ?? -1] }
    XCTAssertEqual(
      slotBackends.map { "\($0["address"] ?? ""):\($0["port"] ?? "")/\($0["proto"] ?? "")" }
        .sorted(),
      ["10.240.7.21:8080/TCP", "10.240.7.22:8080/TCP"])
    let revNAT = try XCTUnwrap(
      entries(maps, "reverseNAT").first { $0["id"] as? Int == revNatID }, "\(maps)")
    XCTAssertEqual(revNAT["address"] as? String, "10.96.7.10")
    XCTAssertEqual(revNAT["port"] as? Int, 80)
    XCTAssertEqual(revNAT["maglev"] as? Bool, false)

    // The table, as people read it.
    let table = try junctionctl(["bpf", "lb", "list"])
    XCTAssertEqual(table.status, 0, table.stderr)
    XCTAssertTrue(table.stdout.hasPrefix("SERVICE ADDRESS"), table.stdout)
    XCTAssertTrue(
      table.stdout.contains(
        "10.96.7.10:80/TCP (0)  0.0.0.0:0 (\(revNatID)) (0) [ClusterIP, count 2]"), table.stdout)
    for address in ["10.240.7.21", "10.240.7.22"] {
      XCTAssertTrue(table.stdout.contains("\(address):8080/TCP (\(revNatID)) ("), table.stdout)
    }

    let deleted = try junctionctl(["delete", "-f", "-"], stdin: yaml)
    XCTAssertEqual(deleted.status, 0, deleted.stdout + deleted.stderr)
    let after = try dump()
    XCTAssertEqual(
      entries(after, "services").filter { $0["address"] as? String == "10.96.7.10" }.count, 0,
      "\(after)")
    XCTAssertFalse(entries(after, "reverseNAT").contains { $0["id"] as? Int == revNatID })
    XCTAssertFalse(
      entries(after, "backends").contains {
        ["10.240.7.21", "10.240.7.22"].contains($0["address"] as? String ?? "")
      }, "\(after)")
  }

  func testConntrackSizeComesFromTheFlagAndAPinnedSizeIsNeverChangedSilently() throws {
    let agent = try TestAgent(arguments: ["--conntrack-max", "65536"])
    self.agent = agent
    let config = try agent.request("GET", "/v1/config")
    XCTAssertEqual(config.status, 200, config.text)
    let fields = try XCTUnwrap(config.json as? [String: Any], config.text)
    XCTAssertEqual(fields["conntrackMax"] as? Int, 65536)
    XCTAssertEqual(fields["lbServicesMax"] as? Int, 65536)
    XCTAssertEqual(fields["lbBackendsMax"] as? Int, 65536)
    XCTAssertEqual(fields["affinityMax"] as? Int, 65536)
    // The kernel's word for it: the loaded (and pinned) map's max_entries.
    XCTAssertEqual(try maxEntries(of: "jnc_ct4"), 65536)
    XCTAssertEqual(try maxEntries(of: "jnc_ct6"), 65536, "the flag sizes both families")
    XCTAssertTrue(agent.log.contains("conntrack_max=65536"), agent.log)
    let yaml = manifest(clusterIP: "10.96.7.11", backends: ["10.240.7.31"])
    XCTAssertEqual(try junctionctl(["apply", "-f", "-"], stdin: yaml).status, 0)
    agent.stop()

    let pins = try pinIdentities(agent.bpfFS)
    XCTAssertNotNil(pins["jnc_ct4"], "\(pins)")
    agent.extraArguments = ["--conntrack-max", "131072"]
    let refused = try TestAgent.runOnce(agent.arguments)
    XCTAssertEqual(refused.status, 1, refused.stderr)
    XCTAssertEqual(
      refused.stderr,
      "junction-agent: jnc_ct4 is pinned with 65536 entries, --conntrack-max asks 131072: "
        + "remove \(agent.bpfFS)/jnc_ct4 (drops its state) or keep the size\n")
    XCTAssertEqual(try pinIdentities(agent.bpfFS), pins, "the pins were touched")

    // The old size starts again, with the maps' contents kept.
    agent.extraArguments = ["--conntrack-max", "65536"]
    try agent.start()
    XCTAssertEqual(try maxEntries(of: "jnc_ct4"), 65536)
    XCTAssertTrue(
      entries(try dump(), "services").contains { $0["address"] as? String == "10.96.7.11" })
  }

  /// Agents before --conntrack-max sized both families left jnc_ct6 at the header's size.
  /// Such a pin, met by an agent asking another size, is migrated (moved aside, its entries
  /// copied into the new map of the asked size, the old pin removed), never refused.
  func testAJncCt6PinnedAtTheHeadersSizeIsMigratedToTheFlagsSize() throws {
    let agent = try TestAgent(arguments: ["--conntrack-max", "65536"])
    self.agent = agent
    agent.stop()
    let pin = agent.bpfFS + "/" + JUNCTION_MAP_CT6
    let current = try BPFMap.openPinned(at: pin)
    XCTAssertEqual(current.maxEntries, 65536)
    XCTAssertEqual(unlink(pin), 0)
    let earlier = try BPFMap.create(
      .hash, name: JUNCTION_MAP_CT6, keySize: current.keySize, valueSize: current.valueSize,
      maxEntries: Int(JUNCTION_CT6_MAX), flags: current.flags)
    var key = junction_ct6_key()
    key.sport = 4321
    key.dport = 80
    key.proto = 6
    try earlier.update(key, junction_ct6_entry(), mode: .createOnly)
    try earlier.pin(at: pin)

    try agent.start()
    XCTAssertEqual(try maxEntries(of: "jnc_ct6"), 65536)
    XCTAssertEqual(try maxEntries(of: "jnc_ct4"), 65536)
    XCTAssertTrue(agent.log.contains("moved aside for migration"), agent.log)
    XCTAssertTrue(
      agent.log.contains("conntrack entries copied from the old map")
        && agent.log.contains("copied=1"), agent.log)
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: pin + "_abi4"), "the old pin is removed at the end")
  }

  /// An upgrade across an ABI change (bpf/junction_abi.h): libbpf refuses to reuse a pinned
  /// map of another layout, so before the fix a node running the previous release could not
  /// start this one (ABI 4's jnc_devices had a shorter junction_device). Such a pin is
  /// replaced, logged; every other map keeps its pin and contents.
  func testAPinnedMapOfAnEarlierABILayoutIsReplacedAndTheOtherMapsKept() throws {
    let agent = try TestAgent()
    self.agent = agent
    let yaml = manifest(clusterIP: "10.96.7.12", backends: ["10.240.7.41"])
    XCTAssertEqual(try junctionctl(["apply", "-f", "-"], stdin: yaml).status, 0)
    agent.stop()

    let pin = agent.bpfFS + "/" + JUNCTION_MAP_DEVICES
    let current = try BPFMap.openPinned(at: pin)
    XCTAssertEqual(unlink(pin), 0)
    let earlier = try BPFMap.create(
      .hash, name: JUNCTION_MAP_DEVICES, keySize: current.keySize,
      valueSize: current.valueSize - 16, maxEntries: current.maxEntries, flags: current.flags)
    try earlier.pin(at: pin)
    let before = try pinIdentities(agent.bpfFS)

    try agent.start()

    XCTAssertEqual(try BPFMap.openPinned(at: pin).valueSize, current.valueSize)
    XCTAssertTrue(agent.log.contains("map of an earlier datapath ABI replaced"), agent.log)
    let after = try pinIdentities(agent.bpfFS)
    XCTAssertNotEqual(after[JUNCTION_MAP_DEVICES], before[JUNCTION_MAP_DEVICES])
    for (name, inode) in before where name.hasPrefix("jnc_") && name != JUNCTION_MAP_DEVICES {
      XCTAssertEqual(after[name], inode, "\(name) was replaced")
    }
    XCTAssertTrue(
      entries(try dump(), "services").contains { $0["address"] as? String == "10.96.7.12" })
  }

  /// max_entries of `map` as GET /v1/bpf/lb reports it from the kernel.
  private func maxEntries(of map: String) throws -> Int? {
    let response = try XCTUnwrap(agent).request("GET", "/v1/bpf/lb")
    XCTAssertEqual(response.status, 200, response.text)
    let maps = (response.json as? [String: Any])?["maps"] as? [[String: Any]] ?? []
    return maps.first { $0["name"] as? String == map }?["maxEntries"] as? Int
  }

  /// Each pin under `directory` and its inode: a pin replaced or removed changes it.
  private func pinIdentities(_ directory: String) throws -> [String: UInt64] {
    var identities: [String: UInt64] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
      let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + name)
      identities[name] = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
    }
    return identities
  }
}
