import AgentAPI
import Foundation
import Logging
import ProxyManager
import ServiceCore
import XCTest

/// The seed's L7 scenarios against the real Envoy (install/deps.sh test installs 1.40.0), driven
/// through ProxyManager (the agent's L7 side) and hitting Envoy's listener directly.
/// Backends are small Python HTTP servers on 127.0.0.1 answering "<name> <path>".
final class EnvoyL7Tests: XCTestCase {
  static let envoyPath =
    ProcessInfo.processInfo.environment["JUNCTION_ENVOY"] ?? "/usr/local/lib/junction/envoy/envoy"

  /// Every Envoy test starts here: without the binary it fails under CI and is skipped, with
  /// the reason, on a developer's machine.
  static func requireEnvoy() throws {
    guard FileManager.default.isExecutableFile(atPath: envoyPath) else {
      throw TestNode.missing("Envoy not installed at \(envoyPath) (install/deps.sh test)")
    }
  }

  var runDirectory = ""
  var servers: [Process] = []
  var manager: ProxyManager?
  var redirects = RedirectLog()
  // Per-process port ranges so parallel runs cannot collide, below the ephemeral range
  // (32768-60999) where outgoing connections could hold a port.
  lazy var proxyBase = UInt16(20000 + Int(getpid() % 100) * 100)
  lazy var backendBase = UInt16(30000 + Int(getpid() % 80) * 32)

  final class RedirectLog: @unchecked Sendable {
    let lock = NSLock()
    var calls: [[ProxyRedirect]] = []
    func record(_ value: [ProxyRedirect]) { lock.withLock { calls.append(value) } }
    var last: [ProxyRedirect]? { lock.withLock { calls.last } }
  }

  override func setUpWithError() throws {
    try EnvoyL7Tests.requireEnvoy()
    runDirectory = "/tmp/junction-envoy-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let log = redirects
    manager = try ProxyManager(
      settings: ProxySettings(
        envoyPath: Self.envoyPath, runDirectory: runDirectory, nodeID: "test-\(getpid())",
        listenAddress: "127.0.0.1",
        ports: ProxyPortAllocator(range: proxyBase...(proxyBase + 99))),
      logger: Logger(label: "envoy-test"), redirectSink: { log.record($0) })
  }

  override func tearDown() {
    manager?.stop()
    for server in servers where server.isRunning {
      server.terminate()
      server.waitUntilExit()
    }
    if !runDirectory.isEmpty { try? FileManager.default.removeItem(atPath: runDirectory) }
  }

  // MARK: helpers

  /// A backend answering every request with `status` and "<name> <path>", on each of `ports`.
  func startBackend(_ name: String, port: UInt16, status: Int = 200, alsoOn more: [UInt16] = [])
    throws
  {
    let script = """
      import http.server, sys
      class H(http.server.BaseHTTPRequestHandler):
          protocol_version = "HTTP/1.1"
          def do_GET(self):
              body = ("%s %s\\n" % (sys.argv[1], self.path)).encode()
              self.send_response(int(sys.argv[3]))
              self.send_header("Content-Length", str(len(body)))
              self.end_headers()
              self.wfile.write(body)
          def log_message(self, *args):
              pass
      import threading
      servers = [http.server.ThreadingHTTPServer(("127.0.0.1", int(p)), H) for p in sys.argv[2].split(",")]
      for s in servers[1:]:
          threading.Thread(target=s.serve_forever, daemon=True).start()
      servers[0].serve_forever()
      """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [
      "-c", script, name, ([port] + more).map(String.init).joined(separator: ","), String(status),
    ]
    try process.run()
    servers.append(process)
    try waitFor("backend \(name) on \(port)") {
      (try? self.curl(port: port, path: "/").status) != nil
    }
  }

  struct Response {
    var status: Int
    var body: String
    var headers: String
  }

