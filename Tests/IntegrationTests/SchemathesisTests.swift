import Foundation
import XCTest

/// schemathesis against docs/openapi.yaml on a live agent (issue 16, part 3), through
/// bench/schemathesis.py: every operation, examples, coverage and fuzzing phases, a few
/// examples each with a fixed seed (the report's run uses more, bench/results/reliability.md).
/// No response may be a 5xx or stray from the document (status, content type, headers, body
/// schema), and the agent must still be up at the end.
final class SchemathesisTests: XCTestCase {
  func testAPIMatchesItsOpenAPIDocumentWithoutServerErrors() throws {
    try TestAgent.requirePrerequisites()
    let schemathesis = Artifacts.repoRoot.appendingPathComponent(
      ".venv-schemathesis/bin/schemathesis")
    guard FileManager.default.isExecutableFile(atPath: schemathesis.path) else {
      throw TestNode.missing("schemathesis is missing (install/deps.sh test installs it)")
    }
    let report = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent("junction-schemathesis-\(getpid()).json")
    defer { try? FileManager.default.removeItem(at: report) }
    let result = try Shell.run(
      [
        "python3", Artifacts.repoRoot.appendingPathComponent("bench/schemathesis.py").path,
        "--agent", TestAgent.binary, "--bpf-objects", TestAgent.bpfObjects,
        "--schemathesis", schemathesis.path, "--max-examples", "5", "--seed", "16",
        "--json", report.path,
      ], timeout: 300)
    let json = try? JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any]
    let parsed = try XCTUnwrap(json, "no report: \(result.stdout) \(result.stderr)")
    XCTAssertEqual(parsed["agentAlive"] as? Bool, true, "\(parsed["agentCrash"] ?? "")")
    XCTAssertEqual(parsed["uniqueFailures"] as? Int, 0, "\(parsed["failures"] ?? parsed)")
    XCTAssertGreaterThan(parsed["casesGenerated"] as? Int ?? 0, 100, "\(parsed)")
    XCTAssertEqual(result.status, 0, "\(parsed["errors"] ?? parsed)")
  }
}
