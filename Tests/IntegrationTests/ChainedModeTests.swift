import Foundation
import XCTest

/// Chained mode end to end: Debian's reference `bridge` and `ptp` plugins make the pods'
/// interfaces, Junction runs after them in the same conflist through libcni (the driver),
/// and the agent's service datapath works on the veths they made.
final class ChainedModeTests: XCTestCase {
  private var nodes: [TestNode] = []
  private var traffic: [PodTraffic] = []

  override func tearDown() {
    for backends in traffic { backends.tearDown() }
    traffic = []
    for node in nodes { node.tearDown() }
    nodes = []
    super.tearDown()
  }

  private static let bridgeName = "jtbr0"

  /// A node whose conflist is bridge (gateway on the bridge, default route in the pod) +
  /// junction chained.
  private func bridgeNode(podSubnet: String) throws -> TestNode {
    let node = try TestNode(podSubnet: podSubnet) { ipam in
      [
        "type": "bridge", "bridge": Self.bridgeName, "isGateway": true,
        "isDefaultGateway": true, "ipMasq": false, "ipam": ipam,
      ]
    }
    nodes.append(node)
    return node
  }

  /// A node whose conflist is ptp (a /32 route per pod on the node, a default route in the
  /// pod) + junction chained; its agent started with `agentArguments`.
  private func ptpNode(podSubnet: String, agentArguments: [String] = []) throws -> TestNode {
    let node = try TestNode(podSubnet: podSubnet, agentArguments: agentArguments) { ipam in
      var withRoute = ipam
      withRoute["routes"] = [["dst": "0.0.0.0/0"]]
      return ["type": "ptp", "ipMasq": false, "ipam": withRoute]
    }
    nodes.append(node)
    return node
  }

  private func junctionctl(_ node: TestNode, _ arguments: [String], stdin: String = "") throws
    -> CommandOutput
  {
    try node.junctionctl(arguments, stdin: stdin)
  }

  /// The tc filters on both directions of `link` in the node, and the programs on its tcx
  /// hooks (a "tcx: NAME ..." line per direction that has any): empty when none.
  private func filters(_ node: TestNode, on link: String) throws -> String {
    let listing = try HookPrograms.listing(in: node.name, link: link)
    return listing.ingress + listing.egress
  }

  private func clsactQdiscs(_ node: TestNode) throws -> [String] {
    try Shell.must(["tc", "-n", node.name, "qdisc", "show"]).split(separator: "\n")
      .map(String.init).filter { $0.contains("clsact") }
  }

  private func agentEndpoints(_ node: TestNode) throws -> [String: [String: Any]] {
    var byID: [String: [String: Any]] = [:]
    for endpoint in try XCTUnwrap(node.agent).endpoints() {
      if let id = endpoint["id"] as? String { byID[id] = endpoint["spec"] as? [String: Any] }
    }
    return byID
  }

  private func endpointID(_ node: TestNode, _ pod: String) -> String {
    "\(node.containerID(pod)):eth0"
  }

  /// ADD through the list; the pod's address and the host-side veth the previous plugin
  /// reported, after checking Junction printed the previous plugin's result unchanged and
  /// attached and registered exactly that veth.
  private func addPod(
    _ node: TestNode, _ pod: String, hostInterfaceAt hostIndex: Int, interfaceCount: Int,
    file: StaticString = #filePath, line: UInt = #line
  ) throws -> (address: String, hostVeth: String) {
    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr, file: file, line: line)
    let json = try XCTUnwrap(result.json, result.stdout, file: file, line: line)
    let interfaces = try XCTUnwrap(json["interfaces"] as? [[String: Any]], file: file, line: line)
    XCTAssertEqual(interfaces.count, interfaceCount, "\(interfaces)", file: file, line: line)
    let hostVeth = try XCTUnwrap(interfaces[hostIndex]["name"] as? String, file: file, line: line)
    XCTAssertFalse(hostVeth.hasPrefix("jnc"), "Junction made its own link", file: file, line: line)
    XCTAssertEqual(interfaces.last?["name"] as? String, "eth0", file: file, line: line)
    XCTAssertEqual(
      interfaces.last?["sandbox"] as? String, "/var/run/netns/\(pod)", file: file, line: line)
    let ips = try XCTUnwrap(json["ips"] as? [[String: Any]], file: file, line: line)
    XCTAssertEqual(ips.first?["interface"] as? Int, interfaceCount - 1, file: file, line: line)
    let cidr = try XCTUnwrap(ips.first?["address"] as? String, file: file, line: line)
    // The previous plugin's prefix, not the /32 Junction registers: prevResult unchanged.
    XCTAssertTrue(cidr.hasSuffix("/24"), cidr, file: file, line: line)
    let address = String(cidr.split(separator: "/")[0])

