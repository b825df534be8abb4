import Foundation
import XCTest

/// The L7 proxy redirect in the datapath (issue 14, part 5), on a real kernel: a Service
/// redirected with the agent's `--proxy-redirect` (what the Envoy side will do through the
/// same entry point) sends its new TCP connections to a stand-in for Envoy, a python3 server
/// listening with IP_TRANSPARENT on 0.0.0.0:15001 in the node's namespace, which tells each
/// connection how it sees it (peer and local address) and then echoes what it gets.
final class ProxyRedirectDatapathTests: PodNodesTestCase {
  private let proxyPort = 15001

  /// The stand-in proxy: "proxy PEER_IP:PORT LOCAL_IP:PORT\n" first, then an echo.
  static let standinProxy = """
    import socket, sys, threading
    IP_TRANSPARENT = 19
    def serve(c, peer):
        try:
            local = c.getsockname()
            c.sendall(("proxy %s:%d %s:%d\\n" % (peer[0], peer[1], local[0], local[1])).encode())
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(128)
    print("listening", flush=True)
    while True:
        c, peer = s.accept()
        threading.Thread(target=serve, args=(c, peer), daemon=True).start()
    """

  /// A client: connects to argv[1]:argv[2], prints "first-line|getpeername|getsockname", then
  /// sends argv[3] bytes, reads them back and prints "echo N ok" (or the error).
  static let client = """
    import socket, sys, os, hashlib
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        f = c.makefile("rb")
        first = f.readline().decode().strip()
        peer = "%s:%d" % c.getpeername(); local = "%s:%d" % c.getsockname()
        print("%s|%s|%s" % (first, peer, local), flush=True)
        size = int(sys.argv[3])
        if size:
            payload = os.urandom(size)
            import threading
            t = threading.Thread(target=lambda: c.sendall(payload)); t.start()
            got = bytearray()
            while len(got) < size:
                chunk = f.read1(65536)
                if not chunk:
                    break
                got += chunk
            t.join()
            ok = hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
            print("echo %d %s" % (len(got), "ok" if ok else "corrupt"))
        c.close()
    except ConnectionRefusedError: print("refused")
    except socket.timeout: print("timeout")
    except OSError as e: print("error:" + str(e))
    """

  /// A stand-in proxy that closes first, as Envoy does for a request with `Connection:
  /// close`: "proxy PEER_IP:PORT LOCAL_IP:PORT\n", then close. Its side of each connection
  /// (VIP:port ↔ client:port) is left in TIME_WAIT.
  static let closingProxy = """
    import socket, sys
    IP_TRANSPARENT = 19
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(128)
    while True:
        c, peer = s.accept()
        local = c.getsockname()
        c.sendall(("proxy %s:%d %s:%d\\n" % (peer[0], peer[1], local[0], local[1])).encode())
        c.close()
    """

  /// A client that reuses one source port: argv[3] connections from argv[4] (SO_REUSEADDR,
  /// bound to that port) to argv[1]:argv[2], each read to the end (the server closes
  /// first); prints each first line, then "synretrans N": the pod's TCPSynRetrans counter
  /// over the run (SYNs the client had to send again, /proc/net/netstat of its namespace).
  static let reusingClient = """
    import socket, sys, time
    def syn_retrans():
        lines = open("/proc/net/netstat").read().split("\\n")
        names, values = lines[0].split(), lines[1].split()
        return int(values[names.index("TCPSynRetrans")])
    before = syn_retrans()
    for i in range(int(sys.argv[3])):
        for attempt in range(50):
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            c.settimeout(10)
            try:
                c.bind(("0.0.0.0", int(sys.argv[4])))
                c.connect((sys.argv[1], int(sys.argv[2])))
                break
            except OSError as e:
                # The previous connection's last ACK not yet acknowledged (LAST_ACK): the
                # 4-tuple is still taken on this side.
                c.close()
                if attempt == 49: raise
                time.sleep(0.02)
        data = b""
        while True:
            chunk = c.recv(4096)
            if not chunk: break
            data += chunk
        c.close()
        print(data.decode().strip(), flush=True)
    print("synretrans %d" % (syn_retrans() - before), flush=True)
    """

  private static let backendServer = """
    import socket, sys, threading
    name = sys.argv[1].encode() + b"\\n"
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(128)
    while True:
        c, _ = s.accept(); c.sendall(name); c.close()
    """

  private func startProxy(on node: TestNode) throws -> Process {
    let process = try processes.spawn(in: node.name, Self.standinProxy, ["\(proxyPort)"])
    for _ in 0..<50 {
      let listening = try node.exec(
        in: node.name, ["grep", "-q", String(format: ":%04X ", proxyPort), "/proc/net/tcp"])
      if listening.status == 0 { return process }
      usleep(100_000)
    }
    XCTFail("the stand-in proxy did not start")
    return process
  }

