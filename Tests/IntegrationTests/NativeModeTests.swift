import Foundation
import XCTest

/// Native mode end to end, through Debian's libcni (the cnitool-compatible driver) and
/// host-local, in fresh network namespaces on the real kernel.
final class NativeModeTests: XCTestCase {
  private var nodes: [TestNode] = []

  override func tearDown() {
    for node in nodes { node.tearDown() }
    nodes = []
    super.tearDown()
  }

  private func makeNode(
    nodeIP: String = "192.168.240.1", podSubnet: String = "10.240.1.0/24", ipam: [String: Any] = [:]
  ) throws -> TestNode {
    let node = try TestNode(nodeIP: nodeIP, podSubnet: podSubnet, ipam: ipam)
    nodes.append(node)
    return node
  }

  func testTwoPodsReachEachOtherAndTheHostOverICMPAndTCP() throws {
    let node = try makeNode()
    let podA = try node.makePodNamespace()
    let podB = try node.makePodNamespace()
    let ipA = try node.addPod(podA)
    let ipB = try node.addPod(podB)
    XCTAssertNotEqual(ipA, ipB)

    XCTAssertTrue(try node.ping(from: podA, ipB), "pod A cannot ping pod B")
    XCTAssertTrue(try node.ping(from: podB, ipA), "pod B cannot ping pod A")
    XCTAssertTrue(try node.ping(from: podA, node.nodeIP), "pod cannot ping the node")
    XCTAssertTrue(
      try node.exec(in: node.name, ["ping", "-c", "1", "-W", "2", ipA]).status == 0,
      "node cannot ping the pod")

    // TCP: a one-shot server in pod B answers pod A with its own name.
    let server = try startTCPServer(in: podB, node: node, reply: "hello-from-\(podB)")
    defer { server.terminate() }
    let reply = try node.exec(in: podA, ["python3", "-c", TCPScripts.client, ipB])
    XCTAssertEqual(
      reply.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "hello-from-\(podB)",
      reply.stderr)

    // The pod address is a host address (/32), whatever prefix IPAM gave.
    let link = try node.exec(in: podA, ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    XCTAssertTrue(link.contains("\(ipA)/32"), link)
  }

  func testResultReportsBothInterfacesAndTheDefaultRoute() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    let json = try XCTUnwrap(result.json)
    XCTAssertEqual(json["cniVersion"] as? String, "1.0.0")
    let interfaces = try XCTUnwrap(json["interfaces"] as? [[String: Any]])
    XCTAssertEqual(interfaces.count, 2)
    let hostName = try XCTUnwrap(interfaces[0]["name"] as? String)
    XCTAssertTrue(hostName.hasPrefix("jnc") && hostName.utf8.count == 15, hostName)
    XCTAssertNil(interfaces[0]["sandbox"])
    XCTAssertEqual(interfaces[1]["name"] as? String, "eth0")
    XCTAssertEqual(interfaces[1]["sandbox"] as? String, "/var/run/netns/\(pod)")
    let podMAC = try XCTUnwrap(interfaces[1]["mac"] as? String)
    let shown = try node.exec(in: pod, ["cat", "/sys/class/net/eth0/address"])
    XCTAssertEqual(shown.stdout.trimmingCharacters(in: .whitespacesAndNewlines), podMAC)
    let routes = try XCTUnwrap(json["routes"] as? [[String: Any]])
    XCTAssertEqual(routes.first?["dst"] as? String, "0.0.0.0/0")
    XCTAssertEqual(routes.first?["gw"] as? String, "10.240.1.1")
    let ips = try XCTUnwrap(json["ips"] as? [[String: Any]])
    XCTAssertEqual(ips.first?["interface"] as? Int, 1)
    XCTAssertNil(ips.first?["version"], "1.0.0 results carry no per-IP version")
    // The stable name: a retried attachment lands on the same host interface.
    XCTAssertTrue(try node.hostLinks().contains(hostName))
  }

  func testCheckPassesThenFailsWhenTheDefaultRouteIsRemoved() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    try node.addPod(pod)
    let healthy = try node.driver("check", pod: pod)
    XCTAssertEqual(healthy.status, 0, healthy.stdout + healthy.stderr)

