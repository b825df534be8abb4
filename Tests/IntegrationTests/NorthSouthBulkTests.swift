import Foundation
import XCTest

/// Bulk TCP through a NodePort (issue 19): the external client downloads and uploads 64 MiB
/// through node1's NodePort to the backend pod on node3, in SNAT, DSR and hybrid mode, and
/// the same straight to the pod's IP in the same lab (routed by node3, no load balancer).
/// The veths of the lab keep TCP's GSO bursts whole (TSO on, no segmentation until a real
/// NIC would do it), so node1's from_netdev sees packets far larger than the 1500-byte MTU:
/// this test checks that such packets do cross node1, that every transfer through the
/// NodePort takes at most 3 times the direct one (the best of two rounds each; `floor` below
/// the least limit), and that no node counted a FIB_FAILED or FRAG_NEEDED drop. Before the
/// fix, node1 dropped every coalesced packet as FIB_FAILED (bpf_fib_lookup was given
/// skb->len as the packet's length): 0.4-0.6 MB got through in the 20 s deadline.
///
/// Why a lab and not only a BPF test run: BPF_PROG_TEST_RUN takes gso_size and gso_segs
/// from the __sk_buff but not gso_type, so it can run a GSO skb through the FIB and MTU
/// checks (NetdevTests does), but not through the kernel's segmentation: only the lab shows
/// the whole path (GSO burst, redirect, segmentation on the way out, the backend's TCP).
final class NorthSouthBulkTests: XCTestCase {
  private static let node1 = "172.30.0.11"
  private static let nodePort = 30090
  private static let bytes = 64 << 20
  /// A transfer slower than this fails at once (the broken path needed minutes).
  private static let deadline = 20
  /// The least limit on a transfer through the NodePort, seconds: the direct path moves
  /// 64 MiB in some 50 ms here, where a scheduler hiccup on a busy machine is already a
  /// large factor; a path that loses packets waits retransmission timeouts of 200 ms and
  /// more, many of them (and every FIB_FAILED drop is counted anyway).
  private static let floor = 0.25

  private static let manifest = """
    apiVersion: v1
    kind: Service
    metadata: {name: bulk, namespace: default}
    spec:
      type: NodePort
      clusterIP: 10.96.60.10
      selector: {app: bulk}
      ports:
      - {port: 80, targetPort: 8080, nodePort: \(nodePort), protocol: TCP}
    """

  /// The backend and the client (`serve PORT`; `get|put HOST PORT BYTES DEADLINE`, printing
  /// the seconds), shared with bench/northsouth.sh's bulk rows.
  private static let script = Artifacts.repoRoot.appendingPathComponent("bench/nsbulk.py").path

  func testSNATBulkTransfersThroughTheNodePortRunNearTheDirectPath() throws {
    try assertBulkTransfers(lbMode: "snat")
  }

  func testDSRBulkTransfersThroughTheNodePortRunNearTheDirectPath() throws {
    try assertBulkTransfers(lbMode: "dsr")
  }

  func testHybridBulkTransfersThroughTheNodePortRunNearTheDirectPath() throws {
    try assertBulkTransfers(lbMode: "hybrid")
  }

  // MARK: - The lab

