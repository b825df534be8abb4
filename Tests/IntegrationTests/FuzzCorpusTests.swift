import Foundation
import XCTest

/// The committed fuzz corpus (fuzz/corpus, issue 16) through every decoder harness, without
/// libFuzzer: the inputs that once found something, and the seeds, must never trap again.
/// The fuzzing itself is `fuzz/run.sh` (a separate -sanitize=fuzzer build).
final class FuzzCorpusTests: XCTestCase {
  func testTheCommittedCorpusReplaysWithoutACrash() throws {
    let replayer = Artifacts.repoRoot.appendingPathComponent(".build/debug/JunctionFuzz").path
    guard FileManager.default.isExecutableFile(atPath: replayer) else {
      throw TestNode.missing("\(replayer) is missing (swift build --build-tests builds it)")
    }
    let corpus = Artifacts.repoRoot.appendingPathComponent("fuzz/corpus")
    var files: [String] = []
    let targets = try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted()
    // Every harness of fuzz/run.sh has its corpus (a new one without seeds would fuzz from
    // nothing in CI's 30 s).
    XCTAssertEqual(
      targets,
      ["agent-request", "cni-config", "conflist", "endpoint-request", "k8s-api", "k8s-yaml"])
    for target in targets {
      let directory = corpus.appendingPathComponent(target)
      for name in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() {
        files.append(directory.appendingPathComponent(name).path)
      }
    }
    XCTAssertGreaterThan(files.count, 20)
    let result = try Shell.run([replayer] + files, timeout: 120)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    XCTAssertTrue(result.stdout.contains("\(files.count) inputs"), result.stdout)
  }
}
