import CNIKit
import XCTest

@testable import KubernetesClient

final class ProtocolTests: XCTestCase {
  func testQueriesCarryTheSelectorsEncoded() {
    let followed = APIResource.followed(nodeName: "node-1", serviceProxyName: nil)
    let services = followed[0]
    XCTAssertEqual(
      services.listQuery(limit: 500, continueToken: nil, resourceVersion: "0"),
      "/api/v1/services?limit=500&resourceVersion=0&labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name"
    )
    XCTAssertEqual(
      services.watchQuery(resourceVersion: "42", timeoutSeconds: 300),
      "/api/v1/services?watch=true&resourceVersion=42&allowWatchBookmarks=true&timeoutSeconds=300&labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name"
    )
    XCTAssertEqual(
      followed[2].listQuery(limit: 10, continueToken: "abc=", resourceVersion: "0"),
      "/api/v1/nodes?limit=10&continue=abc%3D&fieldSelector=metadata.name%3Dnode-1")
    XCTAssertEqual(followed[1].path, "/apis/discovery.k8s.io/v1/endpointslices")
    XCTAssertEqual(followed[3].fieldSelector, "spec.nodeName=node-1")
    XCTAssertEqual(
      followed.map(\.rbacName),
      [
        "services", "endpointslices.discovery.k8s.io", "nodes", "pods",
        "localredirectpolicies.junction.io", "ciliumlocalredirectpolicies.cilium.io",
        "ciliumenvoyconfigs.cilium.io", "ciliumclusterwideenvoyconfigs.cilium.io",
        "ingresses.networking.k8s.io", "secrets",
      ])
    XCTAssertEqual(
      followed[9].listQuery(limit: 10, continueToken: nil, resourceVersion: "0"),
      "/api/v1/secrets?limit=10&resourceVersion=0&fieldSelector=type%3Dkubernetes.io%2Ftls")
    XCTAssertEqual(
      APIResource.serviceSelector(serviceProxyName: "junction"),
      "!service.kubernetes.io/headless,service.kubernetes.io/service-proxy-name=junction")
  }