    let spec = try XCTUnwrap(
      try agentEndpoints(node)[endpointID(node, pod)], "endpoint not registered", file: file,
      line: line)
    XCTAssertEqual(spec["hostInterface"] as? String, hostVeth, file: file, line: line)
    XCTAssertEqual(spec["ips"] as? [String], ["\(address)/32"], file: file, line: line)
    XCTAssertEqual(
      (spec["netnsCookie"] as? NSNumber)?.uint64Value, try node.netnsCookie(of: pod),
      "the pod's netns cookie", file: file, line: line)
    let attached = try filters(node, on: hostVeth)
    XCTAssertTrue(attached.contains("from_endpoint"), attached, file: file, line: line)
    XCTAssertTrue(attached.contains("to_endpoint"), attached, file: file, line: line)
    return (address, hostVeth)
  }

  /// A client pod and two backend pods of one node reach each other through a ClusterIP,
  /// then CHECK, DEL (twice), and DEL without prevResult, leaving nothing of Junction's.
  /// `tcx`: the agent runs with `--tc-hook tcx`, so the programs must be on the veths' tcx
  /// hooks and no clsact qdisc anywhere.
  private func exercise(
    _ node: TestNode, clusterIP: String, hostInterfaceAt hostIndex: Int, interfaceCount: Int,
    tcx: Bool = false
  ) throws {
    let backends = PodTraffic(node: node)
    traffic.append(backends)
    let client = try node.makePodNamespace()
    let (_, clientVeth) = try addPod(
      node, client, hostInterfaceAt: hostIndex, interfaceCount: interfaceCount)
    var addresses: [String] = []
    var backendPods: [(pod: String, veth: String)] = []
    for name in ["r2d2", "c3po"] {
      let pod = try node.makePodNamespace()
      let (address, veth) = try addPod(
        node, pod, hostInterfaceAt: hostIndex, interfaceCount: interfaceCount)
      addresses.append(address)
      backendPods.append((pod, veth))
      try backends.startBackend(name, in: pod)
    }
    let applied = try junctionctl(
      node, ["apply", "-f", "-"],
      stdin: ServiceManifest.clusterIP(name: "droids", clusterIP: clusterIP, backends: addresses))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    if tcx {
      XCTAssertEqual(try clsactQdiscs(node), [], "tcx mode added a qdisc to ptp's links")
      let attached = try filters(node, on: clientVeth)
      XCTAssertTrue(attached.contains("tcx: from_endpoint\n"), attached)
      XCTAssertTrue(attached.contains("tcx: to_endpoint\n"), attached)
    }

    let answers = try backends.connect(from: client, to: clusterIP, port: 80, count: 30)
    XCTAssertEqual(answers.count, 30)
    XCTAssertEqual(Set(answers), ["r2d2", "c3po"], "not every backend answered: \(answers)")

    let check = try node.driver("check", pod: client)
    XCTAssertEqual(check.status, 0, check.stdout + check.stderr)

    // DEL runs the list in reverse: Junction detaches and deregisters, the previous plugin
    // deletes the veth. A second DEL finds nothing and succeeds.
    for _ in 0..<2 {
      let del = try node.driver("del", pod: client)
      XCTAssertEqual(del.status, 0, del.stdout + del.stderr)
    }
    XCTAssertNil(try agentEndpoints(node)[endpointID(node, client)])
    XCTAssertFalse(
      try node.hostLinks().contains(clientVeth), "the previous plugin's DEL did not run")

    // DEL without prevResult (as after a failed ADD or a lost cache), Junction alone: the
    // programs come off the veth, which stays (it is the previous plugin's), and the
    // endpoint is gone.
    let (pod, veth) = backendPods[0]
    let bare = try node.rawCall(
      command: "DEL", stdin: TestNode.json(node.pluginConfig()),
      containerID: node.containerID(pod), netns: "/var/run/netns/\(pod)")
    XCTAssertEqual(bare.status, 0, bare.stdout + bare.stderr)
    XCTAssertNil(try agentEndpoints(node)[endpointID(node, pod)])
    XCTAssertTrue(try node.hostLinks().contains(veth), "chained DEL deleted another plugin's link")
    XCTAssertEqual(try filters(node, on: veth), "", "the programs are still attached")
    XCTAssertFalse(
      try clsactQdiscs(node).contains { $0.contains("dev \(veth) ") },
      "the emptied clsact qdisc was left on \(veth)")

    for (pod, _) in backendPods {
      let del = try node.driver("del", pod: pod)
      XCTAssertEqual(del.status, 0, del.stdout + del.stderr)
    }
    XCTAssertEqual(try agentEndpoints(node).count, 0)
    XCTAssertEqual(node.reservedAddresses(), [], "an address is still held")
    XCTAssertEqual(try clsactQdiscs(node), [])
  }

  // MARK: - bridge

  func testChainedAfterBridgePodsOnOneBridgeReachAClusterIPOfThatBridge() throws {
    let node = try bridgeNode(podSubnet: "10.240.20.0/24")
    // bridge reports [bridge, host veth, eth0].
    try exercise(node, clusterIP: "10.96.0.20", hostInterfaceAt: 1, interfaceCount: 3)
    XCTAssertEqual(try node.hostLinks(), [Self.bridgeName], "only the bridge may remain")
  }

  // MARK: - ptp

  /// On the clsact hook, named (the default), as the tcx test below names tcx.
  func testChainedAfterPtpPodsReachAClusterIP() throws {
    let node = try ptpNode(podSubnet: "10.240.21.0/24", agentArguments: ["--tc-hook", "clsact"])
    // ptp reports [host veth, eth0].
    try exercise(node, clusterIP: "10.96.0.21", hostInterfaceAt: 0, interfaceCount: 2)
    XCTAssertEqual(try node.hostLinks(), [])
  }

  /// The same with the agent on `--tc-hook tcx`: the programs go on the veths' tcx hooks (no
  /// qdisc is ever added to the other plugin's links), and DEL takes them off.
  func testChainedAfterPtpOnTheTCXHook() throws {
    let node = try ptpNode(podSubnet: "10.240.44.0/24", agentArguments: ["--tc-hook", "tcx"])
    try exercise(node, clusterIP: "10.96.0.44", hostInterfaceAt: 0, interfaceCount: 2, tcx: true)
    XCTAssertEqual(try node.hostLinks(), [])
  }

  /// Chained after another CNI, a network policy agent's program can sit on the same veth
  /// after Junction's. Junction passes every packet on to it (bpf/lib/verdict.h), service
  /// packets translated: a policy refusing TCP to the backends' port (8080) on the client's
  /// veth refuses the client's connections to the ClusterIP (port 80) too, and once it is
  /// gone they go through again. (With TC_ACT_OK, Junction's verdict ended the hook and the
  /// policy never saw a packet.)
  func testAPolicyProgramAfterJunctionsSeesTheServiceTrafficTranslated() throws {
    let node = try ptpNode(podSubnet: "10.240.45.0/24")
    let backends = PodTraffic(node: node)
    traffic.append(backends)
    let client = try node.makePodNamespace()
    let (_, clientVeth) = try addPod(node, client, hostInterfaceAt: 0, interfaceCount: 2)
    let backend = try node.makePodNamespace()
    let (address, _) = try addPod(node, backend, hostInterfaceAt: 0, interfaceCount: 2)
    try backends.startBackend("r2d2", in: backend)
    let clusterIP = "10.96.0.45"
    let applied = try junctionctl(
      node, ["apply", "-f", "-"],
      stdin: ServiceManifest.clusterIP(name: "droids", clusterIP: clusterIP, backends: [address]))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    func answers() throws -> [String] {
      try backends.connect(from: client, to: clusterIP, port: 80, count: 2)
    }
    XCTAssertEqual(try answers().map { $0.hasPrefix("r2d2") }, [true, true])

    let policy = try PolicyProgram(refusingTCPPort: 8080, in: node.name, link: clientVeth)
    defer { policy.remove() }
    let attached = try filters(node, on: clientVeth)
    XCTAssertTrue(attached.contains("from_endpoint"), attached)
    XCTAssertTrue(attached.contains("refuse_port"), attached)
    XCTAssertEqual(try answers(), ["timeout", "timeout"], "the policy did not see the packets")

    policy.remove()
    XCTAssertEqual(try answers().map { $0.hasPrefix("r2d2") }, [true, true])
    for pod in [client, backend] {
      let del = try node.driver("del", pod: pod)
      XCTAssertEqual(del.status, 0, del.stdout + del.stderr)
    }
    XCTAssertEqual(try node.hostLinks(), [])
  }

  // MARK: - The shipped examples

  /// cni-conf/'s bridge and ptp examples as shipped, but for what a user must set (the
  /// subnet) and what this node keeps elsewhere (IPAM data dir, agent socket, log file):
  /// ADD, CHECK and DEL through libcni, nothing left behind.
  func testTheExampleBridgeAndPtpConflistsWorkAsShipped() throws {
    for (file, subnet) in [
      ("10-bridge-junction.conflist", "10.240.27.0/24"),
      ("10-ptp-junction.conflist", "10.240.28.0/24"),
    ] {
      let node = try ptpNode(podSubnet: subnet)
      let url = Artifacts.repoRoot.appendingPathComponent("cni-conf/\(file)")
      var list = try XCTUnwrap(
        try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any], file)
      var plugins = try XCTUnwrap(list["plugins"] as? [[String: Any]], file)
      for index in plugins.indices {
        if var ipam = plugins[index]["ipam"] as? [String: Any] {
          ipam["ranges"] = [[["subnet": subnet]]]
          ipam["dataDir"] = node.ipamDir.path
          plugins[index]["ipam"] = ipam
        }
        if plugins[index]["type"] as? String == "junction" {
          plugins[index]["agentSocket"] = node.agentSocket
          plugins[index]["logFile"] = node.directory.appendingPathComponent("junction.log").path
        }
      }
      list["plugins"] = plugins
      list["name"] = node.network
      try node.replaceConflist(list)

      let pod = try node.makePodNamespace()
      let add = try node.driver("add", pod: pod)
      XCTAssertEqual(add.status, 0, "\(file): \(add.stdout) \(add.stderr)")
      XCTAssertEqual(try agentEndpoints(node).count, 1, file)
      let check = try node.driver("check", pod: pod)
      XCTAssertEqual(check.status, 0, "\(file): \(check.stdout) \(check.stderr)")
      let del = try node.driver("del", pod: pod)
      XCTAssertEqual(del.status, 0, "\(file): \(del.stdout) \(del.stderr)")
      XCTAssertEqual(try agentEndpoints(node).count, 0, file)
      XCTAssertEqual(node.reservedAddresses(), [], file)
      XCTAssertEqual(try clsactQdiscs(node), [], file)
      XCTAssertEqual(
        try node.hostLinks().filter { !$0.hasPrefix("cni0") }, [], "\(file) left a link behind")
    }
  }

  // MARK: - CHECK, GC, STATUS

  func testCheckReportsProgramsRemovedBehindJunctionsBack() throws {
    let node = try bridgeNode(podSubnet: "10.240.22.0/24")
    let pod = try node.makePodNamespace()
    let (_, veth) = try addPod(node, pod, hostInterfaceAt: 1, interfaceCount: 3)
    try HookPrograms.remove(in: node.name, link: veth, direction: "ingress")
    let check = try node.driver("check", pod: pod)
    XCTAssertEqual(check.status, 1)
    XCTAssertTrue(check.stdout.contains("105"), check.stdout)
    XCTAssertTrue(check.stdout.contains("from_endpoint is not attached"), check.stdout)
    XCTAssertEqual(try node.driver("del", pod: pod).status, 0)
  }

  func testGarbageCollectionDetachesAndDeregistersOnlyTheStaleAttachment() throws {
    let node = try bridgeNode(podSubnet: "10.240.23.0/24")
    let keep = try node.makePodNamespace()
    let stale = try node.makePodNamespace()
    let (_, keepVeth) = try addPod(node, keep, hostInterfaceAt: 1, interfaceCount: 3)
    let (_, staleVeth) = try addPod(node, stale, hostInterfaceAt: 1, interfaceCount: 3)

    let valid = "[{\"containerID\":\"\(node.containerID(keep))\",\"ifname\":\"eth0\"}]"
    let result = try node.driver(
      "gc", pod: nil, cniVersion110: true, extraEnvironment: ["CNI_VALID_ATTACHMENTS": valid])
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)

    XCTAssertEqual(Array(try agentEndpoints(node).keys), [endpointID(node, keep)])
    XCTAssertEqual(try filters(node, on: staleVeth), "", "the stale veth still runs the programs")
    XCTAssertTrue(try filters(node, on: keepVeth).contains("from_endpoint"))
    XCTAssertTrue(try node.hostLinks().contains(staleVeth), "GC deleted another plugin's link")
    let check = try node.driver("check", pod: keep)
    XCTAssertEqual(check.status, 0, check.stdout + check.stderr)

    for pod in [keep, stale] { XCTAssertEqual(try node.driver("del", pod: pod).status, 0) }
    XCTAssertEqual(try node.hostLinks(), [Self.bridgeName])
    XCTAssertEqual(node.reservedAddresses(), [])
  }

  func testStatusIsReadyWhileTheAgentIsAndCode50WhenItIsNot() throws {
    let node = try ptpNode(podSubnet: "10.240.24.0/24")
    let ready = try node.driver("status", pod: nil, cniVersion110: true)
    XCTAssertEqual(ready.status, 0, ready.stdout + ready.stderr)
    _ = try XCTUnwrap(node.agent).stop()
    let down = try node.driver("status", pod: nil, cniVersion110: true)
    XCTAssertEqual(down.status, 1)
    XCTAssertTrue(
      down.stdout.contains("50") || down.stderr.contains("50"), down.stdout + down.stderr)
  }

  // MARK: - Refusals

  func testAMacvlanInterfaceIsRefusedAndNothingIsAttachedOrRegistered() throws {
    let master = "jtmaster0"
    let node = try TestNode(podSubnet: "10.240.25.0/24") { ipam in
      ["type": "macvlan", "master": master, "mode": "bridge", "ipam": ipam]
    }
    nodes.append(node)
    try Shell.must(["ip", "-n", node.name, "link", "add", master, "type", "bridge"])
    try Shell.must(["ip", "-n", node.name, "link", "set", master, "up"])
    let pod = try node.makePodNamespace()

    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
    let message = result.stdout + result.stderr
    XCTAssertTrue(message.contains("108"), message)
    XCTAssertTrue(message.contains("macvlan interface, not a veth"), message)
    XCTAssertTrue(message.contains("no peer on the node"), message)
    XCTAssertEqual(try agentEndpoints(node).count, 0, "a refused interface was registered")
    XCTAssertEqual(try clsactQdiscs(node), [], "a refused interface got a qdisc")
    XCTAssertEqual(try filters(node, on: master), "")

    // The runtime's DEL after the failed ADD (no cached result, so no prevResult).
    let del = try node.driver("del", pod: pod)
    XCTAssertEqual(del.status, 0, del.stdout + del.stderr)
    XCTAssertEqual(try node.hostLinks(), [master])
    XCTAssertEqual(node.reservedAddresses(), [])
  }

  func testChainedADDWithoutPrevResultIsAConfigurationError() throws {
    let node = try ptpNode(podSubnet: "10.240.26.0/24")
    let pod = try node.makePodNamespace()
    let result = try node.rawCall(
      command: "ADD", stdin: TestNode.json(node.pluginConfig()), containerID: "lone",
      netns: "/var/run/netns/\(pod)")
    XCTAssertEqual(result.status, 1)
    XCTAssertEqual(result.errorCode, 7, result.stdout)
    XCTAssertTrue(result.stdout.contains("prevResult"), result.stdout)
    XCTAssertTrue(result.stdout.contains("chained mode"), result.stdout)
    XCTAssertEqual(try agentEndpoints(node).count, 0)
    XCTAssertEqual(try clsactQdiscs(node), [])
  }
}
