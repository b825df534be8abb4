import AgentAPI
import Foundation
import XCTest

/// GET /v1/bpf/lb's direct writer gives JSONEncoder's bytes (the shape junctionctl and the
/// tests parse): every optional present and absent, empty lists, IPv6, large numbers.
final class LBMapDumpJSONTests: XCTestCase {
  private func encoded(_ dump: LBMapDump) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(dump), as: UTF8.self) + "\n"
  }

  private var varied: LBMapDump {
    LBMapDump(
      services: [
        LBServiceEntry(
          address: "10.96.0.10", port: 80, proto: "TCP", slot: 0, backendID: 0, count: 2,
          revNatID: 7, flags: 0x13, flagNames: ["affinity", "maglev", "l7-proxy"],
          affinityTimeout: 10800, proxyPort: 15001),
        LBServiceEntry(
          address: "fd00:10:96::a", port: 53, proto: "UDP", slot: 1, backendID: UInt32.max,
          count: 0, revNatID: 65535, flags: 0, flagNames: [], affinityTimeout: 0),
        LBServiceEntry(
          address: "10.96.0.11", port: 65535, proto: "132", slot: 2, backendID: 3, count: 0,
          revNatID: 1, flags: 0x800, flagNames: ["0x800"], affinityTimeout: 0),
      ],
      backends: [
        LBBackendEntry(
          id: 1, address: "10.244.1.5", port: 8080, proto: "TCP", flags: 3,
          flagNames: ["terminating", "local"]),
        LBBackendEntry(
          id: UInt32.max, address: "fd00:10:244::5", port: 0, proto: "SCTP", flags: 0,
          flagNames: []),
      ],
      reverseNAT: [
        LBRevNATEntry(id: 7, address: "10.96.0.10", port: 80, maglev: true),
        LBRevNATEntry(id: 65535, address: "fd00:10:96::a", port: 53, maglev: false),
      ],
      maglevTables: [7, 9, 65535],
      maps: [
        LBMapInfo(name: "jnc_lb4_svc", maxEntries: 1 << 24),
        LBMapInfo(name: "jnc_ct4", maxEntries: 0),
      ],
      nodeConfig: LBNodeConfig(
        nodePortMin: 30000, nodePortMax: 32767, snatPortMin: 32768, snatPortMax: 65535,
        hostNetnsCookie: UInt64.max))
  }

  func testTheDumpIsJSONEncodersBytes() throws {
    var withoutNodeConfig = varied
    withoutNodeConfig.nodeConfig = nil
    var onlyMaps = LBMapDump.empty
    onlyMaps.maps = varied.maps
    for dump in [varied, withoutNodeConfig, LBMapDump.empty, onlyMaps] {
      XCTAssertEqual(String(decoding: dump.jsonBytes, as: UTF8.self), try encoded(dump))
    }
  }

  func testTheDumpDecodesBackToItself() throws {
    XCTAssertEqual(try JSONDecoder().decode(LBMapDump.self, from: Data(varied.jsonBytes)), varied)
  }
}