    try Shell.must(["ip", "-n", pod, "route", "del", "default"])
    let broken = try node.driver("check", pod: pod)
    XCTAssertEqual(broken.status, 1)
    XCTAssertEqual(broken.errorCode, 105, broken.stdout)
    XCTAssertTrue((broken.json?["details"] as? String ?? "").contains("0.0.0.0/0"), broken.stdout)
  }

  func testDeleteTwiceSucceedsAndReleasesEverything() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    try node.addPod(pod)
    XCTAssertEqual(node.reservedAddresses().count, 1)
    XCTAssertEqual(try node.hostLinks().count, 1)

    for attempt in 1...2 {
      let result = try node.driver("del", pod: pod)
      XCTAssertEqual(result.status, 0, "DEL \(attempt): \(result.stdout) \(result.stderr)")
    }
    try node.assertNothingLeftBehind(pod: pod)
  }

  func testDeleteAfterTheNamespaceIsGoneSucceedsAndReleasesTheAddress() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    try node.addPod(pod)
    try node.deletePodNamespace(pod)
    let result = try node.driver("del", pod: pod)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    try node.assertNothingLeftBehind(pod: nil)
  }

  func testDeleteWithoutPrevResultStillReleasesTheAddress() throws {
    // libcni sends no prevResult after a failed ADD; a raw DEL without it must clean up.
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    try node.addPod(pod)
    let result = try node.rawCall(
      command: "DEL", stdin: TestNode.json(node.pluginConfig()), containerID: node.containerID(pod),
      netns: "/var/run/netns/\(pod)")
    XCTAssertEqual(result.status, 0, result.stdout)
    try node.assertNothingLeftBehind(pod: nil)
  }

  func testAddFailsWhenTheInterfaceAlreadyExistsAndLeavesNothing() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    try Shell.must([
      "ip", "-n", pod, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer",
    ])
    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 1)
    XCTAssertEqual(result.errorCode, 101, result.stdout)
    try node.assertNothingLeftBehind(pod: nil)
  }

  func testAFailureAfterIPAMReleasesTheAddressAndRemovesTheVeth() throws {
    // IPAM hands out a route through a gateway the pod cannot reach on-link: the kernel
    // refuses it after the address is allocated and the veth exists, so everything ADD
    // did so far must be undone.
    let node = try makeNode(ipam: ["routes": [["dst": "10.99.0.0/16", "gw": "10.250.0.1"]]])
    let pod = try node.makePodNamespace()
    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 1, result.stdout)
    XCTAssertEqual(result.errorCode, 103, result.stdout)
    XCTAssertTrue((result.json?["msg"] as? String ?? "").contains("10.99.0.0/16"), result.stdout)
    try node.assertNothingLeftBehind(pod: pod)
  }

  func testTwentyConcurrentAddsGetDistinctReachableAddressesAndDeleteCleanly() throws {
    let node = try makeNode()
    let pods = try (0..<20).map { _ in try node.makePodNamespace() }
    var results = [CommandOutput?](repeating: nil, count: pods.count)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: pods.count) { index in
      let outcome = try? node.driver("add", pod: pods[index])
      lock.lock()
      results[index] = outcome
      lock.unlock()
    }
    var addresses: [String] = []
    for (pod, result) in zip(pods, results) {
      let result = try XCTUnwrap(result)
      XCTAssertEqual(result.status, 0, "\(pod): \(result.stdout) \(result.stderr)")
      let ip = ((result.json?["ips"] as? [[String: Any]])?.first?["address"] as? String)?
        .split(separator: "/").first.map(String.init)
      addresses.append(try XCTUnwrap(ip))
    }
    XCTAssertEqual(Set(addresses).count, 20, "addresses are not distinct: \(addresses)")
    for (pod, address) in zip(pods, addresses) {
      XCTAssertTrue(
        try node.exec(in: node.name, ["ping", "-c", "1", "-W", "2", address]).status == 0,
        "\(pod) at \(address) unreachable")
    }
    XCTAssertTrue(try node.ping(from: pods[0], addresses[19]))

    DispatchQueue.concurrentPerform(iterations: pods.count) { index in
      let outcome = try? node.driver("del", pod: pods[index])
      XCTAssertEqual(outcome?.status, 0, outcome?.stdout ?? "")
    }
    try node.assertNothingLeftBehind(pod: nil)
  }

  func testExhaustedIPAMGivesAClearErrorAndLeavesNothing() throws {
    let node = try makeNode(ipam: [
      "ranges": [
        [["subnet": "10.240.9.0/24", "rangeStart": "10.240.9.10", "rangeEnd": "10.240.9.11"]]
      ]
    ])
    let first = try node.makePodNamespace()
    let second = try node.makePodNamespace()
    let third = try node.makePodNamespace()
    try node.addPod(first)
    try node.addPod(second)
    let linksBefore = try node.hostLinks()

    let result = try node.driver("add", pod: third)
    XCTAssertEqual(result.status, 1)
    let message = (result.json?["msg"] as? String ?? "")
    XCTAssertTrue(
      message.contains("host-local"), "the error should name the IPAM plugin: \(result.stdout)")
    XCTAssertTrue(message.lowercased().contains("no ip addresses available"), result.stdout)
    XCTAssertEqual(try node.hostLinks(), linksBefore, "the failed ADD left a link behind")
    XCTAssertEqual(node.reservedAddresses(), ["10.240.9.10", "10.240.9.11"])
    XCTAssertEqual(try node.exec(in: third, ["ip", "-o", "link", "show", "eth0"]).status, 1)
  }

  func testPodOnAnotherNodeIsReachableOnceItsPodCIDRIsRouted() throws {
    let nodeA = try makeNode(nodeIP: "192.168.241.1", podSubnet: "10.241.1.0/24")
    let nodeB = try makeNode(nodeIP: "192.168.241.2", podSubnet: "10.241.2.0/24")
    // The underlay: one veth between the two nodes, no tunnel.
    let linkA = TestNode.uniqueName("u")
    try Shell.must([
      "ip", "-n", nodeA.name, "link", "add", linkA, "type", "veth", "peer", "name", "underlay",
      "netns", nodeB.name,
    ])
    try Shell.must(["ip", "-n", nodeA.name, "addr", "add", "172.31.99.1/24", "dev", linkA])
    try Shell.must(["ip", "-n", nodeB.name, "addr", "add", "172.31.99.2/24", "dev", "underlay"])
    try Shell.must(["ip", "-n", nodeA.name, "link", "set", linkA, "up"])
    try Shell.must(["ip", "-n", nodeB.name, "link", "set", "underlay", "up"])

    let podA = try nodeA.makePodNamespace()
    let podB = try nodeB.makePodNamespace()
    let ipA = try nodeA.addPod(podA)
    let ipB = try nodeB.addPod(podB)
    XCTAssertFalse(try nodeA.ping(from: podA, ipB), "reachable before the pod CIDR was routed?")

    try Shell.must(["ip", "-n", nodeA.name, "route", "add", nodeB.podSubnet, "via", "172.31.99.2"])
    try Shell.must(["ip", "-n", nodeB.name, "route", "add", nodeA.podSubnet, "via", "172.31.99.1"])
    XCTAssertTrue(try nodeA.ping(from: podA, ipB), "pod on node A cannot reach pod on node B")
    XCTAssertTrue(try nodeB.ping(from: podB, ipA), "pod on node B cannot reach pod on node A")
  }

  func testGarbageCollectionRemovesAttachmentsNotListedAsValid() throws {
    let node = try makeNode()
    let keep = try node.makePodNamespace()
    let stale = try node.makePodNamespace()
    let keepIP = try node.addPod(keep)
    try node.addPod(stale)
    XCTAssertEqual(try node.hostLinks().count, 2)

    let valid = "[{\"containerID\":\"\(node.containerID(keep))\",\"ifname\":\"eth0\"}]"
    let result = try node.driver(
      "gc", pod: nil, cniVersion110: true, extraEnvironment: ["CNI_VALID_ATTACHMENTS": valid])
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    XCTAssertEqual(try node.hostLinks().count, 1, "the stale attachment's veth is still there")
    XCTAssertEqual(
      node.reservedAddresses(), [keepIP], "the stale attachment's address is still held")
    XCTAssertEqual(try node.exec(in: stale, ["ip", "-o", "link", "show", "eth0"]).status, 1)
    XCTAssertTrue(try node.ping(from: keep, node.nodeIP), "GC broke a valid attachment")
  }

  func testGarbageCollectionReadsTheSpecKeyToo() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    try node.addPod(pod)
    var config = node.pluginConfig(cniVersion: "1.1.0")
    config["cni.dev/attachments"] = [["containerID": node.containerID(pod), "ifname": "eth0"]]
    let kept = try node.rawCall(
      command: "GC", stdin: TestNode.json(config), containerID: nil, ifname: nil)
    XCTAssertEqual(kept.status, 0, kept.stdout)
    XCTAssertEqual(try node.hostLinks().count, 1)

    config["cni.dev/attachments"] = [[String: String]]()
    let removed = try node.rawCall(
      command: "GC", stdin: TestNode.json(config), containerID: nil, ifname: nil)
    XCTAssertEqual(removed.status, 0, removed.stdout)
    try node.assertNothingLeftBehind(pod: nil)
  }

  func testStatusIsReadyWithIPAMAndCode50WithoutIt() throws {
    let node = try makeNode()
    let ready = try node.driver("status", pod: nil, cniVersion110: true)
    XCTAssertEqual(ready.status, 0, ready.stdout + ready.stderr)

    var config = node.pluginConfig(cniVersion: "1.1.0", ipam: ["type": "no-such-ipam"])
    config["cniVersion"] = "1.1.0"
    let missing = try node.rawCall(
      command: "STATUS", stdin: TestNode.json(config), containerID: nil, ifname: nil)
    XCTAssertEqual(missing.status, 1)
    XCTAssertEqual(missing.errorCode, 50, missing.stdout)
  }

  func testOlderResultVersionsCarryTheIPVersionField() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    let result = try node.rawCall(
      command: "ADD", stdin: TestNode.json(node.pluginConfig(cniVersion: "0.3.1")),
      containerID: "v031", netns: "/var/run/netns/\(pod)")
    XCTAssertEqual(result.status, 0, result.stdout)
    XCTAssertEqual(result.json?["cniVersion"] as? String, "0.3.1")
    let ips = try XCTUnwrap(result.json?["ips"] as? [[String: Any]])
    XCTAssertEqual(ips.first?["version"] as? String, "4")
    let del = try node.rawCall(
      command: "DEL", stdin: TestNode.json(node.pluginConfig(cniVersion: "0.3.1")),
      containerID: "v031", netns: "/var/run/netns/\(pod)")
    XCTAssertEqual(del.status, 0, del.stdout)
    XCTAssertEqual(node.reservedAddresses(), [])
  }

  func testCNI110RequestsReachAnOlderIPAMPlugin() throws {
    // host-local 1.1.x stops at 1.0.0: Junction negotiates down for its delegate.
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    let config = TestNode.json(node.pluginConfig(cniVersion: "1.1.0"))
    let add = try node.rawCall(
      command: "ADD", stdin: config, containerID: "v110", netns: "/var/run/netns/\(pod)")
    XCTAssertEqual(add.status, 0, add.stdout)
    XCTAssertEqual(add.json?["cniVersion"] as? String, "1.1.0")
    let interfaces = try XCTUnwrap(add.json?["interfaces"] as? [[String: Any]])
    XCTAssertEqual(interfaces[1]["mtu"] as? Int, 1500, "1.1.0 results carry the interface MTU")
    let del = try node.rawCall(
      command: "DEL", stdin: config, containerID: "v110", netns: "/var/run/netns/\(pod)")
    XCTAssertEqual(del.status, 0, del.stdout)
    XCTAssertEqual(node.reservedAddresses(), [])
  }

  // MARK: - TCP helpers

  private func startTCPServer(in pod: String, node: TestNode, reply: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ip", "netns", "exec", pod, "python3", "-c", TCPScripts.server, reply]
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    // Wait until it listens, bounded.
    for _ in 0..<50 {
      if try node.exec(in: pod, ["sh", "-c", "grep -q ':1F90 ' /proc/net/tcp"]).status == 0 {
        break
      }
      usleep(100_000)
    }
    return process
  }
}

enum TCPScripts {
  static let server = """
    import socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(1); s.settimeout(20)
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
    """
  static let client = """
    import socket, sys
    c = socket.create_connection((sys.argv[1], 8080), timeout=5)
    print(c.recv(100).decode())
    """
}
