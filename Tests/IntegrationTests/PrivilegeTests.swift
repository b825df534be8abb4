import AgentCore
import BPFKit
import DatapathABI
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Least privilege (issue 16, part 5), on a real kernel: the agent runs with exactly the
/// capabilities the DaemonSet grants it (`Capability.datapath`: CAP_BPF, CAP_NET_ADMIN,
/// CAP_PERFMON) as root with every other capability dropped from its bounding, inheritable
/// and ambient sets, and a 64 KiB RLIMIT_MEMLOCK (what containers get when nothing raises it),
/// and does its whole job; without any one of them it refuses to start and names the
/// capability. The plugin runs with full root, as kubelet runs it. What still needs
/// privilege (mounting the bpffs) and the install steps (no capability at all) are checked
/// the same way.
final class PrivilegeTests: XCTestCase {
  private var node: TestNode?
  private var traffic: PodTraffic?
  private let processes = PodProcesses()
  private var agents: [TestAgent] = []
  private var directory = ""
  /// Run after the node is gone (a cgroup2 mount the agent used), last first.
  private var cleanups: [() -> Void] = []
  private let proxyPort = 15001

  override func tearDown() {
    processes.stopAll()
    traffic?.tearDown()
    for agent in agents { agent.tearDown() }
    agents = []
    node?.tearDown()
    node = nil
    for cleanup in cleanups.reversed() { cleanup() }
    cleanups = []
    if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
    super.tearDown()
  }

  /// setpriv and prlimit (util-linux), which set the capability sets and the limit.
  private func requireTools() throws {
    for tool in ["setpriv", "prlimit"] {
      let found = try Shell.run(["sh", "-c", "command -v \(tool)"])
      if found.status != 0 {
        throw TestNode.missing("\(tool) (util-linux, install/deps.sh test) is missing")
      }
    }
  }

  /// The command that runs what follows with exactly `capabilities` (root's other
  /// capabilities gone from every set, so neither it nor what it executes can get them back)
  /// and RLIMIT_MEMLOCK at 64 KiB.
  static func launcher(_ capabilities: [Capability]) -> [String] {
    let list = (["-all"] + capabilities.map { "+" + $0.name.dropFirst(4).lowercased() })
      .joined(separator: ",")
    return [
      "prlimit", "--memlock=65536:65536", "setpriv", "--inh-caps=\(list)",
      "--ambient-caps=\(list)", "--bounding-set=\(list)", "--",
    ]
  }

  /// CapEff of process `pid`, which must be `name`.
  private func effectiveCapabilities(of pid: Int32, name: String = "junction-agent") throws
    -> CapabilitySet
  {
    let status = try XCTUnwrap(TestAgent.procText("/proc/\(pid)/status"), "no process \(pid)")
    XCTAssertTrue(status.contains("Name:\t\(name)"), "process \(pid) is not \(name): \(status)")
    return try XCTUnwrap(CapabilitySet(procStatus: status), status)
  }

  static func bits(_ capabilities: [Capability]) -> CapabilitySet {
    CapabilitySet(bits: capabilities.reduce(0) { $0 | 1 << UInt64($1.rawValue) })
  }