  private func run(
    _ node: TestNode, from pod: String, _ address: String, port: Int = 80,
    bytes: Int = 0
  ) throws -> [String] {
    let result = try node.exec(
      in: pod, ["python3", "-c", Self.client, address, "\(port)", "\(bytes)"], timeout: 60)
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  /// A node (strict rp_filter) whose agent redirects default/web, a backend pod behind both
  /// web (10.96.140.10) and plain (10.96.140.20), and a client pod.
  private func setUpNode(redirect: Bool = true) throws -> (
    node: TestNode, client: (pod: String, address: String)
  ) {
    let node = try TestNode(
      podSubnet: "10.240.140.0/24",
      agentArguments: redirect ? ["--proxy-redirect", "default/web=\(proxyPort)"] : [])
    nodes.append(node)
    // Strict reverse-path filtering, as many distributions set it: the redirected packets
    // (routed locally by the mark) must pass it on the pods' veths.
    for key in ["all", "default"] {
      try Shell.must([
        "ip", "netns", "exec", node.name, "sysctl", "-qw", "net.ipv4.conf.\(key).rp_filter=1",
      ])
    }
    let backendPod = try node.makePodNamespace()
    let backend = try node.addPod(backendPod)
    try processes.spawn(in: backendPod, Self.backendServer, ["backend"])
    try processes.waitForPort8080(node, in: backendPod, udp: false, name: "backend")
    let clientPod = try node.makePodNamespace()
    let client = try node.addPod(clientPod)
    try node.apply(
      ServiceManifest.clusterIP(name: "web", clusterIP: "10.96.140.10", backends: [backend]))
    try node.apply(
      ServiceManifest.clusterIP(name: "plain", clusterIP: "10.96.140.20", backends: [backend]))
    return (node, (clientPod, client))
  }

  /// Pod → redirected ClusterIP: the proxy sees the pod as peer and VIP:port as its local
  /// address, the client sees the VIP as its peer, 8 MiB go through and back intact, the
  /// Service next to it is untouched, the listing shows the proxy port, and the flow
  /// shows `to-proxy`.
  func testPodToRedirectedClusterIPReachesTheProxyWithAddressesKept() throws {
    let (node, client) = try setUpNode()
    _ = try startProxy(on: node)

    let lines = try run(node, from: client.pod, "10.96.140.10", bytes: 8 << 20)
    XCTAssertEqual(lines.count, 2, "\(lines)")
    let fields = (lines.first ?? "").split(separator: "|").map(String.init)
    XCTAssertEqual(fields.count, 3, "\(lines)")
    if fields.count == 3 {
      let clientPort = fields[2].split(separator: ":").last.map(String.init) ?? "?"
      XCTAssertEqual(fields[0], "proxy \(client.address):\(clientPort) 10.96.140.10:80")
      XCTAssertEqual(fields[1], "10.96.140.10:80", "the client's peer is the Service")
      XCTAssertEqual(fields[2], "\(client.address):\(clientPort)")
    }
    XCTAssertEqual(lines.last, "echo \(8 << 20) ok")

    XCTAssertEqual(
      try run(node, from: client.pod, "10.96.140.20").first?.split(separator: "|").first,
      "backend", "the Service that is not redirected")

    let list = try node.junctionctl(["service", "list"]).stdout
    let row = list.split(separator: "\n").first { $0.contains("10.96.140.10:80/TCP") }
    XCTAssertTrue(row?.contains("L7 proxy :\(proxyPort)") ?? false, list)
    XCTAssertFalse(
      list.split(separator: "\n").first { $0.contains("10.96.140.20:80/TCP") }?.contains("L7")
        ?? true, list)
    let lb = try node.junctionctl(["bpf", "lb", "list"]).stdout
    XCTAssertTrue(lb.contains("l7-proxy :\(proxyPort)"), lb)

    var flows = ""
    for _ in 0..<20 {
      flows = try node.junctionctl(["observe", "--last", "200"]).stdout
      if flows.contains("to-proxy") { break }
      usleep(200_000)
    }
    let toProxy = flows.split(separator: "\n").filter { $0.contains("to-proxy") }
    XCTAssertFalse(toProxy.isEmpty, flows)
    XCTAssertTrue(toProxy.allSatisfy { $0.contains("REDIRECTED") }, flows)
  }

  /// The proxy gone: connections to the redirected Service are refused at once and counted
  /// under the new drop reason; the other Service still answers; the proxy back: served.
  func testWithoutAListenerTheRedirectedServiceIsRefusedAndCounted() throws {
    let (node, client) = try setUpNode()
    XCTAssertEqual(try run(node, from: client.pod, "10.96.140.10"), ["refused"])
    XCTAssertEqual(try run(node, from: client.pod, "10.96.140.10"), ["refused"])
    let drops = try node.junctionctl(["bpf", "drops"]).stdout
    let line = drops.split(separator: "\n").first { $0.contains("Proxy listener unavailable") }
    XCTAssertNotNil(line, drops)
    XCTAssertTrue(line?.contains("from-endpoint") ?? false, drops)
    XCTAssertEqual(
      try run(node, from: client.pod, "10.96.140.20").first?.split(separator: "|").first,
      "backend")

    let proxy = try startProxy(on: node)
    XCTAssertEqual(
      try run(node, from: client.pod, "10.96.140.10").first?.hasPrefix("proxy "), true)
    proxy.terminate()
    proxy.waitUntilExit()
    XCTAssertEqual(try run(node, from: client.pod, "10.96.140.10"), ["refused"])
  }

  /// The proxy closes first (its side goes to TIME_WAIT) and the client opens the next
  /// connection from the same port: every SYN reopens the 4-tuple at once, as on a directly
  /// reached listener. Handed over with bpf_sk_assign, the kernel dropped each such SYN as a
  /// duplicate of the TIME_WAIT socket and the client sent it again 1 s later; through the
  /// socket lookup (bpf/proxy_lookup.c) no SYN is sent twice.
  func testAClientReusingItsPortAfterTheProxyClosedFirstIsAcceptedAtOnce() throws {
    let (node, client) = try setUpNode()
    _ = try processes.spawn(in: node.name, Self.closingProxy, ["\(proxyPort)"])
    let agent = try XCTUnwrap(node.agent)
    // The agent puts the proxy's listener into its map within a second of it listening.
    var mapped = false
    for _ in 0..<100 where !mapped {
      mapped = agent.log.contains("proxy listener mapped")
      if !mapped { usleep(100_000) }
    }
    XCTAssertTrue(mapped, agent.log)

    let connections = 25
    let clientPort = 40_123
    let result = try node.exec(
      in: client.pod,
      [
        "python3", "-c", Self.reusingClient, "10.96.140.10", "80", "\(connections)",
        "\(clientPort)",
      ], timeout: 120)
    XCTAssertEqual(result.status, 0, result.stderr)
    let lines = result.stdout.split(separator: "\n").map(String.init)
    let expected = "proxy \(client.address):\(clientPort) 10.96.140.10:80"
    XCTAssertEqual(lines.filter { $0 == expected }.count, connections, result.stdout)
    XCTAssertEqual(lines.last, "synretrans 0", result.stdout)
    // The case it is about: the proxy's side of the 4-tuple is in TIME_WAIT.
    let timeWait = try Shell.must([
      "ip", "netns", "exec", node.name, "ss", "-Htn", "state", "time-wait",
      "src", "10.96.140.10", "dst", "\(client.address):\(clientPort)",
    ])
    XCTAssertFalse(timeWait.isEmpty, "no TIME_WAIT socket on the proxy's side")
  }

  /// The redirect removed (the agent restarted without it): the Service is balanced by BPF
  /// again (the backend answers, not the still-running proxy), and the proxy routing the
  /// agent installed is gone from the node.
  func testRemovingTheRedirectGivesTheServiceBackToItsBackends() throws {
    let (node, client) = try setUpNode()
    _ = try startProxy(on: node)
    XCTAssertEqual(
      try run(node, from: client.pod, "10.96.140.10").first?.hasPrefix("proxy "), true)
    let rules = try Shell.must(["ip", "-n", node.name, "rule", "show"])
    XCTAssertTrue(rules.contains("lookup 2027"), rules)

    let agent = try XCTUnwrap(node.agent)
    agent.extraArguments = []
    try agent.restart()
    // The restarted agent took over the pinned socket-lookup link (its program replaced in
    // place), rather than failing over to tc's bpf_sk_assign.
    XCTAssertFalse(agent.log.contains("no proxy socket lookup"), agent.log)
    XCTAssertTrue(
      FileManager.default.fileExists(atPath: agent.bpfFS + "/proxy_lookup_link"), agent.log)
    XCTAssertEqual(
      try run(node, from: client.pod, "10.96.140.10").first?.split(separator: "|").first,
      "backend")
    let list = try node.junctionctl(["service", "list"]).stdout
    XCTAssertFalse(list.contains("L7 proxy"), list)
    let after = try Shell.must(["ip", "-n", node.name, "rule", "show"])
    XCTAssertFalse(after.contains("lookup 2027"), after)
    let table = try Shell.must(["ip", "-n", node.name, "route", "show", "table", "all"])
    XCTAssertFalse(table.contains("table 2027"), table)
  }
}
