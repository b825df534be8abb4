import CNIKit
import XCTest

@testable import KubernetesClient

final class ReflectorTests: XCTestCase {
  /// Jitter fixed at its top, so delays are the base delays.
  func reflector() -> Reflector { Reflector(backoff: Backoff(random: { 0.999_999_9 })) }

  func testListsFromTheCacheThenWatchesFromTheListVersion() {
    var reflector = reflector()
    XCTAssertEqual(reflector.start(), .init(delay: 0, step: .list(resourceVersion: "0")))
    XCTAssertEqual(
      reflector.listed(resourceVersion: "100"),
      .init(delay: 0, step: .watch(resourceVersion: "100")))
  }

  func testACleanEndResumesFromTheLastVersionSeenWithoutRelisting() {
    var reflector = reflector()
    _ = reflector.listed(resourceVersion: "100")
    reflector.observed(resourceVersion: "105")
    reflector.observed(resourceVersion: "120")  // a bookmark
    XCTAssertEqual(
      reflector.watchEnded(events: 2, duration: 300, error: nil),
      .init(delay: 0, step: .watch(resourceVersion: "120")))
    XCTAssertEqual(reflector.relists, 0)
    // A dropped connection: the same, after a backoff.
    let action = reflector.watchEnded(
      events: 0, duration: 5, error: .unreachable(server: "s", detail: "reset"))
    XCTAssertEqual(action.step, .watch(resourceVersion: "120"))
    XCTAssertGreaterThan(action.delay, 0.7)
    XCTAssertEqual(reflector.relists, 0)
  }

  func testGoneRelistsAsAConsistentReadAndARepeatBacksOff() {
    var reflector = reflector()
    _ = reflector.listed(resourceVersion: "100")
    let first = reflector.watchEnded(events: 0, duration: 0.01, error: .expired(detail: "too old"))
    XCTAssertEqual(first, .init(delay: 0, step: .list(resourceVersion: nil)))
    _ = reflector.listed(resourceVersion: "200")
    let second = reflector.watchEnded(events: 0, duration: 0.01, error: .expired(detail: "too old"))
    XCTAssertEqual(second.step, .list(resourceVersion: nil))
    XCTAssertGreaterThan(second.delay, 0.7)
    XCTAssertEqual(reflector.relists, 2)
  }

  func testAWatchClosedAtOnceWithNoEventRelists() {
    var reflector = reflector()
    _ = reflector.listed(resourceVersion: "100")
    let action = reflector.watchEnded(events: 0, duration: 0.05, error: nil)
    XCTAssertEqual(action.step, .list(resourceVersion: nil))
    XCTAssertEqual(reflector.relists, 1)
  }

  func testBackoffIsCappedExponentialWithJitter() {
    var backoff = Backoff(random: { 0.999_999_9 })
    let delays = (0..<8).map { _ in backoff.next() }
    XCTAssertEqual(
      delays.map { ($0 * 10).rounded() / 10 }, [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30])
    var low = Backoff(random: { 0 })
    XCTAssertEqual(low.next(), 0.4)
    backoff.reset()
    XCTAssertEqual(backoff.failures, 0)
  }

  func testListFailuresRetryTheSameListAndAMissingCRDWaitsTheCap() {
    var reflector = reflector()
    let action = reflector.listFailed(.unauthorized(detail: "x"), requested: "0")
    XCTAssertEqual(action.step, .list(resourceVersion: "0"))
    XCTAssertEqual(
      reflector.listFailed(.expired(detail: "continue"), requested: "0").step,
      .list(resourceVersion: nil))
    XCTAssertEqual(
      reflector.listFailed(.notInstalled(resource: "x"), requested: "0"),
      .init(delay: 30, step: .list(resourceVersion: "0")))
  }

  func testTheStoreHandsOnOnlyRealChanges() throws {
    let resource = APIResource.followed(nodeName: "n", serviceProxyName: nil)[0]
    var store = InformerStore(resource: resource)
    func service(_ name: String, _ version: String) -> JSONValue {
      [
        "metadata": [
          "name": .string(name), "namespace": "default", "resourceVersion": .string(version),
        ]
      ]
    }
    let first = store.replace(with: [service("a", "1"), service("b", "2"), ["metadata": [:]]])
    XCTAssertEqual(first.changes.map(\.key.description), ["default/a", "default/b"])
    XCTAssertEqual(first.unnamed, 1)
    // The same list again: nothing.
    XCTAssertEqual(store.replace(with: [service("b", "2"), service("a", "1")]).changes, [])
    // An unchanged ADDED (a watch from "0" replays): nothing; a change: one upsert.
    XCTAssertNil(try store.apply(WatchEvent(type: .added, object: service("a", "1"))))
    XCTAssertEqual(
      try store.apply(WatchEvent(type: .modified, object: service("a", "3")))?.key.description,
      "default/a")
    // A relist after a disconnect: b was deleted meanwhile, c added.
    let relist = store.replace(with: [service("a", "3"), service("c", "9")])
    XCTAssertEqual(relist.changes.count, 2)
    guard case .upsert(let added, _) = relist.changes[0],
      case .delete(let gone, let last) = relist.changes[1]
    else { return XCTFail("\(relist.changes)") }
    XCTAssertEqual(added.name, "c")
    XCTAssertEqual(gone.name, "b")
    XCTAssertEqual(last.resourceVersion, "2")
    XCTAssertEqual(last["kind"]?.stringValue, "Service")
    XCTAssertNil(try store.apply(WatchEvent(type: .deleted, object: service("zz", "1"))))
    XCTAssertThrowsError(try store.apply(WatchEvent(type: .added, object: ["spec": [:]])))
  }