  /// One node whose agent has only `Capability.datapath`: a pod ADDed through the plugin,
  /// a ClusterIP answering from its backend pod, north-south programs on a device, the L7
  /// redirect's listener hand-off (pidfd_getfd of a proxy with the agent's own credentials,
  /// as Envoy started by the agent has: no CAP_SYS_PTRACE needed), healthz ok. Then, next to
  /// it, an agent without each one of the three: it exits at start, naming the one missing.
  func testTheAgentDoesItsJobWithItsNamedCapabilitiesAndNamesEachOneMissing() throws {
    try requireTools()
    let granted = Capability.datapath
    let node = try TestNode(
      podSubnet: "10.240.160.0/24",
      agentArguments: [
        "--proxy-redirect", "default/web=\(proxyPort)", "--proxy-redirect",
        "default/rooted=\(proxyPort + 1)",
      ],
      agentLauncher: Self.launcher(granted),
      beforeAgent: { namespace in
        for command in [
          ["link", "add", "jpdev0", "type", "veth", "peer", "name", "jpdev1"],
          ["addr", "add", "192.168.161.1/24", "dev", "jpdev0"], ["link", "set", "jpdev0", "up"],
        ] {
          try Shell.must(["ip", "-n", namespace] + command)
        }
        return ["--devices", "jpdev0"]
      })
    self.node = node
    let agent = try XCTUnwrap(node.agent)
    XCTAssertEqual(
      try effectiveCapabilities(of: agent.pid),
      Self.bits(granted),
      "the agent runs with exactly \(granted.map(\.name))")
    XCTAssertTrue(agent.log.contains("datapath loaded"), agent.log)
    XCTAssertTrue(agent.log.contains("north-south programs attached"), agent.log)
    XCTAssertTrue(agent.log.contains("proxy socket lookup attached"), agent.log)

    let traffic = PodTraffic(node: node)
    self.traffic = traffic
    let (client, addresses) = try traffic.clientAndBackends(["r2d2", "bb8"])
    XCTAssertEqual(try agent.endpointIDs().count, 3, "the three pods' endpoints")
    try node.apply(
      ServiceManifest.clusterIP(name: "droids", clusterIP: "10.96.160.10", backends: addresses))
    XCTAssertEqual(
      Set(try traffic.connect(from: client, to: "10.96.160.10", port: 80, count: 20)),
      ["r2d2", "bb8"])

    // The redirected Service's proxy, with the agent's credentials (Envoy's, as the agent
    // starts it): its transparent listener (CAP_NET_ADMIN) is taken with pidfd_getfd.
    try node.apply(
      ServiceManifest.clusterIP(name: "web", clusterIP: "10.96.160.20", backends: [addresses[0]]))
    try processes.spawn(
      in: node.name, ProxyRedirectDatapathTests.standinProxy, ["\(proxyPort)"],
      through: Self.launcher(granted))
    var mapped = false
    for _ in 0..<100 where !mapped {
      mapped = agent.log.contains("proxy listener mapped")
      if !mapped { usleep(100_000) }
    }
    XCTAssertTrue(mapped, "the proxy's listener was not taken:\n\(agent.log)")
    XCTAssertFalse(agent.log.contains("cannot take the proxy listener's socket"), agent.log)
    let answer = try node.exec(
      in: client,
      [
        "python3", "-c",
        "import socket; c = socket.create_connection(('10.96.160.20', 80), timeout=5); "
          + "print(c.makefile().readline().strip())",
      ])
    XCTAssertTrue(answer.stdout.hasPrefix("proxy "), answer.stdout + answer.stderr)

    // A proxy with more capabilities than the agent (root's full set) is out of its reach
    // without CAP_SYS_PTRACE, and the agent says so (redirects keep tc's hand-off).
    try node.apply(
      ServiceManifest.clusterIP(
        name: "rooted", clusterIP: "10.96.160.30", backends: [addresses[0]]))
    try processes.spawn(
      in: node.name, ProxyRedirectDatapathTests.standinProxy, ["\(proxyPort + 1)"])
    var warned: String?
    for _ in 0..<100 where warned == nil {
      warned = agent.log.split(separator: "\n").first {
        $0.contains("cannot find the proxy listener's process") && $0.contains("CAP_SYS_PTRACE")
          && $0.contains("port=\(proxyPort + 1)")
      }.map(String.init)
      if warned == nil { usleep(100_000) }
    }
    XCTAssertNotNil(warned, "no warning naming CAP_SYS_PTRACE:\n\(agent.log)")
    usleep(2_500_000)  // two more syncs (one a second) that must not repeat it
    XCTAssertEqual(
      agent.log.components(separatedBy: "cannot find the proxy listener's process").count, 2,
      "warned once, not at every sync")

    let health = try agent.request("GET", "/v1/healthz")
    XCTAssertEqual(health.status, 200, health.text)
    XCTAssertEqual((health.json as? [String: Any])?["status"] as? String, "ok", health.text)
    XCTAssertEqual(
      (health.json as? [String: Any])?["datapathLoaded"] as? Bool, true, health.text)

    // Each capability is needed: without it the agent stops at start and names it.
    for missing in granted {
      let others = granted.filter { $0 != missing }
      let lacking = try TestAgent(
        namespace: node.name, arguments: ["--devices", "jpdev0"],
        launcher: Self.launcher(others), start: false)
      agents.append(lacking)
      let result = try Shell.run(lacking.commandLine(lacking.arguments), timeout: 60)
      XCTAssertEqual(result.status, 1, "without \(missing.name): \(result.stderr)")
      XCTAssertTrue(
        result.stderr.contains("cannot load the datapath")
          && result.stderr.contains("the agent lacks \(missing.name) (loading the datapath"),
        "without \(missing.name): \(result.stderr)")
    }
    // The running agent was not disturbed by them.
    XCTAssertEqual(try agent.request("GET", "/v1/healthz").status, 200)
  }

