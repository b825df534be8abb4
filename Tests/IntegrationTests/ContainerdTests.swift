import Foundation
import XCTest

/// Junction chained after the reference `bridge` plugin under a real containerd (Debian's,
/// with runc): containers started with `ctr run --cni` reach a ClusterIP whose backends
/// are other containers on the same bridge, and killing and removing them runs CNI DEL,
/// which leaves no endpoint, qdisc, pin, veth or address behind.
///
/// The bridge, the host veths and the agent live in a TestNode's network namespace (the
/// "host" of these containers); containerd, its image and the CNI config live in a
/// ContainerdLab's temp dir.
final class ContainerdTests: XCTestCase {
  private var node: TestNode!
  private var lab: ContainerdLab!
  private let network = "jt-containerd"
  private let subnet = "10.240.77.0/24"
  private let clusterIP = "10.96.77.10"
  private let backends = ["r2d2", "c3po", "bb8"]

  override func setUpWithError() throws {
    try ContainerdLab.requirePrerequisites()
    node = try TestNode(podSubnet: subnet)
    lab = try ContainerdLab(netns: node.name)
    try lab.installPlugins([
      "bridge": Artifacts.referencePlugins + "/bridge",
      "host-local": Artifacts.referencePlugins + "/host-local",
      "junction": Artifacts.junction,
    ])
  }

  /// The reference bridge plugin with host-local IPAM: a bridge of its own, the gateway on
  /// it and the containers' default route through it (a ClusterIP is off-subnet), no
  /// masquerading (nothing in iptables).
  private var bridgePlugin: [String: Any] {
    [
      "type": "bridge", "bridge": TestNode.uniqueName("br"), "isGateway": true,
      "isDefaultGateway": true, "ipMasq": false,
      "ipam": [
        "type": "host-local", "dataDir": lab.ipamDir.path, "ranges": [[["subnet": subnet]]],
      ],
    ]
  }

  private func junctionPlugin(_ agent: TestAgent) -> [String: Any] {
    [
      "type": "junction", "mode": "chained", "agentSocket": agent.socketPath, "agentTimeout": 5,
      "logFile": lab.directory.appendingPathComponent("junction.log").path, "logLevel": "debug",
    ]
  }

  override func tearDown() {
    lab?.tearDown()
    node?.tearDown()
    super.tearDown()
  }

  private var ctl: String {
    Artifacts.junctionctl
  }

  /// busybox httpd on 8080 answering every GET / with the container's name.
  private func httpd(_ name: String) -> [String] {
    ["sh", "-c", "echo \(name) > /www/index.html && exec httpd -f -p 8080 -h /www"]
  }

  /// The agent's endpoints: their first address → the host interface they sit behind.
  private func endpointsByAddress(_ agent: TestAgent) throws -> [String: String] {
    var result: [String: String] = [:]
    for endpoint in try agent.endpoints() {
      let spec = endpoint["spec"] as? [String: Any] ?? [:]
      let address = (spec["ips"] as? [String])?.first?.split(separator: "/").first
      result[address.map(String.init) ?? "?"] = spec["hostInterface"] as? String ?? "?"
    }
    return result
  }

  /// Host interfaces in the node namespace carrying a clsact qdisc.
  private func clsactInterfaces() throws -> [String] {
    try node.exec(in: node.name, ["tc", "qdisc", "show"]).stdout.split(separator: "\n")
      .filter { $0.contains("clsact") }
      .compactMap { line in
        let words = line.split(separator: " ")
        return words.firstIndex(of: "dev").map { String(words[$0 + 1]) }
      }.sorted()
  }

  /// Host interfaces in the node namespace running Junction's endpoint programs, on either
  /// hook (the agent's --tc-hook).
  private func interfacesRunningJunction() throws -> [String] {
    try node.hostLinks().filter { link in
      let listing = try HookPrograms.listing(in: node.name, link: link)
      return listing.ingress.contains("from_endpoint") && listing.egress.contains("to_endpoint")
    }.sorted()
  }

