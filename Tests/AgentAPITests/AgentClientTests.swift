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
}