  /// Socket LB for pods with only the three capabilities (no CAP_SYS_ADMIN, so no setns):
  /// the plugin registers each pod's netns cookie and the agent records the pod under it in
  /// jnc_pod_netns (the cookie the pod's own sockets carry); the pod's connections to a
  /// ClusterIP are translated at the socket (no conntrack entry); after a restart the map is
  /// rebuilt from the endpoint records, still without setns. A registration without a cookie
  /// (an older plugin) is the one case that needs setns: the agent says so and records
  /// nothing for it. The cgroup2 is mounted beforehand, since mounting one needs
  /// CAP_SYS_ADMIN (README, "Privilege").
  func testSocketLBRecordsPodsByTheRegisteredCookieWithoutCapSysAdmin() throws {
    try requireTools()
    try TestNode.requirePrerequisites()
    let cgroupRoot = NSTemporaryDirectory() + TestNode.uniqueName("privcg")
    try FileManager.default.createDirectory(atPath: cgroupRoot, withIntermediateDirectories: false)
    cleanups.append { try? FileManager.default.removeItem(atPath: cgroupRoot) }
    try CgroupFilesystem.mount(at: cgroupRoot)
    cleanups.append { _ = umount2(cgroupRoot, Int32(MNT_DETACH)) }

    let granted = Capability.datapath
    let node = try TestNode(
      podSubnet: "10.240.165.0/24",
      agentArguments: ["--socket-lb", "--cgroup-root", cgroupRoot],
      agentLauncher: Self.launcher(granted))
    self.node = node
    let agent = try XCTUnwrap(node.agent)
    XCTAssertEqual(try effectiveCapabilities(of: agent.pid), Self.bits(granted))
    XCTAssertTrue(agent.log.contains("datapath loaded"), agent.log)

    let traffic = PodTraffic(node: node)
    self.traffic = traffic
    let client = try node.makePodNamespace()
    var clientAddress = in_addr()
    XCTAssertEqual(inet_pton(AF_INET, try node.addPod(client), &clientAddress), 1)
    let backend = try node.makePodNamespace()
    let backendAddress = try node.addPod(backend)
    try traffic.startBackend("leia", in: backend)
    let cookie = try node.netnsCookie(of: client)

    func assertTranslatedAtTheSocket(_ when: String) throws {
      let entry = try PodNetnsMap.entries(bpfFS: agent.bpfFS)[cookie]
      XCTAssertEqual(entry?.address4, clientAddress.s_addr, "\(when): no entry for \(cookie)")
      XCTAssertEqual(
        try traffic.connect(from: client, to: "10.96.165.10", port: 80, count: 5),
        Array(repeating: "leia", count: 5), when)
      let conntrack = try BPFMap.openPinned(at: agent.bpfFS + "/" + JUNCTION_MAP_CT4)
      XCTAssertEqual(
        try conntrack.keys(as: junction_ct4_key.self).count, 0,
        "\(when): translated per packet, not at the socket")
    }
    try node.apply(
      ServiceManifest.clusterIP(
        name: "rebels", clusterIP: "10.96.165.10", backends: [backendAddress]))
    try assertTranslatedAtTheSocket("after ADD")
    XCTAssertFalse(agent.log.contains("cannot read a pod's network namespace cookie"), agent.log)

    try agent.restart()
    XCTAssertEqual(try effectiveCapabilities(of: agent.pid), Self.bits(granted))
    try assertTranslatedAtTheSocket("after a restart")
    XCTAssertFalse(agent.log.contains("cannot read a pod's network namespace cookie"), agent.log)

    // An older plugin's registration (no netnsCookie): the agent would have to enter the
    // namespace, which it may not.
    let old = try node.makePodNamespace()
    try agent.register([
      "containerID": "ctr-old-plugin", "ifname": "eth0", "network": node.network,
      "netns": "/var/run/netns/\(old)", "hostInterface": "jxold0", "hostIfindex": 4000,
      "ips": ["10.240.165.250/32"],
    ])
    var oldAddress = in_addr()
    XCTAssertEqual(inet_pton(AF_INET, "10.240.165.250", &oldAddress), 1)
    XCTAssertFalse(
      try PodNetnsMap.entries(bpfFS: agent.bpfFS).values.contains {
        $0.address4 == oldAddress.s_addr
      })
    XCTAssertTrue(
      agent.log.split(separator: "\n").contains {
        $0.contains("cannot read a pod's network namespace cookie")
          && $0.contains("ctr-old-plugin:eth0") && $0.contains("setns")
      }, agent.log)
    XCTAssertEqual(try agent.request("DELETE", "/v1/endpoints/ctr-old-plugin:eth0").status, 204)
  }

