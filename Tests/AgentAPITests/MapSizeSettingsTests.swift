import AgentAPI
import FoundationEssentials
import XCTest

@testable import AgentCore

/// The map sizes (--lb-services-max, --lb-backends-max, --conntrack-max, --affinity-max):
/// defaults, precedence, validation, and how GET /v1/config and /v1/bpf/lb carry them.
final class MapSizeSettingsTests: XCTestCase {
  private func resolve(flags: AgentConfigFile = AgentConfigFile(), file: AgentConfigFile? = nil)
    -> AgentSettings
  {
    AgentSettings.resolve(flags: flags, file: file, environment: [:], hostname: "h")
  }

  func testDefaultsAreTheHeaders() {
    // bpf/junction_abi.h: JUNCTION_LB4_SERVICES_MAX, _BACKENDS_MAX, JUNCTION_CT4_MAX,
    // JUNCTION_LB4_AFFINITY_MAX.
    let sizes = resolve().mapSizes
    XCTAssertEqual(
      sizes, MapSizes(lbServices: 65536, lbBackends: 65536, conntrack: 262_144, affinity: 65536))
    XCTAssertNil(resolve().problem)
    XCTAssertEqual(
      sizes.byMap.map(\.map), ["jnc_lb4_svc", "jnc_lb4_be", "jnc_ct4", "jnc_lb4_aff"])
    XCTAssertEqual(
      sizes.byMap.map(\.flag),
      ["--lb-services-max", "--lb-backends-max", "--conntrack-max", "--affinity-max"])
  }

  /// Each flag sizes its IPv6 twin alike: --conntrack-max jnc_ct6 as well as jnc_ct4.
  func testEachFlagSizesBothFamiliesMaps() {
    let sizes = MapSizes(lbServices: 100, lbBackends: 200, conntrack: 300, affinity: 400)
    XCTAssertEqual(
      sizes.allMaps.map { "\($0.map)=\($0.maxEntries)" },
      [
        "jnc_lb4_svc=100", "jnc_lb4_be=200", "jnc_ct4=300", "jnc_lb4_aff=400",
        "jnc_lb6_svc=100", "jnc_lb6_be=200", "jnc_ct6=300", "jnc_lb6_aff=400",
      ])
    XCTAssertEqual(sizes.maxEntries(of: "jnc_ct6"), 300)
    XCTAssertEqual(sizes.maxEntries(of: "jnc_ct4"), 300)
    XCTAssertEqual(
      sizes.allMaps.filter { $0.map == "jnc_ct6" }.map(\.flag), ["--conntrack-max"])
    XCTAssertNil(sizes.maxEntries(of: "jnc_devices"), "not sized by a flag")
  }

  func testFlagsWinOverTheFile() throws {
    let file = try AgentConfigFile.parse(
      Array(
        #"{"lb-services-max": 1000, "lb-backends-max": 2000, "conntrack-max": 3000, "affinity-max": 4000}"#
          .utf8))
    XCTAssertEqual(
      file,
      AgentConfigFile(
        lbServicesMax: 1000, lbBackendsMax: 2000, conntrackMax: 3000, affinityMax: 4000))
    let settings = resolve(flags: AgentConfigFile(conntrackMax: 65536), file: file)
    XCTAssertEqual(
      settings.mapSizes,
      MapSizes(lbServices: 1000, lbBackends: 2000, conntrack: 65536, affinity: 4000))
  }

  func testOutOfRangeSizesAreRefusedNamingTheFlag() {
    for (flags, flag) in [
      (AgentConfigFile(lbServicesMax: 0), "--lb-services-max 0"),
      (AgentConfigFile(lbBackendsMax: -1), "--lb-backends-max -1"),
      (AgentConfigFile(conntrackMax: (1 << 24) + 1), "--conntrack-max 16777217"),
      (AgentConfigFile(affinityMax: Int.max), "--affinity-max \(Int.max)"),
    ] {
      let problem = resolve(flags: flags).problem
      XCTAssertTrue(problem?.hasPrefix(flag) ?? false, "\(flag): \(problem ?? "nil")")
      XCTAssertTrue(problem?.contains("1 to 16777216") ?? false, problem ?? "nil")
    }
    XCTAssertNil(resolve(flags: AgentConfigFile(conntrackMax: 1)).problem)
    XCTAssertNil(resolve(flags: AgentConfigFile(conntrackMax: 1 << 24)).problem)
  }

