import Foundation
import XCTest

/// A short run of the fault-injection soak (bench/soak.py, issue 18): ADD/DEL cycles in
/// native mode through libcni with the agent killed mid-ADD and mid-DEL, the plugin killed
/// mid-ADD, the netns removed before DEL, the agent stopped during DEL and DEL repeated,
/// and no leak of any kind after any cycle. bench/results/soak.md has the long run.
final class SoakTests: XCTestCase {
  func testFortyCyclesWithRandomFaultsLeakNothing() throws {
    try TestNode.requirePrerequisites()
    try TestAgent.requirePrerequisites()
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else {
      throw TestNode.missing("strace is missing (install/deps.sh test installs it)")
    }
    let report = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent("junction-soak-\(getpid()).json")
    defer { try? FileManager.default.removeItem(at: report) }
    // The script removes everything it made itself, also when it fails or is stopped.
    let result = try Shell.run(
      [
        "python3", Artifacts.repoRoot.appendingPathComponent("bench/soak.py").path,
        "--cycles", "40", "--seed", "18", "--json", report.path,
        "--junction", Artifacts.junction, "--agent", TestAgent.binary,
        "--driver", Artifacts.driver, "--bpf-objects", TestAgent.bpfObjects,
      ], timeout: 240)
    let json = try? JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any]
    let summary = json.map { "\($0)" } ?? result.stderr
    XCTAssertEqual(result.status, 0, summary)
    let leaks = try XCTUnwrap(json?["leaks"] as? [String: Int], summary)
    XCTAssertEqual(leaks.count, 11, summary)
    XCTAssertEqual(leaks.values.reduce(0, +), 0, "leaks: \(summary)")
    XCTAssertEqual((json?["delFailures"] as? [Any])?.count, 0, summary)
    let faults = try XCTUnwrap(json?["faults"] as? [String: Int])
    XCTAssertEqual(faults.values.reduce(0, +), 40)
  }
}
