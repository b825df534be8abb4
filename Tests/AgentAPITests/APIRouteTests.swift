import XCTest

@testable import AgentCore

final class APIRouteTests: XCTestCase {
  func testKnownRoutes() {
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/healthz"), .health)
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/config"), .config)
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/endpoints"), .listEndpoints)
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/endpoints/"), .listEndpoints)
    XCTAssertEqual(
      APIRoute.resolve(method: "GET", path: "/v1/endpoints/abc:eth0"), .getEndpoint(id: "abc:eth0"))
    XCTAssertEqual(
      APIRoute.resolve(method: "PUT", path: "/v1/endpoints/abc:eth0"), .putEndpoint(id: "abc:eth0"))
    XCTAssertEqual(
      APIRoute.resolve(method: "DELETE", path: "/v1/endpoints/abc:eth0"),
      .deleteEndpoint(id: "abc:eth0"))
  }

  func testPercentEncodedIDsAreDecoded() {
    XCTAssertEqual(
      APIRoute.resolve(method: "GET", path: "/v1/endpoints/abc%3Aeth0"),
      .getEndpoint(id: "abc:eth0"))
  }

  private func isBadID(
    _ method: String, _ path: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    guard case .badEndpointID(let message) = APIRoute.resolve(method: method, path: path) else {
      return XCTFail(
        "\(method) \(path) → \(APIRoute.resolve(method: method, path: path))", file: file,
        line: line)
    }
    XCTAssertFalse(message.isEmpty, file: file, line: line)
  }

  func testSlashesAndDotDotInIDsAreRefused() {
    for method in ["GET", "PUT", "DELETE"] {
      isBadID(method, "/v1/endpoints/a%2Fb:eth0")
      isBadID(method, "/v1/endpoints/a%2fb:eth0")
      isBadID(method, "/v1/endpoints/..")
      isBadID(method, "/v1/endpoints/%2E%2E")
      isBadID(method, "/v1/endpoints/a..b:eth0")
      isBadID(method, "/v1/endpoints/abc:eth0/extra")
      isBadID(method, "/v1/endpoints/../../etc/passwd")
      isBadID(method, "/v1/endpoints/no-colon")
      isBadID(method, "/v1/endpoints/bad%zz")
      isBadID(method, "/v1/endpoints/nul%00:eth0")
      isBadID(method, "/v1/endpoints/%FF:eth0")
    }
    isBadID("PUT", "/v1/endpoints/")
    isBadID("DELETE", "/v1/endpoints/")
    if case .badEndpointID(let message) = APIRoute.resolve(
      method: "GET", path: "/v1/endpoints/a%2Fb:eth0")
    {
      XCTAssertTrue(message.contains("'/'"), message)
    }
  }

  func testWrongMethods() {
    XCTAssertEqual(
      APIRoute.resolve(method: "POST", path: "/v1/healthz"), .methodNotAllowed(allowed: ["GET"]))
    XCTAssertEqual(
      APIRoute.resolve(method: "DELETE", path: "/v1/endpoints"), .methodNotAllowed(allowed: ["GET"])
    )
    XCTAssertEqual(
      APIRoute.resolve(method: "POST", path: "/v1/endpoints/abc:eth0"),
      .methodNotAllowed(allowed: ["GET", "PUT", "DELETE"]))
  }

  func testUnknownPaths() {
    for path in [
      "/", "/v1", "/v1/", "/v2/healthz", "/v1/service", "/v1/healthz/x", "healthz", "/v1/config/",
      "/v1/resources", "/v1/resources/patch",
    ] {
      XCTAssertEqual(APIRoute.resolve(method: "GET", path: path), .notFound(path: path), path)
    }
  }

  func testServiceRoutes() {
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/services"), .listServices)
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/lrp"), .listRedirectPolicies)
    XCTAssertEqual(
      APIRoute.resolve(method: "POST", path: "/v1/lrp"), .methodNotAllowed(allowed: ["GET"]))
    XCTAssertEqual(
      APIRoute.resolve(method: "POST", path: "/v1/resources/apply"), .changeResources(delete: false)
    )
    XCTAssertEqual(
      APIRoute.resolve(method: "POST", path: "/v1/resources/delete"), .changeResources(delete: true)
    )
    XCTAssertEqual(
      APIRoute.resolve(method: "PUT", path: "/v1/resources/apply"),
      .methodNotAllowed(allowed: ["POST"]))
    XCTAssertEqual(
      APIRoute.resolve(method: "DELETE", path: "/v1/services"), .methodNotAllowed(allowed: ["GET"]))
  }

  func testLoadBalancerMapRoute() {
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/bpf/lb"), .loadBalancerMaps)
    XCTAssertEqual(
      APIRoute.resolve(method: "POST", path: "/v1/bpf/lb"), .methodNotAllowed(allowed: ["GET"]))
    for path in ["/v1/bpf", "/v1/bpf/", "/v1/bpf/ct", "/v1/bpf/lb/x", "/v1/bpf/lb/"] {
      XCTAssertEqual(APIRoute.resolve(method: "GET", path: path), .notFound(path: path), path)
    }
  }

  func testDropCounterRoute() {
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/bpf/drops"), .dropCounters)
    XCTAssertEqual(
      APIRoute.resolve(method: "DELETE", path: "/v1/bpf/drops"),
      .methodNotAllowed(allowed: ["GET"]))
    for path in ["/v1/bpf/drops/", "/v1/bpf/drops/x"] {
      XCTAssertEqual(APIRoute.resolve(method: "GET", path: path), .notFound(path: path), path)
    }
  }

  func testFlowRoute() {
    XCTAssertEqual(APIRoute.resolve(method: "GET", path: "/v1/flows"), .flows)
    XCTAssertEqual(
      APIRoute.resolve(method: "POST", path: "/v1/flows"), .methodNotAllowed(allowed: ["GET"]))
    XCTAssertEqual(
      APIRoute.resolve(method: "GET", path: "/v1/flows/x"), .notFound(path: "/v1/flows/x"))
  }

  func testPercentDecode() {
    XCTAssertEqual(APIRoute.percentDecode("a%3Ab"), "a:b")
    XCTAssertEqual(APIRoute.percentDecode("%c3%a9"), "é")
    XCTAssertNil(APIRoute.percentDecode("%"))
    XCTAssertNil(APIRoute.percentDecode("%4"))
    XCTAssertNil(APIRoute.percentDecode("%g0"))
    XCTAssertNil(APIRoute.percentDecode("%00"))
    XCTAssertNil(APIRoute.percentDecode("%ff"))
    XCTAssertEqual(APIRoute.percentDecode("plain"), "plain")
  }
}
