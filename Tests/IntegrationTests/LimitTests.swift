import Foundation
import XCTest

/// Behaviour at the limits (issue 16, part 4), each through bench/limits.py against a real
/// agent in its own node namespace; the script checks the promised behaviour and exits 1
/// otherwise, and removes everything it made. bench/results/reliability.md has the figures.
final class LimitTests: XCTestCase {
  /// 100 ADDs at once through libcni all succeed (100 endpoints, distinct addresses, both
  /// programs attached), then 100 DELs at once leave no link, allocation or endpoint.
  func testHundredConcurrentAddsAllSucceedAndLeaveNothing() throws {
    let report = try limit("concurrent-adds", "--count", "100")
    XCTAssertEqual(report["registered"] as? Int, 100, "\(report)")
  }

  /// 1,000 API requests at once: every one answered 200, the agent stays up, and its peak
  /// resident memory grows by less than 64 MB.
  func testThousandConcurrentAPIRequestsAreAllAnsweredWithBoundedMemory() throws {
    let report = try limit("concurrent-api", "--count", "1000", "--memory-bound-mb", "64")
    XCTAssertEqual(report["statuses"] as? [String: Int], ["200": 1000], "\(report)")
  }

  /// A 100 MB apply is refused with 413, both to a client that reads while it sends (as curl
  /// does) and to one that writes the whole body before reading (the agent closes after the
  /// answer, so its write fails at once and it reads the 413, instead of waiting for the
  /// 60 s idle timeout); nothing changes, the agent stays up with bounded memory.
  func testHundredMegabyteApplyIsRefusedWithNothingChanged() throws {
    let report = try limit("big-apply", "--megabytes", "100", "--memory-bound-mb", "64")
    XCTAssertEqual(report["status"] as? Int, 413, "\(report)")
    let writingFirst = try XCTUnwrap(report["writingFirst"] as? [String: Any], "\(report)")
    XCTAssertEqual(writingFirst["status"] as? Int, 413, "\(report)")
    XCTAssertEqual(report["servicesUnchanged"] as? Bool, true, "\(report)")
  }

  /// The agent's bpffs unmounted under it: ADD fails naming the missing pins, /v1/healthz is
  /// degraded and says why, DEL and the running pod keep working; remounting and restarting
  /// the agent recovers (ADD works, the old pod's programs attached).
  func testBPFFilesystemVanishingIsReportedAndRecoverable() throws {
    let report = try limit("bpffs-gone")
    XCTAssertEqual(report["healthSaysPinsMissing"] as? Bool, true, "\(report)")
    XCTAssertEqual(report["oldPodReattached"] as? Bool, true, "\(report)")
  }

  /// The cgroup2 of --socket-lb unmounted under the agent: /v1/healthz's socketLB component
  /// warns and names the path (the status stays ok), the node's own connections to a
  /// ClusterIP keep being balanced, ADD works, and after a restart the mount is back.
  func testCgroupMountVanishingIsReportedAndRecoverable() throws {
    let report = try limit("cgroup-gone")
    XCTAssertEqual(report["healthSaysMountGone"] as? Bool, true, "\(report)")
    XCTAssertEqual(report["nodeReachedServiceWithoutMount"] as? Bool, true, "\(report)")
    XCTAssertEqual(report["nodeReachedServiceAfterRestart"] as? Bool, true, "\(report)")
  }

  /// SNAT ports exhausted (a two-node lab, `--snat-port-range` of 4 ports): 4 connections
  /// through node1's NodePort to node2's backend are held, a fifth fails with "No free SNAT
  /// port" counted on node1 while the 4 keep working; after they close, new connections
  /// succeed again (the close timeout) and the range can be held whole again.
  func testSNATPortsExhaustedDropCountedAndRecoverAfterClose() throws {
    try LabHarness.requirePrerequisites(tools: ["python3"])
    let report = try limit("snat-exhausted", "--snat-ports", "40000-40003")
    let drops = try XCTUnwrap(report["noPortDrops"] as? [Int], "\(report)")
    XCTAssertGreaterThan(drops.count == 3 ? drops[1] - drops[0] : 0, 0, "\(report)")
    XCTAssertEqual(report["otherDrops"] as? [String: Int], [:], "\(report)")
  }

  /// The conntrack map full (`--conntrack-max 8`: four connections, swept every second):
  /// a fifth connection is refused with its SYNs counted as "CT: Map insertion failed"
  /// while the first keeps echoing (the map is a plain hash: it refuses instead of evicting);
  /// once the other three are closed, their entries expire (the 10 s close timeout) and the
  /// agent's sweep deletes them, a new connection works and the first still echoes.
  func testConntrackMapFullRefusesNewConnectionsKeepsEstablishedAndRecovers() throws {
    let report = try limit("conntrack-full", "--conntrack-max", "8")
    XCTAssertEqual(report["mapType"] as? String, "hash", "\(report)")
    let drops = try XCTUnwrap(report["ctFullDrops"] as? [Int], "\(report)")
    XCTAssertGreaterThan(drops.count == 3 ? drops[1] - drops[0] : 0, 0, "\(report)")
    let phases = try XCTUnwrap(report["phases"] as? [[String: Any]], "\(report)")
    XCTAssertEqual(phases.last?["establishedWorking"] as? Bool, true, "\(report)")
  }

  /// An upgrade from ABI 4's LRU conntrack maps (objects built with
  /// -DJNC_CT_MAP_TYPE=BPF_MAP_TYPE_LRU_HASH) under three held connections: the agent
  /// started with this tree's objects replaces the pinned LRU jnc_ct4 by a hash map holding
  /// every old entry, removes the old pin, and the three connections keep echoing.
  func testConntrackLRUMapIsMigratedOnUpgradeKeepingConnections() throws {
    let report = try limit("conntrack-upgrade")
    XCTAssertEqual(report["typeBefore"] as? String, "lru_hash", "\(report)")
    XCTAssertEqual(report["typeAfter"] as? String, "hash", "\(report)")
    XCTAssertEqual(report["entriesKept"] as? Int, 6, "\(report)")
    let phases = try XCTUnwrap(report["phases"] as? [[String: Any]], "\(report)")
    XCTAssertEqual(phases.last?["echoing"] as? Int, 3, "\(report)")
  }

  /// Runs one limit; fails unless the script judged the behaviour the promised one.
  private func limit(_ name: String, _ arguments: String...) throws -> [String: Any] {
    try TestNode.requirePrerequisites()
    try TestAgent.requirePrerequisites()
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else {
      throw TestNode.missing("strace is missing (install/deps.sh test installs it)")
    }
    let report = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent("junction-limit-\(name)-\(getpid()).json")
    defer { try? FileManager.default.removeItem(at: report) }
    let result = try Shell.run(
      [
        "python3", Artifacts.repoRoot.appendingPathComponent("bench/limits.py").path, name,
        "--json", report.path, "--junction", Artifacts.junction, "--agent", TestAgent.binary,
        "--driver", Artifacts.driver, "--bpf-objects", TestAgent.bpfObjects,
      ] + arguments, timeout: 300)
    let json = try? JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any]
    let parsed = try XCTUnwrap(json, "no report: \(result.stdout) \(result.stderr)")
    XCTAssertEqual(result.status, 0, "\(parsed)")
    XCTAssertEqual(parsed["ok"] as? Bool, true, "\(parsed)")
    return parsed
  }
}
