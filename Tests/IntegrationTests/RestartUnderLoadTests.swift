import Foundation
import XCTest

/// A short run of bench/restarts.py (issue 16, part 2): two labs (SNAT and DSR), wrk through
/// a ClusterIP from a pod (per-packet) and from a node's own namespace (socket LB), a
/// NodePort in SNAT and in DSR mode from the external client, and a Local Redirect Policy
/// frontend, with keep-alive connections and a connection per request; meanwhile every agent
/// is restarted 4 times (SIGTERM and SIGKILL, two each) and upgraded once to BPF objects whose
/// programs differ (bpf/lib/variant.h). No request fails, tcpdump sees no RST at either end
/// of any path, every attached program is replaced (and by the new build after the
/// upgrade), and nothing leaks (agents, pins, tc filters, endpoints, services).
/// bench/results/reliability.md has the 20-restart run.
final class RestartUnderLoadTests: XCTestCase {
  func testRequestsSurviveRestartsAndAnUpgradeOnEveryPath() throws {
    try LabHarness.requirePrerequisites(tools: ["wrk", "tcpdump", "curl", "tc"])
    let report = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent("junction-restarts-\(getpid()).json")
    defer { try? FileManager.default.removeItem(at: report) }
    // The script takes down the labs it made, also when it fails or is stopped.
    let result = try Shell.run(
      [
        "python3", Artifacts.repoRoot.appendingPathComponent("bench/restarts.py").path,
        "--restarts", "4", "--upgrade-at", "2", "--pause", "0.5", "--json", report.path,
      ], timeout: 400)
    let json = try? JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any]
    let summary = json.map { "\($0)" } ?? "\(result.stdout)\(result.stderr)"
    XCTAssertNil(json?["failure"], summary)
    XCTAssertEqual(json?["restarts"] as? Int, 4, summary)
    XCTAssertEqual(json?["signals"] as? [String: Int], ["TERM": 2, "KILL": 2], summary)
    let paths = try XCTUnwrap(json?["paths"] as? [String: [String: Any]], summary)
    XCTAssertEqual(
      Set(paths.keys), ["clusterip-pod", "clusterip-host", "nodeport-snat", "nodeport-dsr", "lrp"])
    for (path, figures) in paths {
      for style in ["keepalive", "close"] {
        let load = figures[style] as? [String: Any]
        XCTAssertGreaterThan(load?["requests"] as? Int ?? 0, 0, "\(path) \(style): \(summary)")
        XCTAssertEqual(load?["failed"] as? Int, 0, "\(path) \(style) failed: \(summary)")
      }
      XCTAssertEqual(figures["rstClient"] as? Int, 0, "\(path) RSTs at the client: \(summary)")
      XCTAssertEqual(figures["rstBackend"] as? Int, 0, "\(path) RSTs at the backend: \(summary)")
    }
    let leaks = try XCTUnwrap(json?["leaks"] as? [String: Int], summary)
    XCTAssertEqual(leaks.count, 5, summary)
    XCTAssertEqual(leaks.values.reduce(0, +), 0, "leaks: \(summary)")
    XCTAssertGreaterThan(json?["attachedPrograms"] as? Int ?? 0, 0, summary)
    XCTAssertEqual((json?["programsNotReplaced"] as? [Any])?.count, 0, summary)
    XCTAssertEqual((json?["programsNotUpgraded"] as? [Any])?.count, 0, summary)
  }
}
