import Foundation
import XCTest

/// A short run of the fault-injection soak (bench/soak.py, issues 18 and 16): ADD/DEL cycles
/// through libcni, in native mode and chained after bridge, with the agent SIGKILLed mid-ADD
/// and mid-DEL, the plugin SIGKILLed mid-ADD, the IPAM plugin failing, the netns removed
/// before DEL, the agent's state directory full, the agent stopped (SIGTERM) during DEL or
/// frozen (SIGSTOP) past agentTimeout, DEL repeated, and GC at the end; no leak of any kind
/// (links, allocations, endpoints, queue records, tc filters and qdiscs, conntrack and
/// affinity entries, counters, pins) after any cycle. bench/results/reliability.md has the
/// long runs.
final class SoakTests: XCTestCase {
  func testNativeModeCyclesWithRandomFaultsLeakNothing() throws {
    try soak(mode: "native", cycles: 25, seed: 16)
  }

  func testChainedModeCyclesWithRandomFaultsLeakNothing() throws {
    try soak(mode: "chained", cycles: 25, seed: 61)
  }

  private func soak(mode: String, cycles: Int, seed: Int) throws {
    try TestNode.requirePrerequisites()
    try TestAgent.requirePrerequisites()
    for (tool, path) in [("strace", "/usr/bin/strace"), ("bridge", "/usr/lib/cni/bridge")] {
      guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TestNode.missing("\(tool) is missing at \(path) (install/deps.sh test)")
      }
    }
    let report = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent("junction-soak-\(mode)-\(getpid()).json")
    defer { try? FileManager.default.removeItem(at: report) }
    // The script removes everything it made itself, also when it fails or is stopped.
    let result = try Shell.run(
      [
        "python3", Artifacts.repoRoot.appendingPathComponent("bench/soak.py").path,
        "--mode", mode, "--cycles", "\(cycles)", "--seed", "\(seed)", "--json", report.path,
        "--junction", Artifacts.junction, "--agent", TestAgent.binary,
        "--driver", Artifacts.driver, "--bpf-objects", TestAgent.bpfObjects,
      ], timeout: 300)
    let json = try? JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any]
    let summary = json.map { "\($0)" } ?? result.stderr
    XCTAssertEqual(result.status, 0, summary)
    let leaks = try XCTUnwrap(json?["leaks"] as? [String: Int], summary)
    XCTAssertEqual(leaks.count, 14, summary)
    XCTAssertEqual(leaks.values.reduce(0, +), 0, "leaks: \(summary)")
    XCTAssertEqual((json?["delFailures"] as? [Any])?.count, 0, summary)
    XCTAssertEqual((json?["gcFailures"] as? [Any])?.count, 0, summary)
    XCTAssertEqual(json?["gcOrphansCollected"] as? Int, 1, summary)
    let faults = try XCTUnwrap(json?["faults"] as? [String: Int])
    XCTAssertEqual(faults.values.reduce(0, +), cycles)
    // The conntrack and affinity checks saw something to check.
    XCTAssertGreaterThan(json?["serviceDatagramsSent"] as? Int ?? 0, 0, summary)
  }
}