  /// Envoy supervised by an agent with only its three capabilities: started with them (and no
  /// more), it accepts the seed's CiliumEnvoyConfig and serves it from the Services'
  /// backend.
  func testTheAgentsEnvoyRunsAndServesWithTheSameCapabilities() throws {
    try requireTools()
    try EnvoyL7Tests.requireEnvoy()
    let agent = try TestAgent(
      arguments: ["--envoy", EnvoyL7Tests.envoyPath], premountBPFFS: true,
      launcher: Self.launcher(Capability.datapath))
    agents.append(agent)
    let port = UInt16(32760 + Int(getpid() % 160))
    let backend = """
      import http.server, sys
      class H(http.server.BaseHTTPRequestHandler):
          def do_GET(self):
              body = ("echo %s\\n" % self.path).encode()
              self.send_response(200); self.send_header("Content-Length", str(len(body)))
              self.end_headers(); self.wfile.write(body)
          def log_message(self, *a): pass
      http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
      """
    let server = Process()
    server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    server.arguments = ["-c", backend, "\(port)"]
    try server.run()
    defer {
      server.terminate()
      server.waitUntilExit()
    }
    let services = SeedEnvoyManifests.echoServices(backendPort: port, subnet: 162)
    let ctl = [Artifacts.junctionctl, "--socket", agent.socketPath]
    let applied = try Shell.run(
      ctl + ["apply", "-f", "-"], stdin: services + SeedEnvoyManifests.envoyConfig)
    XCTAssertEqual(applied.status, 0, applied.stderr + agent.log)
    var listener: Int?
    var list: [String: Any] = [:]
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline, listener == nil {
      list = try Shell.run(ctl + ["envoy", "list", "-o", "json"]).json ?? [:]
      if let config = (list["configs"] as? [[String: Any]])?.first,
        config["accepted"] as? Bool == true
      {
        listener = (config["listeners"] as? [String: Int])?.values.first
      } else {
        usleep(100_000)
      }
    }
    let listenerPort = try XCTUnwrap(listener, "\(list)\n\(agent.log)")
    let envoy = try XCTUnwrap(list["pid"] as? Int, "\(list)")
    XCTAssertEqual(
      try effectiveCapabilities(of: Int32(envoy), name: "envoy"), Self.bits(Capability.datapath),
      "Envoy has the agent's capabilities, no more")
    var body: String?
    let served = Date().addingTimeInterval(20)
    while Date() < served, body?.hasPrefix("echo") != true {
      let result = try Shell.run(
        ["curl", "-s", "--max-time", "3", "http://127.0.0.1:\(listenerPort)/foo/x"])
      body = result.status == 0 ? result.stdout : nil
      if body?.hasPrefix("echo") != true { usleep(100_000) }
    }
    XCTAssertEqual(body, "echo /\n", agent.log)
  }