  /// One request with curl; nil status when the connection failed.
  func curl(port: UInt16, path: String, host: String? = nil) throws -> Response {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    var arguments = ["-s", "-D", "-", "--max-time", "5", "http://127.0.0.1:\(port)\(path)"]
    if let host { arguments += ["-H", "Host: \(host)"] }
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw CurlFailed(status: process.terminationStatus)
    }
    let parts = output.components(separatedBy: "\r\n\r\n")
    let headers = parts.first ?? ""
    let code = headers.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return Response(
      status: code, body: parts.dropFirst().joined(separator: "\r\n\r\n"), headers: headers)
  }

  struct CurlFailed: Error { var status: Int32 }

  func waitFor(_ what: String, timeout: TimeInterval = 20, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if (try? condition()) == true { return }
      usleep(100_000)
    }
    XCTFail("timed out waiting for \(what)")
    throw CurlFailed(status: -1)
  }

  /// GET on Envoy's admin socket.
  func admin(_ path: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = [
      "-s", "--unix-socket", manager!.settings.adminSocket, "http://admin\(path)",
    ]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
  }

  func decode(_ yaml: String) -> [Resource] {
    let decoded = ResourceDecoder.decode(yaml: yaml)
    XCTAssertEqual(decoded.problems.flatMap(\.messages), [])
    return decoded.resources
  }

  func envoyConfig(_ yaml: String) -> EnvoyConfigResource {
    for case .envoyConfig(let config) in decode(yaml) { return config }
    XCTFail("no envoy config")
    return EnvoyConfigResource(meta: ObjectMeta(name: "x"))
  }

  func backends(_ name: String, port: UInt16 = 8080, _ ports: [UInt16]) -> ServiceBackendSet {
    ServiceBackendSet(
      service: NamespacedName(namespace: "cilium-test", name: name),
      ports: [.init(port: port, backends: ports.map { .init(address: "127.0.0.1", port: $0) })])
  }

  var listenerPort: UInt16 {
    manager!.list().configs.first!.listeners.values.first!
  }

  /// The seed's CEC served with echo-same-node = [a, dead] and echo-other-node = [b].
  func serveSeed(
    sameNode: [UInt16], otherNode: [UInt16], yaml: String = SeedEnvoyManifests.envoyConfig
  )
    throws -> [EnvoyConfigStatus]
  {
    let statuses = manager!.update(
      L7Inputs(
        envoyConfigs: [envoyConfig(yaml)],
        backends: [backends("echo-same-node", sameNode), backends("echo-other-node", otherNode)]))
    return statuses
  }

  // MARK: tests

  func testSeedEnvoyConfigSplitsRewritesRetriesAndEjects() throws {
    // Nine live same-node endpoints and a dead one: Envoy's max_ejection_percent (10% by
    // default) lets it eject one host of ten; with the seed's two-endpoint clusters it only
    // detects (ejections_overflow) and never ejects.
    let a = backendBase
    let b = backendBase + 1
    let dead = backendBase + 2
    let more = (13..<21).map { backendBase + UInt16($0) }
    try startBackend("same", port: a, alsoOn: more)
    try startBackend("other", port: b)
    let statuses = try serveSeed(sameNode: [a, dead] + more, otherNode: [b])
    XCTAssertEqual(statuses.map(\.accepted), [true], "\(statuses)")
    XCTAssertTrue(statuses[0].notes.contains { $0.contains("Router") }, "\(statuses[0].notes)")
    let port = listenerPort
    try waitFor("the listener") { try self.curl(port: port, path: "/").status == 200 }

    // 200 requests: split ~50/50 (chi-square, 1 degree of freedom, p = 0.01 → 6.635); every one
    // succeeds although one same-node endpoint refuses connections (retried).
    var counts: [String: Int] = [:]
    for _ in 0..<200 {
      let response = try curl(port: port, path: "/")
      XCTAssertEqual(response.status, 200)
      counts[String(response.body.split(separator: " ").first ?? ""), default: 0] += 1
    }
    let same = Double(counts["same"] ?? 0)
    let other = Double(counts["other"] ?? 0)
    XCTAssertEqual(same + other, 200, "\(counts)")
    let chiSquare = (same - 100) * (same - 100) / 100 + (other - 100) * (other - 100) / 100
    XCTAssertLessThan(chiSquare, 6.635, "split \(counts)")

    // /foo.* arrives as /.
    let rewritten = try curl(port: port, path: "/foo/bar")
    XCTAssertEqual(rewritten.status, 200)
    XCTAssertTrue(rewritten.body.hasSuffix(" /\n"), rewritten.body)

    // The refusing endpoint is ejected after 2 local-origin failures.
    let clusters = try admin("/clusters")
    let outlierStats = try admin("/stats?filter=outlier")
    let deadLines = clusters.split(separator: "\n").filter { $0.contains("127.0.0.1:\(dead)::") }
    XCTAssertTrue(
      clusters.contains(
        "cilium-test/echo-same-node::127.0.0.1:\(dead)::health_flags::/failed_outlier_check"),
      (deadLines + [Substring(outlierStats)]).joined(separator: "\n"))
    XCTAssertFalse(clusters.contains("127.0.0.1:\(a)::health_flags::/failed_outlier_check"))
    // Ejected at the second consecutive connect failure, then never tried again.
    let failures = deadLines.first { $0.contains("::cx_connect_fail::") }?.split(separator: ":")
      .last
    XCTAssertEqual(failures.flatMap { Int($0) }, 2, deadLines.joined(separator: "\n"))
  }

  func testA503BackendIsRetriedOnAnother() throws {
    let good = backendBase + 3
    let failing = backendBase + 4
    try startBackend("good", port: good)
    try startBackend("failing", port: failing, status: 503)
    _ = try serveSeed(sameNode: [failing, good], otherNode: [good])
    let port = listenerPort
    try waitFor("the listener") { try self.curl(port: port, path: "/").status == 200 }
    for _ in 0..<20 {
      let response = try curl(port: port, path: "/")
      XCTAssertEqual(response.status, 200)
      XCTAssertTrue(response.body.hasPrefix("good "), response.body)
    }
    let stats = try admin("/stats?filter=echo-same-node.*upstream_rq_(503|retry)$")
    // The failing backend answered 503s that were retried (Envoy counts them per cluster).
    let retried503 = stats.split(separator: "\n").first { $0.contains(".retry.upstream_rq_503: ") }
    XCTAssertGreaterThan(Int(retried503?.split(separator: " ").last ?? "") ?? 0, 0, stats)
  }

  func testRouteChangeUnderLoadFailsNoRequest() throws {
    let a = backendBase + 5
    let b = backendBase + 6
    try startBackend("same", port: a)
    try startBackend("other", port: b)
    _ = try serveSeed(sameNode: [a], otherNode: [b])
    let port = listenerPort
    try waitFor("the listener") { try self.curl(port: port, path: "/").status == 200 }
    let wrk = Process()
    wrk.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
    wrk.arguments = ["-t1", "-c8", "-d4s", "http://127.0.0.1:\(port)/"]
    let pipe = Pipe()
    wrk.standardOutput = pipe
    try wrk.run()
    usleep(1_500_000)
    // All traffic to other-node: a route (RDS) change only.
    let changed = SeedEnvoyManifests.envoyConfig.replacingOccurrences(
      of: "name: \"cilium-test/echo-same-node\"\n                      weight: 50",
      with: "name: \"cilium-test/echo-same-node\"\n                      weight: 0")
    XCTAssertNotEqual(changed, SeedEnvoyManifests.envoyConfig)
    XCTAssertEqual(
      try serveSeed(sameNode: [a], otherNode: [b], yaml: changed).map(\.accepted), [true])
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    wrk.waitUntilExit()
    XCTAssertTrue(output.contains("requests in"), output)
    XCTAssertFalse(output.contains("Non-2xx"), output)
    XCTAssertFalse(output.contains("Socket errors"), output)
    try waitFor("the new route") {
      (0..<10).allSatisfy { _ in
        (try? self.curl(port: port, path: "/").body.hasPrefix("other")) == true
      }
    }
  }

  func testKilledEnvoyIsRestartedAndServesAgain() throws {
    let a = backendBase + 7
    try startBackend("same", port: a)
    _ = try serveSeed(sameNode: [a], otherNode: [a])
    let port = listenerPort
    try waitFor("the listener") { try self.curl(port: port, path: "/").status == 200 }
    let supervisor = manager!.supervisor
    let first = try XCTUnwrap(supervisor.pid)
    kill(first, SIGKILL)
    try waitFor("a new Envoy") { supervisor.pid != nil && supervisor.pid != first }
    XCTAssertEqual(supervisor.startCount, 2)
    try waitFor("the listener after the restart") {
      try self.curl(port: port, path: "/").status == 200
    }

    // An agent gone without stopping its Envoy: the next one (same run directory) ends it
    // before starting its own (the pid file names it).
    let orphan = try XCTUnwrap(supervisor.pid)
    let next = try ProxyManager(
      settings: manager!.settings, logger: Logger(label: "envoy-test"), redirectSink: { _ in })
    defer { next.stop() }
    try waitFor("the leftover Envoy to end") { kill(orphan, 0) != 0 }
  }

  func testUnknownTypeIsRejectedWithEnvoysMessageAndThePreviousConfigKeepsServing() throws {
    let a = backendBase + 8
    try startBackend("same", port: a)
    _ = try serveSeed(sameNode: [a], otherNode: [a])
    let port = listenerPort
    try waitFor("the listener") { try self.curl(port: port, path: "/").status == 200 }
    let bad = SeedEnvoyManifests.envoyConfig.replacingOccurrences(
      of: "- name: envoy.filters.http.router",
      with: """
        - name: envoy.filters.http.router
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.nosuch.v3.NoSuch
        """)
    XCTAssertNotEqual(bad, SeedEnvoyManifests.envoyConfig)
    let status = try XCTUnwrap(try serveSeed(sameNode: [a], otherNode: [a], yaml: bad).first)
    XCTAssertFalse(status.accepted)
    XCTAssertTrue(status.serving)
    XCTAssertTrue(status.message?.contains("nosuch") == true, status.message ?? "no message")
    XCTAssertEqual(manager!.list().configs.first?.message, status.message)
    for _ in 0..<5 { XCTAssertEqual(try curl(port: port, path: "/").status, 200) }
  }

  func testDeletingTheConfigRemovesItsRedirectsAndListener() throws {
    let a = backendBase + 9
    try startBackend("same", port: a)
    _ = try serveSeed(sameNode: [a], otherNode: [a])
    let port = listenerPort
    XCTAssertEqual(
      redirects.last?.map(\.description),
      [
        "cilium-test/echo-other-node (all ports) → proxy :\(port) [CiliumEnvoyConfig cilium-test/envoy-lb-listener]",
        "cilium-test/echo-same-node (all ports) → proxy :\(port) [CiliumEnvoyConfig cilium-test/envoy-lb-listener]",
      ])
    try waitFor("the listener") { try self.curl(port: port, path: "/").status == 200 }
    XCTAssertEqual(manager!.update(L7Inputs()), [])
    XCTAssertEqual(redirects.last, [])
    try waitFor("the listener to close") { (try? self.curl(port: port, path: "/")) == nil }
  }

  func testAccessLogGivesL7RequestsWithMethodPathAndStatus() throws {
    let a = backendBase + 10
    try startBackend("same", port: a)
    _ = try serveSeed(sameNode: [a], otherNode: [a])
    let port = listenerPort
    let follower = AccessLogFollower(
      path: manager!.settings.translation.layout.accessLogPath, fromEnd: false)
    try waitFor("the listener") { try self.curl(port: port, path: "/").status == 200 }
    XCTAssertEqual(try curl(port: port, path: "/foo/x").status, 200)
    var seen: [L7Request] = []
    try waitFor("the access log") {
      seen += follower.poll()
      return seen.contains { $0.path == "/foo/x" }
    }
    let request = try XCTUnwrap(seen.first { $0.path == "/foo/x" })
    XCTAssertEqual(request.method, "GET")
    XCTAssertEqual(request.status, 200)
    XCTAssertEqual(request.upstreamHost, "127.0.0.1:\(a)")
  }

  func testSeedIngressRoutesFooAndBarWithServerEnvoy() throws {
    let foo = backendBase + 11
    let bar = backendBase + 12
    try startBackend("foo", port: foo)
    try startBackend("bar", port: bar)
    let resources = decode(SeedEnvoyManifests.ingress)
    guard case .ingress(let ingress) = resources.first else { return XCTFail() }
    func set(_ name: String, _ port: UInt16) -> ServiceBackendSet {
      ServiceBackendSet(
        service: NamespacedName(namespace: "default", name: name),
        ports: [.init(port: 5678, backends: [.init(address: "127.0.0.1", port: port)])])
    }
    let statuses = manager!.update(
      L7Inputs(ingresses: [ingress], backends: [set("foo-app", foo), set("bar-app", bar)]))
    XCTAssertEqual(statuses.map(\.accepted), [true], "\(statuses)")
    XCTAssertEqual(redirects.last?.map(\.service.name), ["junction-ingress-cilium-ingress"])
    let port = listenerPort
    try waitFor("the listener") { try self.curl(port: port, path: "/foo").status == 200 }
    let fooResponse = try curl(port: port, path: "/foo")
    XCTAssertTrue(fooResponse.body.hasPrefix("foo /foo"), fooResponse.body)
    XCTAssertTrue(fooResponse.headers.lowercased().contains("server: envoy"), fooResponse.headers)
    XCTAssertTrue(try curl(port: port, path: "/bar").body.hasPrefix("bar /bar"))
    XCTAssertEqual(try curl(port: port, path: "/other").status, 404)
  }
}

