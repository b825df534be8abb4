import XCTest

@testable import AgentAPI

/// The blocking client's response parsing (the agent's side of the contract).
final class AgentClientTests: XCTestCase {
  func testParsesStatusAndLength() throws {
    let head = Array(
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".utf8)
    let parsed = try XCTUnwrap(try HTTPHead.parse(head))
    XCTAssertEqual(parsed.status, 201)
    XCTAssertEqual(parsed.length, 2)
    XCTAssertEqual(Array(head[parsed.bodyStart...]), Array("{}".utf8))
  }

  func testIncompleteHeadIsNil() throws {
    XCTAssertNil(try HTTPHead.parse(Array("HTTP/1.1 200 OK\r\nContent-Le".utf8)))
  }

  func testErrorMessageReadsAPIErrorBody() {
    let response = AgentClient.Response(
      status: 400, body: Array(#"{"error":"field 'x' must be a string"}"#.utf8))
    XCTAssertEqual(response.errorMessage, "field 'x' must be a string")
    XCTAssertFalse(response.isSuccess)
  }

  func testNotRunningWhenNoSocket() {
    let client = AgentClient(socketPath: "/nonexistent/\(getpid())/agent.sock", timeout: 1)
    XCTAssertThrowsError(try client.health()) { error in
      XCTAssertEqual(error as? AgentClient.Failure, .notRunning(client.socketPath))
    }
  }

  func testRetryableFailuresAreTheOnesTheAgentDidNotOrMayNotHaveCarriedOut() {
    let retryable: [AgentClient.Failure] = [
      .notRunning("/s"), .timedOut("receive"), .io("receive: Connection reset by peer"),
      .closedWithoutAnswer(bytes: 0), .api(status: 503, message: "the agent is shutting down"),
      .api(status: 500, message: "cannot persist"),
    ]
    let final: [AgentClient.Failure] = [
      .permissionDenied("/s"), .badResponse("SSH-2.0"), .api(status: 400, message: "bad id"),
      .api(status: 404, message: "not found"),
    ]
    for failure in retryable { XCTAssertTrue(failure.isRetryable, "\(failure)") }
    for failure in final { XCTAssertFalse(failure.isRetryable, "\(failure)") }
  }

  /// An agent that reads the request and dies before answering: the connection closes with
  /// nothing sent back. That is not "a response that is not HTTP" but no answer at all.
  func testAConnectionClosedAfterTheRequestWithoutAnAnswerIsClosedWithoutAnswer() throws {
    let directory = try temporaryDirectory(self)
    let path = directory + "/agent.sock"
    let listener = try listeningSocket(at: path)
    defer { close(listener) }
    let server = Thread {
      let connection = accept(listener, nil, nil)
      var buffer = [UInt8](repeating: 0, count: 4096)
      _ = recv(connection, &buffer, buffer.count, 0)
      close(connection)
    }
    server.start()
    let client = AgentClient(socketPath: path, timeout: 5)
    XCTAssertThrowsError(try client.deleteEndpoint("ctr:eth0")) { error in
      XCTAssertEqual(error as? AgentClient.Failure, .closedWithoutAnswer(bytes: 0))
      XCTAssertTrue((error as? AgentClient.Failure)?.isRetryable ?? false)
    }
  }

  /// An apply waits past the client's timeout for as long as the agent works, and says
  /// each second that it is still waiting.
  func testAnApplyWaitsPastTheTimeoutUntilTheAgentAnswers() throws {
    let directory = try temporaryDirectory(self)
    let path = directory + "/agent.sock"
    let listener = try listeningSocket(at: path)
    defer { close(listener) }
    let server = Thread {
      let connection = accept(listener, nil, nil)
      var buffer = [UInt8](repeating: 0, count: 4096)
      _ = recv(connection, &buffer, buffer.count, 0)
      sleep(3)
      let body = #"{"changed":["Service default/slow"],"skipped":[],"notes":[],"errors":[]}"#
      let answer = Array(
        "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
      _ = answer.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, 0) }
      close(connection)
    }
    server.start()
    let client = AgentClient(socketPath: path, timeout: 1)
    let ticks = TickLog()
    let change = try client.changeResources(yaml: "kind: Service", delete: false) {
      ticks.append($0)
    }
    XCTAssertEqual(change.changed, ["Service default/slow"])
    XCTAssertGreaterThanOrEqual(ticks.values.count, 2, "\(ticks.values)")
    XCTAssertEqual(ticks.values, ticks.values.sorted())
  }

  /// An agent that dies during a long apply ends the wait at once, with a clear failure.
  func testAnApplyWhoseAgentGoesAwayIsClosedWithoutAnswer() throws {
    let directory = try temporaryDirectory(self)
    let path = directory + "/agent.sock"
    let listener = try listeningSocket(at: path)
    defer { close(listener) }
    let server = Thread {
      let connection = accept(listener, nil, nil)
      var buffer = [UInt8](repeating: 0, count: 4096)
      _ = recv(connection, &buffer, buffer.count, 0)
      sleep(2)
      close(connection)
    }
    server.start()
    let client = AgentClient(socketPath: path, timeout: 1)
    XCTAssertThrowsError(try client.changeResources(yaml: "kind: Service", delete: true)) {
      XCTAssertEqual($0 as? AgentClient.Failure, .closedWithoutAnswer(bytes: 0))
    }
  }

  func testWaitingLine() {
    XCTAssertEqual(
      WaitingLine.text(verb: "applying", source: "all.yaml", bytes: 13_490_470, seconds: 7),
      "applying all.yaml (13.5 MB)… 7s")
    XCTAssertEqual(WaitingLine.size(999), "999 bytes")
    XCTAssertEqual(WaitingLine.size(12_345), "12 kB")
    XCTAssertEqual(WaitingLine.size(1_000_000), "1.0 MB")
    XCTAssertEqual(WaitingLine.redraw("x"), "\rx\u{1B}[K")
  }

  private func listeningSocket(at path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
    }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard bound == 0, listen(fd, 1) == 0 else {
      close(fd)
      throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
    }
    return fd
  }
}

/// Ticks as the client reports them (from the calling thread only).
private final class TickLog: @unchecked Sendable {
  var values: [Int] = []
  func append(_ value: Int) { values.append(value) }
}
