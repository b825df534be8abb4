import Foundation
import XCTest

/// TCP backends in pod namespaces and clients that connect to them, for the service tests:
/// each backend answers every connection on port 8080 with its name.
final class PodTraffic {
  private let node: TestNode
  private var servers: [Process] = []

  init(node: TestNode) { self.node = node }

  /// Stops every backend this object started (by its own Process handle, never by name).
  func tearDown() {
    for server in servers where server.isRunning {
      server.terminate()
      server.waitUntilExit()
    }
    servers = []
  }

  /// A client pod, and one pod per name with a backend answering that name: the client and
  /// the backends' addresses, in order.
  func clientAndBackends(_ names: [String]) throws -> (client: String, addresses: [String]) {
    let client = try node.makePodNamespace()
    try node.addPod(client)
    var addresses: [String] = []
    for name in names {
      let pod = try node.makePodNamespace()
      addresses.append(try node.addPod(pod))
      try startBackend(name, in: pod)
    }
    return (client, addresses)
  }

  /// Starts a backend answering `name` in `pod` and waits until it listens.
  func startBackend(
    _ name: String, in pod: String, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ip", "netns", "exec", pod, "python3", "-c", Self.server, name]
    try process.run()
    servers.append(process)
    for _ in 0..<50 {
      if try node.exec(in: pod, ["sh", "-c", "grep -q ':1F90 ' /proc/net/tcp"]).status == 0 {
        return
      }
      usleep(100_000)
    }
    XCTFail("backend \(name) did not start listening", file: file, line: line)
  }

  private static let server = """
    import socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
    """

  /// Connects `count` times to address:port from `pod`: the names that answered, and
  /// "refused", "timeout" or "error:..." for connections that failed.
  func connect(from pod: String, to address: String, port: Int, count: Int) throws -> [String] {
    let script = """
      import socket, sys
      for _ in range(int(sys.argv[3])):
          try:
              c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
              print(c.recv(100).decode() or "empty"); c.close()
          except ConnectionRefusedError: print("refused")
          except socket.timeout: print("timeout")
          except OSError as e: print("error:" + str(e))
      """
    let result = try node.exec(
      in: pod, ["python3", "-c", script, address, "\(port)", "\(count)"], timeout: 120)
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout.split(separator: "\n").map(String.init)
  }
}
