import CNIKit
import XCTest

@testable import ServiceCore

final class ClusterMirrorTests: XCTestCase {
  func service(_ name: String, ip: String, port: Int = 80, version: String = "1") -> YAMLValue {
    YAMLValue(
      json: [
        "kind": "Service", "apiVersion": "v1",
        "metadata": [
          "name": .string(name), "namespace": "default", "resourceVersion": .string(version),
        ],
        "spec": [
          "clusterIP": .string(ip), "ports": [["port": .number(Double(port)), "protocol": "TCP"]],
        ],
      ])
  }

  func testJSONNumbersBecomeYAMLIntegers() {
    XCTAssertEqual(YAMLValue(json: .number(80)), .int(80))
    XCTAssertEqual(YAMLValue(json: .number(0.5)), .float(0.5))
    XCTAssertEqual(
      YAMLValue(json: ["a": [true, .null]]), .map(["a": .list([.bool(true), .null])]))
  }

  func testOnlyRealChangesBecomeEdits() {
    var mirror = ClusterMirror()
    XCTAssertEqual(mirror.upsert(service("web", ip: "10.96.0.1")), [])
    XCTAssertEqual(mirror.takePending().edits.map(\.key.name), ["web"])
    // Delivered again with a new resourceVersion and nothing Junction reads changed: no edit.
    mirror.upsert(service("web", ip: "10.96.0.1", version: "2"))
    XCTAssertFalse(mirror.hasPending)
    mirror.upsert(service("web", ip: "10.96.0.1", port: 8080, version: "3"))
    XCTAssertTrue(mirror.hasPending)
    mirror.remove(ResourceKey(kind: .service, namespace: "default", name: "web"))
    let edits = mirror.takePending().edits
    XCTAssertEqual(edits.count, 1)
    guard case .remove = edits[0] else { return XCTFail("\(edits)") }
    // Removing what is not there: nothing.
    mirror.remove(ResourceKey(kind: .service, namespace: "default", name: "web"))
    XCTAssertFalse(mirror.hasPending)
  }

  func testTheSyncIsOneDiffFromTheRestoredState() {
    var restored = ResourceSet()
    for name in ["kept", "changed", "gone"] {
      let decoded = ResourceDecoder.decode(documents: [service(name, ip: "10.96.1.\(name.count)")])
      restored.upsert(decoded.resources[0])
    }
    var mirror = ClusterMirror()
    mirror.upsert(service("kept", ip: "10.96.1.4", version: "9"))
    mirror.upsert(service("changed", ip: "10.96.9.9"))
    mirror.upsert(service("new", ip: "10.96.2.1"))
    let edits = mirror.syncEdits(against: restored)
    XCTAssertEqual(
      edits.map { edit -> String in
        switch edit {
        case .upsert(let resource, _): "upsert \(resource.key.name)"
        case .remove(let key): "remove \(key.name)"
        }
      }, ["upsert changed", "upsert new", "remove gone"])
    XCTAssertFalse(mirror.hasPending)
    // The same cluster again (a relist that found nothing changed): no edit at all.
    XCTAssertEqual(
      mirror.syncEdits(against: ResourceSet(mirror.objects.values.map(\.resource))).count, 0)
  }

  func testAMalformedServiceAmongAHundredIsSkippedAndNamed() {
    var mirror = ClusterMirror()
    var problems: [String] = []
    for index in 0..<100 {
      problems += mirror.upsert(
        service("web-\(index)", ip: "10.96.\(index / 200).\(index % 200 + 1)"))
      if index == 50 { problems += mirror.upsert(service("bad", ip: "10.96.7.7", port: 70000)) }
    }
    XCTAssertEqual(mirror.objects.count, 100)
    XCTAssertEqual(mirror.skipped, 1)
    XCTAssertTrue(
      problems.contains(
        "Service default/bad: spec.ports[0].port: 70000 is not a valid port (1-65535)"),
      "\(problems)")
    XCTAssertTrue(problems.allSatisfy { $0.hasPrefix("Service default/bad: ") }, "\(problems)")
    XCTAssertEqual(mirror.takePending().edits.count, 100)
  }

  func testTriggerTimesAndLatency() throws {
    var mirror = ClusterMirror()
    mirror.upsert(
      YAMLValue(json: [
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": [
          "name": "web-abc", "namespace": "default",
          "labels": ["kubernetes.io/service-name": "web"],
          "annotations": [
            "endpoints.kubernetes.io/last-change-trigger-time": "2026-12-06T02:19:10Z"
          ],
        ],
        "addressType": "IPv4", "endpoints": [], "ports": [],
      ]))
    XCTAssertEqual(mirror.takePending().triggerTimes, ["2026-12-06T02:19:10Z"])
    XCTAssertEqual(RFC3339.seconds("1970-01-01T00:00:00Z"), 0)
    XCTAssertEqual(RFC3339.seconds("2026-12-06T02:19:10Z"), 1_796_523_550)
    XCTAssertEqual(RFC3339.seconds("2026-12-06T03:19:10.5+01:00"), 1_796_523_550.5)
    XCTAssertNil(RFC3339.seconds("yesterday"))
    var window = LatencyWindow(capacity: 100)
    for value in 1...200 { window.record(Double(value)) }
    XCTAssertEqual(window.count, 200)
    XCTAssertEqual(window.percentile(0.5), 150)
    XCTAssertEqual(window.percentile(0.99), 199)
  }
}
