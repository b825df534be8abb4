import AgentAPI
import XCTest

@testable import AgentCore

final class AgentSettingsTests: XCTestCase {
  func testConfigFileKeysMirrorFlags() throws {
    let text = """
      {"node-name": "n1", "socket": "/run/a.sock", "state-dir": "/s", "bpf-fs": "/b",
       "bpf-objects": "/o", "devices": ["eth0", "eth1"], "log-level": "debug"}
      """
    let file = try AgentConfigFile.parse(Array(text.utf8))
    XCTAssertEqual(
      file,
      AgentConfigFile(
        nodeName: "n1", socket: "/run/a.sock", stateDir: "/s", bpfFS: "/b", bpfObjects: "/o",
        devices: ["eth0", "eth1"], logLevel: "debug"))
    XCTAssertEqual(
      try AgentConfigFile.parse(Array(#"{"devices": "eth0, eth1,"}"#.utf8)).devices,
      ["eth0", "eth1"])
    XCTAssertEqual(try AgentConfigFile.parse(Array("{}".utf8)), AgentConfigFile())
  }

  /// Every key the parser decodes is one the file may hold ("envoy" was decoded but refused
  /// as unknown before it was listed).
  func testTheEnvoyAndTCHookKeysAreAccepted() throws {
    let file = try AgentConfigFile.parse(
      Array(#"{"envoy": "/usr/local/bin/envoy", "tc-hook": "tcx"}"#.utf8))
    XCTAssertEqual(file.envoy, "/usr/local/bin/envoy")
    XCTAssertEqual(file.tcHook, "tcx")
  }

  func testTCHookFlagThenFileThenClsact() {
    func resolve(flag: String?, file: String?) -> AgentSettings {
      AgentSettings.resolve(
        flags: AgentConfigFile(tcHook: flag), file: AgentConfigFile(tcHook: file),
        environment: [:], hostname: "n1")
    }
    XCTAssertEqual(resolve(flag: nil, file: nil).tcHook, .clsact)
    XCTAssertEqual(resolve(flag: nil, file: "clsact").tcHook, .clsact)
    XCTAssertEqual(resolve(flag: nil, file: "tcx").tcHook, .tcx, "the file overrides the default")
    XCTAssertEqual(resolve(flag: nil, file: "auto").tcHook, .auto)
    XCTAssertEqual(resolve(flag: "tcx", file: "clsact").tcHook, .tcx)
    XCTAssertNil(resolve(flag: "tcx", file: nil).problem)
    XCTAssertEqual(
      resolve(flag: "xdp", file: nil).problem, #"--tc-hook "xdp" is not one of auto, clsact, tcx"#)
  }

  func testConfigFileErrorsAreOneLine() {
    let cases: [(String, String)] = [
      ("{", "not valid JSON"),
      ("[]", "JSON object"),
      (#"{"sockets": "x", "zz": 1}"#, "unknown keys 'sockets', 'zz'"),
      (#"{"socket": 3}"#, "'socket' must be a string"),
      (#"{"devices": 3}"#, "'devices' must be"),
    ]
    for (text, expected) in cases {
      do {
        _ = try AgentConfigFile.parse(Array(text.utf8))
        XCTFail("\(text) parsed")
      } catch {
        XCTAssertTrue(error.description.contains(expected), "\(text): \(error.description)")
        XCTAssertFalse(error.description.contains("\n"))
      }
    }
  }

  func testPrecedenceFlagThenFileThenEnvironmentThenDefault() {
    let defaults = AgentSettings.resolve(
      flags: AgentConfigFile(), file: nil, environment: [:], hostname: "h")
    XCTAssertEqual(
      defaults,
      AgentSettings(
        nodeName: "h", socket: "/run/junction/junction.sock", stateDir: "/var/lib/junction",
        bpfFS: "/sys/fs/bpf/junction", bpfObjects: "/usr/local/lib/junction/bpf", devices: [],
        logLevel: "info"))
    let environment = ["JUNCTION_SOCKET": "/env.sock"]
    XCTAssertEqual(
      AgentSettings.resolve(
        flags: AgentConfigFile(), file: nil, environment: environment, hostname: "h"
      ).socket,
      "/env.sock")
    XCTAssertEqual(
      AgentSettings.resolve(
        flags: AgentConfigFile(), file: AgentConfigFile(socket: "/file.sock"),
        environment: environment,
        hostname: "h"
      ).socket, "/file.sock")
    let flagged = AgentSettings.resolve(
      flags: AgentConfigFile(socket: "/flag.sock", devices: ["eth9"]),
      file: AgentConfigFile(socket: "/file.sock", devices: ["eth0"], logLevel: "debug"),
      environment: environment,
      hostname: "h")
    XCTAssertEqual(flagged.socket, "/flag.sock")
    XCTAssertEqual(flagged.devices, ["eth9"])
    XCTAssertEqual(flagged.logLevel, "debug")
  }

  func testSettingsProblems() {
    var settings = AgentSettings.resolve(
      flags: AgentConfigFile(), file: nil, environment: [:], hostname: "h")
    XCTAssertNil(settings.problem)
    settings.logLevel = "loud"
    XCTAssertNotNil(settings.problem)
    settings.logLevel = "debug"
    settings.devices = ["eth0", "bad/name"]
    XCTAssertNotNil(settings.problem)
    settings.devices = []
    settings.socket = "/" + String(repeating: "s", count: 120)
    XCTAssertTrue(settings.problem?.contains("longer than") ?? false)
    settings.socket = ""
    XCTAssertNotNil(settings.problem)
  }

  func testFlowSettings() throws {
    let defaults = AgentSettings.resolve(
      flags: AgentConfigFile(), file: nil, environment: [:], hostname: "h")
    XCTAssertEqual(defaults.flows, FlowSettings(level: .flows, bufferSize: 4095))
    XCTAssertEqual(FlowSettings.Level.allCases.map(\.code), [0, 1, 2], "jnc_mon_cfg's values")
    let file = try AgentConfigFile.parse(
      Array(#"{"monitor-level": "all", "flow-buffer-size": 100}"#.utf8))
    let fromFile = AgentSettings.resolve(
      flags: AgentConfigFile(flowBufferSize: 7), file: file, environment: [:], hostname: "h")
    XCTAssertEqual(fromFile.flows, FlowSettings(level: .all, bufferSize: 7))
    XCTAssertNil(fromFile.problem)
    XCTAssertThrowsError(try AgentConfigFile.parse(Array(#"{"flow-buffer-size": "x"}"#.utf8))) {
      XCTAssertEqual("\($0)", "'flow-buffer-size' must be a whole number")
    }
    let loud = AgentSettings.resolve(
      flags: AgentConfigFile(monitorLevel: "loud"), file: nil, environment: [:], hostname: "h")
    XCTAssertEqual(loud.problem, "--monitor-level \"loud\" is not one of off, flows, all")
    let huge = AgentSettings.resolve(
      flags: AgentConfigFile(flowBufferSize: 0), file: nil, environment: [:], hostname: "h")
    XCTAssertEqual(
      huge.problem, "--flow-buffer-size 0 is out of range: it must be 1 to 1048576")
  }

  func testHealthSummary() {
    let ok = HealthSummary.make(
      nodeName: "n", datapathLoaded: true, endpoints: 3, stateProblem: nil, shuttingDown: false)
    XCTAssertEqual(ok.status, "ok")
    XCTAssertEqual(ok.components, ["api": "ok", "datapath": "ok", "state": "ok"])
    XCTAssertEqual(ok.endpoints, 3)
    XCTAssertEqual(ok.version, AgentVersion.current)
    let unloaded = HealthSummary.make(
      nodeName: "n", datapathLoaded: false, endpoints: 0, stateProblem: nil, shuttingDown: false)
    XCTAssertEqual(unloaded.status, "degraded")
    XCTAssertEqual(unloaded.components["datapath"], "not loaded")
    let failing = HealthSummary.make(
      nodeName: "n", datapathLoaded: true, endpoints: 0, stateProblem: "disk full",
      shuttingDown: false)
    XCTAssertEqual(failing.status, "degraded")
    XCTAssertEqual(failing.components["state"], "error: disk full")
    let stopping = HealthSummary.make(
      nodeName: "n", datapathLoaded: true, endpoints: 0, stateProblem: nil, shuttingDown: true)
    XCTAssertEqual(stopping.status, "shutting-down")
  }

  func testHealthSummaryReportsMissingPins() {
    let pinsGone = HealthSummary.make(
      nodeName: "n", datapathLoaded: true, endpoints: 1, stateProblem: nil, shuttingDown: false,
      datapathProblem: "the pinned programs are missing")
    XCTAssertEqual(pinsGone.status, "degraded")
    XCTAssertEqual(pinsGone.components["datapath"], "error: the pinned programs are missing")
    XCTAssertTrue(pinsGone.datapathLoaded)
  }

  /// The cgroup2 of --socket-lb unmounted under the agent: a warning naming the path and the
  /// recovery; ok while mounted.
  func testSocketLBComponentWarnsWhenTheCgroupMountIsGone() {
    XCTAssertEqual(HealthSummary.socketLBComponent(cgroupRoot: "/c", stillMounted: true), "ok")
    let gone = HealthSummary.socketLBComponent(cgroupRoot: "/c", stillMounted: false)
    XCTAssertTrue(gone.hasPrefix("warning: the cgroup2 at /c is no longer mounted"), gone)
    XCTAssertTrue(gone.contains("restart the agent"), gone)
  }

  func testReconcileDecisions() {
    let spec = sampleSpec()
    XCTAssertEqual(
      ReconcileDecision.decide(spec: spec, namespace: .present, link: .present(index: 12)), .keep)
    guard
      case .remove = ReconcileDecision.decide(
        spec: spec, namespace: .missing, link: .present(index: 12)),
      case .remove = ReconcileDecision.decide(
        spec: spec, namespace: .notANamespace, link: .present(index: 12)),
      case .remove = ReconcileDecision.decide(spec: spec, namespace: .present, link: .missing),
      case .remove = ReconcileDecision.decide(
        spec: spec, namespace: .present, link: .present(index: 13)),
      case .keepUnverified = ReconcileDecision.decide(
        spec: spec, namespace: .unknown("EPERM"), link: .missing),
      case .keepUnverified = ReconcileDecision.decide(
        spec: spec, namespace: .present, link: .unknown("x"))
    else { return XCTFail() }
  }

  func testAddressAndNameRules() {
    XCTAssertNil(AddressRules.cidr("10.0.0.1/0"))
    XCTAssertNil(AddressRules.cidr("fd00::1/128"))
    XCTAssertNotNil(AddressRules.cidr("10.0.0.1/"))
    XCTAssertNotNil(AddressRules.cidr("10.0.0.1/1/2"))
    XCTAssertNotNil(AddressRules.cidr(" 10.0.0.1/8"))
    XCTAssertNotNil(AddressRules.cidr("10.0.0.1/0008"))
    XCTAssertNil(AddressRules.mac("0A:58:0a:f4:01:05"))
    XCTAssertNotNil(AddressRules.mac("0a-58-0a-f4-01-05"))
    XCTAssertNil(NameRules.containerID("a1_.-"))
    XCTAssertNil(NameRules.interfaceName("eth0"))
    XCTAssertNotNil(NameRules.interfaceName("eth0\t"))
    XCTAssertNil(NameRules.kubernetesName("kube-system"))
    XCTAssertEqual(NameRules.printable("a\nb"), "a\\u{a}b")
  }
}