  /// The agent's pins (the kernel's *.debug files aside).
  private func agentPins(_ agent: TestAgent) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: agent.bpfFS)
      .filter { !$0.hasSuffix(".debug") }.sorted()
  }

  /// The harness alone, without Junction: if this fails, the machine cannot run containerd
  /// containers with CNI, and the test below tells nothing about Junction.
  func testBridgeAloneUnderContainerdConnectsContainersAndDELReleasesEverything() throws {
    try lab.writeConflist(name: network, plugins: [bridgePlugin])
    try lab.start("web", httpd("web"))
    let address = try lab.address("web")
    XCTAssertTrue(address.hasPrefix("10.240.77."), address)
    let client = try lab.run(
      "client", ["timeout", "5", "wget", "-q", "-O", "-", "http://\(address):8080/"])
    XCTAssertEqual(client.status, 0, client.stderr)
    XCTAssertEqual(client.stdout, "web\n")
    try lab.stop("web")
    XCTAssertEqual(try node.hostLinks().count, 1, "a veth outlived its container")
    XCTAssertEqual(lab.reservedAddresses(network: network), [], "an address is still held")
    XCTAssertEqual(lab.cachedResults(), [], "libcni still caches a result")
  }

  func testContainersReachAClusterIPOverOtherContainersAndKillAndRmLeaveNothing() throws {
    let agent = try XCTUnwrap(node.agent)
    try lab.writeConflist(name: network, plugins: [bridgePlugin, junctionPlugin(agent)])
    let pinsBefore = try agentPins(agent)

    var addresses: [String: String] = [:]
    for name in backends {
      try lab.start(name, httpd(name))
      addresses[name] = try lab.address(name)
    }
    // ADD went through junction: each backend is an endpoint, its host veth has the programs.
    let registered = try endpointsByAddress(agent)
    XCTAssertEqual(Set(registered.keys), Set(addresses.values), "endpoints: \(registered)")
    XCTAssertEqual(try interfacesRunningJunction(), registered.values.sorted())
    // ctr names the attachment after containerd's namespace and the container id.
    XCTAssertEqual(
      Set(try agent.endpoints().compactMap { $0["id"] as? String }),
      Set(backends.map { "default-\($0):eth0" }))

    let applied = try Shell.run(
      [ctl, "--socket", agent.socketPath, "apply", "-f", "-"],
      stdin: ServiceManifest.clusterIP(
        name: "droids", clusterIP: clusterIP, backends: addresses.values.sorted()))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)

    // A client container asks the ClusterIP 30 times; every answer names a backend.
    // (busybox 1.35's `wget -T` crashes; `timeout` bounds each request instead, 30 × 3 s
    // within the 120 s the harness call is given.)
    let client = try lab.run(
      "client",
      [
        "sh", "-c",
        "for i in $(seq 1 30); do timeout 3 wget -q -O - http://\(clusterIP)/ || echo failed; done",
      ])
    XCTAssertEqual(client.status, 0, client.stdout + client.stderr)
    let answers = client.stdout.split(separator: "\n").map(String.init)
    XCTAssertEqual(answers.count, 30, client.stdout + client.stderr)
    XCTAssertEqual(Set(answers), Set(backends), "not every backend answered: \(answers)")
    // The client's `ctr run --rm` ran DEL when its command ended.
    XCTAssertEqual(Set(try endpointsByAddress(agent).keys), Set(addresses.values))

    for name in backends {
      try lab.stop(name)
      XCTAssertNil(
        try endpointsByAddress(agent)[addresses[name]!], "\(name)'s endpoint outlived DEL")
    }
    XCTAssertEqual(try agent.endpoints().count, 0)
    let listed = try Shell.run([
      ctl, "--socket", agent.socketPath, "endpoint", "list", "-o", "json",
    ])
    XCTAssertEqual(listed.status, 0, listed.stderr)
    let listedEndpoints = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8))
    XCTAssertEqual((listedEndpoints as? [Any])?.count, 0, listed.stdout)
    XCTAssertEqual(try clsactInterfaces(), [], "a clsact qdisc was left behind")
    XCTAssertEqual(try interfacesRunningJunction(), [], "programs were left behind")
    XCTAssertEqual(try agentPins(agent), pinsBefore, "pins changed")
    // Only the bridge stays (the bridge plugin keeps it); every veth went with its container.
    let links = try node.hostLinks()
    XCTAssertEqual(links.count, 1, "\(links)")
    XCTAssertEqual(lab.reservedAddresses(network: network), [], "an address is still held")
    XCTAssertEqual(lab.cachedResults(), [], "libcni still caches a result")
  }
}