  /// A delete hands on the identity the object came with, whether it is the usual one (kept
  /// as two strings) or not (kept whole): other kind or apiVersion, a namespace of "", a
  /// number where a string belongs, no uid.
  func testACompactUIDGivesBackTheSameText() {
    for _ in 0..<200 {
      let text = UUID().uuidString.lowercased()
      XCTAssertEqual(CompactUID(text)?.text, text)
    }
    for text in [
      "", "u", "0B6F2D84-5D1E-4A5C-9F0E-6A1E2C3D4E5F", "0b6f2d84-5d1e-4a5c-9f0e-6a1e2c3d4e5",
      "0b6f2d84-5d1e-4a5c-9f0e-6a1e2c3d4e5f0", "0b6f2d8405d1e-4a5c-9f0e-6a1e2c3d4e5f",
      "0b6f2d84-5d1e-4a5c-9f0e-6a1e2c3d4e5g", "{b6f2d84-5d1e-4a5c-9f0e-6a1e2c3d4e5f",
    ] {
      XCTAssertNil(CompactUID(text), text)
    }
  }

  func testADeleteHandsOnTheIdentityAsItCame() throws {
    let resource = APIResource.followed(nodeName: "n", serviceProxyName: nil)[0]
    func identity(_ object: JSONValue) -> JSONValue {
      var metadata: [String: JSONValue] = [:]
      for name in ["name", "namespace", "uid", "resourceVersion"] {
        metadata[name] = object["metadata"]?[name]
      }
      return [
        "kind": object["kind"] ?? .string(resource.kind),
        "apiVersion": object["apiVersion"] ?? .string(resource.apiVersion),
        "metadata": .object(metadata),
      ]
    }
    let fixed: [JSONValue] = [
      [
        "metadata": [
          "name": "usual", "namespace": "default", "uid": "0b6f2d84-5d1e-4a5c-9f0e-6a1e2c3d4e5f",
          "resourceVersion": "12", "labels": ["a": "b"],
        ]
      ],
      ["metadata": ["name": "cluster-scoped", "resourceVersion": "3"]],
      ["kind": "Other", "metadata": ["name": "kind", "namespace": "x", "resourceVersion": "4"]],
      ["apiVersion": "v2", "metadata": ["name": "version", "namespace": "x"]],
      ["metadata": ["name": "empty-namespace", "namespace": "", "uid": "u"]],
      ["metadata": ["name": "number", "namespace": "x", "resourceVersion": 7]],
    ]
    // Uids near the form the compact identity keeps (a lowercase UUID), and at its edges:
    // each handed on as it came.
    let uids = [
      "upper": "0B6F2D84-5D1E-4A5C-9F0E-6A1E2C3D4E5F",
      "long": "0b6f2d84-5d1e-4a5c-9f0e-6a1e2c3d4e5f0",
      "short": "0b6f2d84-5d1e-4a5c-9f0e-6a1e2c3d4e5",
      "hyphen": "0b6f2d845-d1e-4a5c-9f0e-6a1e2c3d4e5f",
      "zeros": "00000000-0000-0000-0000-000000000000",
      "ones": "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ]
    let objects =
      fixed
      + uids.sorted { $0.key < $1.key }.map { name, uid -> JSONValue in
        ["metadata": ["name": .string(name), "namespace": "x", "uid": .string(uid)]]
      }
    var store = InformerStore(resource: resource)
    XCTAssertEqual(store.replace(with: objects).changes.count, objects.count)
    for object in objects {
      let change = try store.apply(WatchEvent(type: .deleted, object: object))
      guard case .delete(_, let last) = change else {
        return XCTFail("\(String(describing: change))")
      }
      XCTAssertEqual(last, identity(store.completed(object)), "\(object)")
    }
    XCTAssertEqual(store.count, 0)
  }
}