  func testConfigFileSizesMustBeWholeNumbers() {
    for text in [#"{"conntrack-max": "65536"}"#, #"{"conntrack-max": 1.5}"#] {
      do {
        _ = try AgentConfigFile.parse(Array(text.utf8))
        XCTFail("\(text) parsed")
      } catch {
        XCTAssertTrue(error.description.contains("must be a whole number"), "\(text): \(error)")
      }
    }
  }

  func testConfigCarriesTheSizesAndOldConfigsStillDecode() throws {
    let old = #"""
      {"version": "0.1.0", "nodeName": "n", "socket": "/s", "stateDir": "/d", "bpfFS": "/b",
       "fromEndpointProgram": "/b/f", "toEndpointProgram": "/b/t", "devices": []}
      """#
    let decoded = try JSONDecoder().decode(AgentConfig.self, from: Data(old.utf8))
    XCTAssertNil(decoded.conntrackMax)
    var config = decoded
    config.conntrackMax = 65536
    config.lbServicesMax = 100
    let again = try JSONDecoder().decode(AgentConfig.self, from: JSONEncoder().encode(config))
    XCTAssertEqual(again, config)
  }

  func testLoadBalancerDumpRoundTrips() throws {
    let dump = LBMapDump(
      services: [
        LBServiceEntry(
          address: "10.96.0.10", port: 80, proto: "TCP", slot: 0, backendID: 0, count: 1,
          revNatID: 5, flags: 2, flagNames: ["maglev"], affinityTimeout: 0),
        LBServiceEntry(
          address: "10.96.0.10", port: 80, proto: "TCP", slot: 1, backendID: 7, count: 0,
          revNatID: 5, flags: 0, flagNames: [], affinityTimeout: 0),
      ],
      backends: [
        LBBackendEntry(
          id: 7, address: "10.240.0.2", port: 8080, proto: "TCP", flags: 1,
          flagNames: ["terminating"])
      ],
      reverseNAT: [LBRevNATEntry(id: 5, address: "10.96.0.10", port: 80, maglev: true)],
      maglevTables: [5], maps: [LBMapInfo(name: "jnc_ct4", maxEntries: 65536)])
    XCTAssertEqual(dump.services[0].frontend, "10.96.0.10:80/TCP")
    XCTAssertEqual(dump.backends[0].endpoint, "10.240.0.2:8080/TCP")
    XCTAssertEqual(try JSONDecoder().decode(LBMapDump.self, from: JSONEncoder().encode(dump)), dump)
  }

  /// jnc_lb6_* entries print their addresses in brackets, so the port is not a ninth group.
  func testIPv6EntriesPrintTheirAddressInBrackets() {
    let frontend = LBServiceEntry(
      address: "fd00:10:96::a", port: 80, proto: "TCP", slot: 0, backendID: 0, count: 1,
      revNatID: 6, flags: 0, flagNames: [], affinityTimeout: 0)
    XCTAssertEqual(frontend.frontend, "[fd00:10:96::a]:80/TCP")
    XCTAssertTrue(frontend.isIPv6)
    let backend = LBBackendEntry(
      id: 8, address: "fd00:10:240:1::2", port: 8080, proto: "UDP", flags: 0, flagNames: [])
    XCTAssertEqual(backend.endpoint, "[fd00:10:240:1::2]:8080/UDP")
    XCTAssertEqual(
      LBRevNATEntry(id: 6, address: "fd00:10:96::a", port: 80, maglev: false).source,
      "[fd00:10:96::a]:80")
    XCTAssertEqual(
      LBRevNATEntry(id: 5, address: "10.96.0.10", port: 80, maglev: false).source, "10.96.0.10:80")
    XCTAssertFalse(
      LBServiceEntry(
        address: "10.96.0.10", port: 80, proto: "TCP", slot: 0, backendID: 0, count: 1,
        revNatID: 5, flags: 0, flagNames: [], affinityTimeout: 0
      ).isIPv6)
  }
}