  private func assertBulkTransfers(
    lbMode: String, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    try LabHarness.requirePrerequisites(tools: ["tcpdump", "python3"])
    let lab = try LabHarness(scratch: "bulk")
    defer { lab.tearDown() }
    let manifest = try lab.write(NorthSouthBulkTests.manifest, to: "bulk.yaml")

    try lab.must(["up", "--nodes", "3", "--lb-mode", lbMode])
    let agentPIDs = try lab.agentPIDs(nodes: 3)
    try lab.must(["pod", "add", "bulk3", "--node", "node3", "--label", "app=bulk"])
    try lab.must([
      "exec", "--detach", "bulk3", "--", "python3", NorthSouthBulkTests.script, "serve", "8080",
    ])
    try lab.must(["apply", "-f", manifest])
    let pod = try String(contentsOfFile: "\(lab.state)/pods/bulk3/ip", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let dropsBefore = try drops(lab)
    let capture = try startCapture(lab)

    // Two rounds, the best of each kept: a busy machine slows one run, not both.
    var best: [String: Double] = [:]
    for _ in 0..<2 {
      for (path, host, port) in [
        ("direct", pod, 8080),
        ("nodeport", NorthSouthBulkTests.node1, NorthSouthBulkTests.nodePort),
      ] {
        for verb in ["get", "put"] {
          let seconds = try transfer(lab, verb, host, port, file: file, line: line)
          best["\(path) \(verb)"] = min(best["\(path) \(verb)"] ?? .infinity, seconds)
        }
      }
    }
    let superpackets = try finish(capture)
    let dropsAfter = try drops(lab)
    print("bulk \(lbMode) \(NorthSouthBulkTests.bytes) bytes, best of 2 (s): \(best)")

    XCTAssertGreaterThan(
      superpackets, 0, "TCP packets larger than the MTU reach node1's eth0 (GRO/GSO kept)",
      file: file, line: line)
    for verb in ["get", "put"] {
      let direct = try XCTUnwrap(best["direct \(verb)"], file: file, line: line)
      let nodePort = try XCTUnwrap(best["nodeport \(verb)"], file: file, line: line)
      XCTAssertLessThanOrEqual(
        nodePort, max(3 * direct, NorthSouthBulkTests.floor),
        "\(lbMode) \(verb): \(nodePort) s through the NodePort, \(direct) s straight",
        file: file, line: line)
    }
    for reason in ["JUNCTION_DROP_FIB_FAILED", "JUNCTION_DROP_FRAG_NEEDED"] {
      let grew = dropsAfter.filter { $0.key.hasPrefix(reason) && $0.value != dropsBefore[$0.key] }
      XCTAssertEqual(grew, [:], "\(reason) counted during the transfers", file: file, line: line)
    }

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }

  /// One transfer from the external client: its seconds, or a recorded failure (infinity).
  private func transfer(
    _ lab: LabHarness, _ verb: String, _ host: String, _ port: Int, file: StaticString,
    line: UInt
  ) throws -> Double {
    let arguments = [
      "exec-client", "--", "python3", NorthSouthBulkTests.script, verb, host, "\(port)",
      "\(NorthSouthBulkTests.bytes)", "\(NorthSouthBulkTests.deadline)",
    ]
    // The server may still be starting: the first try of the first transfer may be refused.
    let result = try lab.retried(arguments, tries: 3)
    guard result.status == 0,
      let seconds = Double(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    else {
      XCTFail("\(verb) \(host):\(port): \(result.stdout)\(result.stderr)", file: file, line: line)
      return .infinity
    }
    return seconds
  }

  /// Every node's drop counters, "REASON DIRECTION nodeN" → packets (bench/jncdrops.py reads
  /// the pinned jnc_drops).
  private func drops(_ lab: LabHarness) throws -> [String: UInt64] {
    var counted: [String: UInt64] = [:]
    for node in 1...3 {
      let out = try Shell.must([
        "python3", Artifacts.repoRoot.appendingPathComponent("bench/jncdrops.py").path,
        "\(lab.state)/nodes/node\(node)/bpf",
        Artifacts.repoRoot.appendingPathComponent("bpf/junction_abi.h").path,
      ])
      for row in out.split(separator: "\n") {
        let words = row.split(separator: " ")
        if words.count == 3, let packets = UInt64(words[2]) {
          counted["\(words[0]) \(words[1]) node\(node)"] = packets
        }
      }
    }
    return counted
  }

  private struct Capture {
    let pid: Int32
    let file: String
  }

  /// tcpdump on node1's eth0, inbound TCP packets larger than 3000 bytes (headers only).
  /// Immediate mode and packet-buffered: otherwise the few packets that match wait in a
  /// half-full ring block for a timeout, and the SIGINT that stops tcpdump throws them away.
  private func startCapture(_ lab: LabHarness) throws -> Capture {
    let file = lab.directory.appendingPathComponent("node1.pcap").path
    let out = try lab.must([
      "exec-node", "--detach", "node1", "--", "tcpdump", "-i", "eth0", "-Q", "in", "-nn", "-s",
      "96", "-U", "--immediate-mode", "-w", file, "tcp and greater 3000",
    ])
    let pid = Int32(
      out.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
    // The file's header is written once tcpdump listens.
    for _ in 0..<50 {
      let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
      if size >= 24 { break }
      usleep(100_000)
    }
    usleep(300_000)
    return Capture(pid: try XCTUnwrap(pid, "tcpdump's pid in: \(out)"), file: file)
  }

  /// Stops the capture: how many packets it kept.
  private func finish(_ capture: Capture) throws -> Int {
    usleep(200_000)
    kill(capture.pid, SIGINT)
    for _ in 0..<50 where kill(capture.pid, 0) == 0 { usleep(100_000) }
    let read = try Shell.run(["tcpdump", "-r", capture.file, "-nn"])
    return read.stdout.split(separator: "\n").count
  }
}