extension EnvoyL7Tests {
  /// TLS from a kubernetes.io/tls Secret: HTTPS for the Ingress host (SNI) on the same
  /// listener, plain HTTP still served.
  func testIngressTLSFromASecretServesHTTPSForItsHost() throws {
    let web = backendBase + 21
    try startBackend("web", port: web)
    let certificate = "\(runDirectory)/tls.crt"
    let key = "\(runDirectory)/tls.key"
    let openssl = Process()
    openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    openssl.arguments = [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=web.example",
      "-addext", "subjectAltName=DNS:web.example", "-keyout", key, "-out", certificate,
    ]
    openssl.standardError = FileHandle.nullDevice
    try openssl.run()
    openssl.waitUntilExit()
    XCTAssertEqual(openssl.terminationStatus, 0)
    func base64(_ path: String) throws -> String {
      try Data(contentsOf: URL(fileURLWithPath: path)).base64EncodedString()
    }
    let yaml = """
      apiVersion: v1
      kind: Secret
      metadata: {name: web-tls, namespace: default}
      type: kubernetes.io/tls
      data:
        tls.crt: \(try base64(certificate))
        tls.key: \(try base64(key))
      ---
      apiVersion: networking.k8s.io/v1
      kind: Ingress
      metadata: {name: web, namespace: default}
      spec:
        ingressClassName: junction
        tls: [{hosts: [web.example], secretName: web-tls}]
        rules:
        - host: web.example
          http:
            paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
      """
    var ingresses: [IngressResource] = []
    var secrets: [TLSSecret] = []
    for resource in decode(yaml) {
      if case .ingress(let value) = resource { ingresses.append(value) }
      if case .tlsSecret(let value) = resource { secrets.append(value) }
    }
    XCTAssertEqual(secrets.count, 1)
    let statuses = manager!.update(
      L7Inputs(
        ingresses: ingresses, secrets: secrets,
        backends: [
          ServiceBackendSet(
            service: NamespacedName(namespace: "default", name: "web"),
            ports: [.init(port: 80, backends: [.init(address: "127.0.0.1", port: web)])])
        ]))
    XCTAssertEqual(statuses.map(\.accepted), [true], "\(statuses)")
    XCTAssertEqual(redirects.last?.first?.ports, [80, 443])
    let port = listenerPort
    func https() -> String? {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
      process.arguments = [
        "-s", "--max-time", "3", "--cacert", certificate, "--resolve",
        "web.example:\(port):127.0.0.1", "https://web.example:\(port)/x",
      ]
      let pipe = Pipe()
      process.standardOutput = pipe
      try? process.run()
      let data = pipe.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
    }
    try waitFor("HTTPS on the listener") { https() == "web /x\n" }
    XCTAssertEqual(try curl(port: port, path: "/y", host: "web.example").body, "web /y\n")
  }
}