  /// Mounting a bpffs is the one thing the agent may do that its capabilities do not allow
  /// (the DaemonSet's privileged mount-bpf-fs init container does it instead): with no bpffs
  /// at --bpf-fs, the agent exits naming CAP_SYS_ADMIN.
  func testWithoutABPFFSTheAgentNamesCapSysAdminForTheMount() throws {
    try requireTools()
    try TestNode.requirePrerequisites()
    let namespace = TestNode.uniqueName("priv")
    try Shell.must(["ip", "netns", "add", namespace])
    defer { _ = try? Shell.run(["ip", "netns", "del", namespace]) }
    let agent = try TestAgent(
      namespace: namespace, premountBPFFS: false, launcher: Self.launcher(Capability.datapath),
      start: false)
    agents.append(agent)
    let result = try Shell.run(agent.commandLine(agent.arguments), timeout: 60)
    XCTAssertEqual(result.status, 1, result.stderr)
    XCTAssertTrue(
      result.stderr.contains("no bpffs at \(agent.bpfFS) and cannot mount one")
        && result.stderr.contains(
          "the agent lacks CAP_SYS_ADMIN (mounting a bpffs needs CAP_SYS_ADMIN)"),
      result.stderr)
  }

  /// The install-cni init container's steps and the cni-chain container's, as root with no
  /// capability at all (the DaemonSet drops ALL): the plugin copied into a root-owned bin
  /// dir through a temporary name, junction chained into a root-owned conflist.
  func testTheInstallStepsNeedNoCapability() throws {
    try requireTools()
    try TestNode.requirePrerequisites()
    guard FileManager.default.isExecutableFile(atPath: InstallCommandTests.binary) else {
      throw TestNode.missing("junction-install is not built at \(InstallCommandTests.binary)")
    }
    directory = NSTemporaryDirectory() + TestNode.uniqueName("privinst")
    for sub in ["bin", "conf"] {
      try FileManager.default.createDirectory(
        atPath: directory + "/" + sub, withIntermediateDirectories: true)
    }
    let conflist = directory + "/conf/10-calico.conflist"
    try FileManager.default.copyItem(
      atPath: Artifacts.repoRoot.appendingPathComponent(
        "Tests/CNIConfigEditingTests/Fixtures/10-calico.conflist"
      ).path, toPath: conflist)
    let script = """
      install -m 0755 "$1" "$2/bin/.junction.tmp"
      mv -f "$2/bin/.junction.tmp" "$2/bin/junction"
      "$3" chain --first-in "$2/conf" --wait 5
      grep "^CapEff" /proc/self/status
      """
    let result = try Shell.run(
      Self.launcher([]) + [
        "sh", "-ec", script, "sh", Artifacts.junction, directory, InstallCommandTests.binary,
      ])
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    XCTAssertTrue(result.stdout.contains("CapEff:\t0000000000000000"), result.stdout)
    XCTAssertTrue(FileManager.default.isExecutableFile(atPath: directory + "/bin/junction"))
    XCTAssertTrue(
      try String(contentsOfFile: conflist, encoding: .utf8).contains("\"junction\""),
      "junction not chained: \(result.stdout)")
  }
}
