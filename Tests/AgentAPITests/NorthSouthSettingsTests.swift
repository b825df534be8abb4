import XCTest

@testable import AgentCore

/// --lb-mode, --node-port-range and --snat-port-range as the agent resolves and checks them.
final class NorthSouthSettingsTests: XCTestCase {
  private func resolve(_ flags: AgentConfigFile, file: AgentConfigFile? = nil) -> AgentSettings {
    AgentSettings.resolve(flags: flags, file: file, environment: [:], hostname: "h")
  }

  func testDefaultsAreSNATAndKubernetesRanges() {
    let settings = resolve(AgentConfigFile())
    XCTAssertNil(settings.problem)
    XCTAssertEqual(settings.northSouth.lbMode, .snat)
    XCTAssertEqual(settings.northSouth.nodePortRange, PortRange(30000, 32767))
    XCTAssertEqual(settings.northSouth.snatPortRange, PortRange(32768, 65535))
  }

  func testFlagsWinOverTheFile() {
    let settings = resolve(
      AgentConfigFile(lbMode: "hybrid", nodePortRange: "31000-31999"),
      file: AgentConfigFile(lbMode: "dsr", snatPortRange: "40000-40999"))
    XCTAssertNil(settings.problem)
    XCTAssertEqual(settings.northSouth.lbMode, .hybrid)
    XCTAssertEqual(settings.northSouth.nodePortRange, PortRange(31000, 31999))
    XCTAssertEqual(settings.northSouth.snatPortRange, PortRange(40000, 40999))
  }

  func testABadLBModeIsRefusedNamingTheChoices() {
    let problem = resolve(AgentConfigFile(lbMode: "ipvs")).problem
    XCTAssertEqual(problem, "--lb-mode \"ipvs\" is not one of snat, dsr, hybrid")
  }

  func testBadAndOverlappingRangesAreRefused() {
    for text in ["30000", "32767-30000", "0-10", "1-70000", "a-b", "-"] {
      let problem = resolve(AgentConfigFile(nodePortRange: text)).problem
      XCTAssertEqual(
        problem,
        "--node-port-range \"\(text)\" is not LOW-HIGH with 1 <= LOW <= HIGH <= 65535", text)
    }
    XCTAssertEqual(
      resolve(AgentConfigFile(snatPortRange: "32000-33000")).problem,
      "--snat-port-range 32000-33000 overlaps --node-port-range 30000-32767")
    XCTAssertEqual(
      resolve(AgentConfigFile(nodePortRange: "40000-40010")).problem,
      "--snat-port-range 32768-65535 overlaps --node-port-range 40000-40010")
    XCTAssertEqual(
      resolve(AgentConfigFile(snatPortRange: "100-200")).problem,
      "--snat-port-range 100-200 must not include ports below 1024")
    // Touching but not overlapping is fine.
    XCTAssertNil(
      resolve(AgentConfigFile(nodePortRange: "30000-32767", snatPortRange: "32768-40000")).problem)
  }

  func testDSRByModeAndProtocol() {
    XCTAssertEqual(LBMode.allCases.map { $0.usesDSR(tcp: true) }, [false, true, true])
    XCTAssertEqual(LBMode.allCases.map { $0.usesDSR(tcp: false) }, [false, true, false])
  }
}
