import Foundation
import XCTest

/// The north-south control plane on a real agent and real maps: `--devices` gives the node
/// address NodePorts listen on, `--lb-mode` the DSR flag per protocol, the node's name the
/// local backends and externalTrafficPolicy=Local; the port ranges land in jnc_node_cfg.
/// What the datapath does with the entries is tested with the device programs.
final class NorthSouthPlanTests: DeviceNodeTestCase {
  private let device = "jnsdev0"
  private let nodeAddress = "192.168.77.2"

  /// A node namespace with the device carrying `nodeAddress`; its name.
  private func makeNode() throws -> String {
    try makeNode(prefix: "ns", device: device, peer: "jnsdev1", address: nodeAddress)
  }

  private func junctionctl(_ arguments: [String], stdin: String = "") throws -> CommandOutput {
    try CTLTests.requireBinary()
    return try Shell.run(
      [CTLTests.binary, "--socket", try XCTUnwrap(agent).socketPath] + arguments, stdin: stdin)
  }

  /// `edge`: NodePort with an external IP, TCP and UDP, eTP=Local, one backend on this node
  /// and one elsewhere. `lonely`: NodePort, eTP=Local, its only backend elsewhere.
  private func manifest(nodeName: String) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: edge, namespace: default}
    spec:
      type: NodePort
      clusterIP: 10.96.9.10
      externalIPs: [192.0.2.90]
      externalTrafficPolicy: Local
      ports:
      - {name: web, port: 80, targetPort: 8080, nodePort: 30180, protocol: TCP}
      - {name: dns, port: 53, targetPort: 5353, nodePort: 30153, protocol: UDP}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: edge-1, namespace: default, labels: {kubernetes.io/service-name: edge}}
    addressType: IPv4
    ports: [{name: web, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
    endpoints:
    - {addresses: [10.240.9.5], nodeName: \(nodeName), conditions: {ready: true}}
    - {addresses: [10.240.9.6], nodeName: other-node, conditions: {ready: true}}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: lonely, namespace: default}
    spec:
      type: NodePort
      clusterIP: 10.96.9.11
      externalTrafficPolicy: Local
      ports: [{port: 80, targetPort: 8080, nodePort: 30181}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: lonely-1, namespace: default, labels: {kubernetes.io/service-name: lonely}}
    addressType: IPv4
    ports: [{port: 8080}]
    endpoints:
    - {addresses: [10.240.9.7], nodeName: other-node, conditions: {ready: true}}
    """
  }

  /// The maps as `bpf lb list -o json` reads them back.
  private struct Maps {
    var frontends: [String: [String: Any]] = [:]
    var slots: [String: [Int]] = [:]
    var backends: [Int: [String: Any]] = [:]
    var nodeConfig: [String: Any] = [:]

    func flags(_ frontend: String) -> [String] {
      frontends[frontend]?["flagNames"] as? [String] ?? ["(missing)"]
    }

    func count(_ frontend: String) -> Int? { frontends[frontend]?["count"] as? Int }

    /// "ADDRESS flag,flag" for each slot of `frontend`.
    func slotBackends(_ frontend: String) -> [String] {
      (slots[frontend] ?? []).map { id in
        let backend = backends[id] ?? [:]
        let flags = backend["flagNames"] as? [String] ?? []
        return "\(backend["address"] ?? "?") \(flags.joined(separator: ","))"
      }
    }
  }

  private func maps(file: StaticString = #filePath, line: UInt = #line) throws -> Maps {
    let listed = try junctionctl(["bpf", "lb", "list", "-o", "json"])
    XCTAssertEqual(listed.status, 0, listed.stderr, file: file, line: line)
    let dump = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any],
      listed.stdout, file: file, line: line)
    var result = Maps()
    for entry in dump["services"] as? [[String: Any]] ?? [] {
      let key = "\(entry["address"] ?? ""):\(entry["port"] ?? "")/\(entry["proto"] ?? "")"
      if entry["slot"] as? Int == 0 {
        result.frontends[key] = entry
      } else {
        result.slots[key, default: []].append(entry["backendID"] as? Int ?? -1)
      }
    }
    for entry in dump["backends"] as? [[String: Any]] ?? [] {
      result.backends[entry["id"] as? Int ?? -1] = entry
    }
    result.nodeConfig = dump["nodeConfig"] as? [String: Any] ?? [:]
    return result
  }

  func testNodePortsExternalIPsAndLocalPolicyAreProgrammedWithTheirFlags() throws {
    let node = try makeNode()
    let agent = try TestAgent(
      namespace: node,
      arguments: [
        "--devices", device, "--lb-mode", "hybrid", "--node-port-range", "30000-30999",
        "--snat-port-range", "40000-40999",
      ])
    self.agent = agent
    let applied = try junctionctl(["apply", "-f", "-"], stdin: manifest(nodeName: agent.name))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)

    let hybrid = try maps()
    // NodePort on the device's address and on the wildcard; external everywhere but the
    // ClusterIP; DSR for TCP only (hybrid).
    for frontend in [
      "\(nodeAddress):30180/TCP", "0.0.0.0:30180/TCP", "192.0.2.90:80/TCP",
    ] {
      XCTAssertEqual(hybrid.flags(frontend), ["external", "dsr"], frontend)
    }
    for frontend in ["\(nodeAddress):30153/UDP", "0.0.0.0:30153/UDP", "192.0.2.90:53/UDP"] {
      XCTAssertEqual(hybrid.flags(frontend), ["external"], frontend)
    }
    XCTAssertEqual(hybrid.flags("10.96.9.10:80/TCP"), [])
    XCTAssertEqual(hybrid.flags("10.96.9.10:53/UDP"), [])

    // eTP=Local: the external frontends take only the backend on this node, flagged local;
    // the ClusterIP keeps both.
    for frontend in ["\(nodeAddress):30180/TCP", "0.0.0.0:30180/TCP", "192.0.2.90:80/TCP"] {
      XCTAssertEqual(hybrid.count(frontend), 1, frontend)
      XCTAssertEqual(hybrid.slotBackends(frontend), ["10.240.9.5 local"], frontend)
    }
    XCTAssertEqual(hybrid.count("10.96.9.10:80/TCP"), 2)
    XCTAssertEqual(
      hybrid.slotBackends("10.96.9.10:80/TCP").sorted(), ["10.240.9.5 local", "10.240.9.6 "])
    // No local backend: the external frontends exist with nothing to choose (refused).
    XCTAssertEqual(hybrid.count("\(nodeAddress):30181/TCP"), 0)
    XCTAssertEqual(hybrid.count("0.0.0.0:30181/TCP"), 0)
    XCTAssertEqual(hybrid.count("10.96.9.11:80/TCP"), 1)

    // jnc_node_cfg holds the ranges.
    XCTAssertEqual(hybrid.nodeConfig["nodePortMin"] as? Int, 30000)
    XCTAssertEqual(hybrid.nodeConfig["nodePortMax"] as? Int, 30999)
    XCTAssertEqual(hybrid.nodeConfig["snatPortMin"] as? Int, 40000)
    XCTAssertEqual(hybrid.nodeConfig["snatPortMax"] as? Int, 40999)

    // service list, as seed 002 shows cilium's: one line per node address and 0.0.0.0.
    let listed = try junctionctl(["service", "list"])
    XCTAssertEqual(listed.status, 0, listed.stderr)
    let lines = listed.stdout.split(separator: "\n").map(String.init)
    func line(_ frontend: String) -> String { lines.first { $0.contains(" \(frontend) ") } ?? "" }
    XCTAssertTrue(lines.first?.contains("Flags") ?? false, listed.stdout)
    for frontend in ["\(nodeAddress):30180/TCP", "0.0.0.0:30180/TCP"] {
      XCTAssertTrue(line(frontend).contains("NodePort"), listed.stdout)
      XCTAssertTrue(line(frontend).contains("DSR, Local"), listed.stdout)
      XCTAssertTrue(line(frontend).contains("10.240.9.5:8080/TCP (active) [local]"), listed.stdout)
    }
    XCTAssertTrue(line("0.0.0.0:30153/UDP").contains("SNAT, Local"), listed.stdout)
    XCTAssertTrue(line("192.0.2.90:80/TCP").contains("ExternalIPs"), listed.stdout)
    XCTAssertTrue(line("10.96.9.10:80/TCP").contains("ClusterIP"), listed.stdout)
    XCTAssertTrue(line("\(nodeAddress):30181/TCP").contains("(no backends)"), listed.stdout)

    // Another --lb-mode on the next start rewrites the flags of the stored services.
    agent.extraArguments = ["--devices", device, "--lb-mode", "snat"]
    try agent.restart()
    let snat = try maps()
    XCTAssertEqual(snat.flags("\(nodeAddress):30180/TCP"), ["external"])
    XCTAssertEqual(snat.flags("0.0.0.0:30180/TCP"), ["external"])
    XCTAssertEqual(snat.count("\(nodeAddress):30180/TCP"), 1)
    XCTAssertEqual(snat.nodeConfig["nodePortMin"] as? Int, 30000)
    XCTAssertEqual(snat.nodeConfig["nodePortMax"] as? Int, 32767)
    XCTAssertEqual(snat.nodeConfig["snatPortMin"] as? Int, 32768)
    XCTAssertEqual(snat.nodeConfig["snatPortMax"] as? Int, 65535)
  }

  func testAMissingDeviceIsAStartFailureNamingIt() throws {
    let node = try makeNode()
    let agent = try TestAgent(namespace: node, arguments: ["--devices", "nosuchdev"], start: false)
    self.agent = agent
    let result = try TestAgent.runOnce(agent.arguments, namespace: node)
    XCTAssertEqual(result.status, 1, result.stderr)
    let lines = result.stderr.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.count, 1, result.stderr)
    XCTAssertEqual(
      lines.first, "junction-agent: device nosuchdev (--devices) does not exist", result.stderr)
    // Nothing pinned: the devices are read before the datapath is loaded (a fresh bpffs
    // holds only the kernel's own progs.debug / maps.debug).
    let pins = (try? FileManager.default.contentsOfDirectory(atPath: agent.bpfFS)) ?? []
    XCTAssertEqual(pins.filter { !$0.hasSuffix(".debug") }, [])
  }
}