  func testSplitterFindsObjectsAcrossChunkBoundaries() {
    var splitter = JSONStreamSplitter()
    let stream =
      #"{"type":"ADDED","object":{"metadata":{"name":"a}{\"b"}}}"# + "\n"
      + #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}"# + "\n"
    var objects: [[UInt8]] = []
    let bytes = Array(stream.utf8)
    // Every split point: the same two objects come out.
    for cut in 0...bytes.count {
      splitter = JSONStreamSplitter()
      objects = splitter.feed(bytes[..<cut]) + splitter.feed(bytes[cut...])
      XCTAssertEqual(objects.count, 2, "cut at \(cut)")
      XCTAssertEqual(splitter.pendingCount, 0)
    }
    let first = try? WatchEvent.decode(objects[0])
    XCTAssertEqual(first?.type, .added)
    XCTAssertEqual(first?.object["metadata"]?["name"]?.stringValue, #"a}{"b"#)
    XCTAssertEqual(try? WatchEvent.decode(objects[1]).object.resourceVersion, "7")
  }

  /// A line between objects that is not one (a stray quote or brace among it) comes out on
  /// its own, for the decoder to reject, and the objects after it are still found.
  func testSplitterHandsOnALineThatIsNotAnObjectAndGoesOn() throws {
    let stream =
      #"{"type":"ADDED","object":{"metadata":{"name":"a"}}}"# + "\n" + #"oops "}"# + "\n"
      + "}\n" + #"{"type":"ADDED","object":{"metadata":{"name":"b"}}}"# + "\n"
    let bytes = Array(stream.utf8)
    for cut in 0...bytes.count {
      var splitter = JSONStreamSplitter()
      let pieces = splitter.feed(bytes[..<cut]) + splitter.feed(bytes[cut...])
      XCTAssertEqual(pieces.count, 4, "cut at \(cut)")
      XCTAssertEqual(splitter.pendingCount, 0, "cut at \(cut)")
      guard pieces.count == 4 else { continue }
      XCTAssertEqual(String(decoding: pieces[1], as: UTF8.self), #"oops "}"#)
      XCTAssertThrowsError(try WatchEvent.decode(pieces[1]))
      XCTAssertThrowsError(try WatchEvent.decode(pieces[2]))
      XCTAssertEqual(try WatchEvent.decode(pieces[3]).object["metadata"]?["name"]?.stringValue, "b")
    }
  }

  func testStatusesBecomeOneLineMessages() {
    let slices = APIResource.followed(nodeName: "n", serviceProxyName: nil)[1]
    let forbidden = APIError.from(
      statusCode: 403,
      body: Array(#"{"kind":"Status","message":"endpointslices is forbidden","code":403}"#.utf8),
      verb: "watch", resource: slices)
    XCTAssertEqual(
      forbidden.description,
      "403 Forbidden: RBAC does not allow watch on endpointslices.discovery.k8s.io (add it to the agent's ClusterRole)"
    )
    XCTAssertEqual(
      APIError.from(statusCode: 401, body: [], verb: "list", resource: slices),
      .unauthorized(detail: ""))
    XCTAssertEqual(
      APIError.from(statusCode: 404, body: [], verb: "list", resource: slices),
      .notInstalled(resource: "endpointslices.discovery.k8s.io"))
    let gone = APIError.fromStatus(
      [
        "kind": "Status", "status": "Failure", "message": "too old resource version: 1 (3171407)",
        "reason": "Expired", "code": 410,
      ], resource: slices)
    XCTAssertEqual(gone, .expired(detail: "too old resource version: 1 (3171407)"))
    XCTAssertTrue(gone.needsRelist)
    XCTAssertFalse(APIError.unreachable(server: "s", detail: "d").needsRelist)
    // A code out of Int's range or not whole (found by the k8s-api fuzz harness: it trapped)
    // is no code: the error reads as a 500.
    for code in [JSONValue.number(91e99), .number(-1e300), .number(403.5)] {
      XCTAssertEqual(
        APIError.fromStatus(
          ["kind": "Status", "status": "Failure", "message": "m", "code": code], resource: slices),
        .status(code: 500, detail: "m"), "\(code)")
    }
  }

  func testListPageDecodesARealServersShape() throws {
    let body = #"""
      {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"12","continue":"tok"},
       "items":[{"metadata":{"name":"a","namespace":"default","resourceVersion":"5"},"spec":{}}]}
      """#
    let page = try ListPage.decode(Array(body.utf8))
    XCTAssertEqual(page.resourceVersion, "12")
    XCTAssertEqual(page.continueToken, "tok")
    XCTAssertEqual(page.items.count, 1)
    XCTAssertNil(page.items[0]["kind"])
    let store = InformerStore(
      resource: APIResource.followed(nodeName: "n", serviceProxyName: nil)[0])
    let whole = store.completed(page.items[0])
    XCTAssertEqual(whole["kind"]?.stringValue, "Service")
    XCTAssertEqual(whole["apiVersion"]?.stringValue, "v1")
    let last = try ListPage.decode(
      Array(#"{"metadata":{"resourceVersion":"3","continue":""},"items":null}"#.utf8))
    XCTAssertNil(last.continueToken)
    XCTAssertEqual(last.items, [])
  }

  /// A page keeps its body and reads each item when reached: the same items, however they
  /// are spelled (brackets and escapes inside strings, blanks, a repeated `items`).
  func testListPageItemsAreReadOneByOneFromTheBody() throws {
    let body = #"""
      { "items" : [ 1 ], "metadata":{"resourceVersion":"7"},
        "items": [ {"a":"]},\"[{"} , [ ] ,{"b":[1,2,{"c":null}]}, "x\u00e9" ,-1.5e2 ] }
      """#
    let page = try ListPage.decode(Array(body.utf8))
    XCTAssertEqual(page.itemCount, 5)
    let expected: [JSONValue] = [
      ["a": .string("]},\"[{")], .array([]), ["b": .array([1, 2, ["c": .null]])], .string("xé"),
      .number(-150),
    ]
    XCTAssertEqual(page.items, expected)
    var iterator = page.makeItemIterator()
    XCTAssertEqual(iterator.next(), expected[0])
    XCTAssertEqual(iterator.next(), expected[1])
    // What is not JSON anywhere in the body, an item included, refuses the page.
    for broken in [
      #"{"items":[{"a":1},{"b":]}"#, #"{"items":[1,2"#, #"{"items":{}}"#, #"{"metadata":{}}"#,
      #"[{"items":[]}]"#,
    ] {
      XCTAssertThrowsError(try ListPage.decode(Array(broken.utf8)), broken)
    }
  }
}

final class ServerAddressCheckTests: XCTestCase {
  func testHostsOfServerURLs() {
    XCTAssertEqual(ServerAddressCheck.host(of: "https://10.96.0.1:443"), "10.96.0.1")
    XCTAssertEqual(ServerAddressCheck.host(of: "https://10.96.0.1"), "10.96.0.1")
    XCTAssertEqual(ServerAddressCheck.host(of: "https://[FD00::1]:6443/prefix"), "fd00::1")
    XCTAssertEqual(ServerAddressCheck.host(of: "https://api.example:6443"), "api.example")
    XCTAssertNil(ServerAddressCheck.host(of: "10.96.0.1:443"))
  }

  func testAServerBehindAFrontendTheAgentTranslatesIsNamed() throws {
    let frontends = [
      ServerAddressCheck.Frontend(service: "default/kubernetes", addresses: ["10.96.0.1"]),
      ServerAddressCheck.Frontend(service: "web/lb", addresses: ["10.96.0.9", "203.0.113.7"]),
    ]
    let warning = try XCTUnwrap(
      ServerAddressCheck.warning(server: "https://10.96.0.1:443", frontends: frontends))
    XCTAssertTrue(
      warning.contains("10.96.0.1 is a frontend of Service default/kubernetes"), warning)
    XCTAssertTrue(warning.contains("--k8s-api-server"), warning)
    XCTAssertNotNil(
      ServerAddressCheck.warning(server: "https://203.0.113.7:6443", frontends: frontends))
    XCTAssertNil(
      ServerAddressCheck.warning(server: "https://172.30.0.1:6443", frontends: frontends))
    XCTAssertNil(ServerAddressCheck.warning(server: "https://api.example", frontends: frontends))
    XCTAssertNil(ServerAddressCheck.warning(server: "https://10.96.0.1", frontends: []))
  }
}
