import CNIKit
import Logging
import Synchronization
import XCTest

@testable import KubernetesClient

/// Canned answers, one per request in order; every request is recorded.
final class ScriptedTransport: APITransport {
  enum Answer {
    case page(ListPage)
    case events([WatchEvent])
    /// These events, then the stream fails (a line that is not an event, a broken stream).
    case eventsThenFailure([WatchEvent], APIError)
    case failure(APIError)
    /// A watch that stays open until the informer is cancelled.
    case hang
  }
  let script: Mutex<[Answer]>
  let requests = Mutex<[String]>([])
  /// Each LIST's `limit`.
  let limits = Mutex<[Int]>([])

  init(_ answers: [Answer]) { script = Mutex(answers) }

  private func next(_ request: String) -> Answer {
    requests.withLock { $0.append(request) }
    return script.withLock { $0.isEmpty ? .hang : $0.removeFirst() }
  }

  func list(_ resource: APIResource, limit: Int, continueToken: String?, resourceVersion: String?)
    async throws(APIError) -> ListPage
  {
    limits.withLock { $0.append(limit) }
    switch next("list rv=\(resourceVersion ?? "-") continue=\(continueToken ?? "-")") {
    case .page(let page): return page
    case .failure(let error): throw error
    default: throw .malformed(detail: "script: a list was not expected")
    }
  }

  func watch(_ resource: APIResource, resourceVersion: String, timeoutSeconds: Int)
    async throws(APIError) -> AsyncThrowingStream<WatchEvent, any Error>
  {
    switch next("watch rv=\(resourceVersion)") {
    case .events(let events):
      return AsyncThrowingStream { continuation in
        for event in events { continuation.yield(event) }
        continuation.finish()
      }
    case .eventsThenFailure(let events, let error):
      return AsyncThrowingStream { continuation in
        for event in events { continuation.yield(event) }
        continuation.finish(throwing: error)
      }
    case .hang:
      return AsyncThrowingStream { _ in }
    case .failure(let error): throw error
    case .page: throw .malformed(detail: "script: a watch was not expected")
    }
  }
}

final class InformerTests: XCTestCase {
  let services = APIResource.followed(nodeName: "n", serviceProxyName: nil)[0]

  func service(_ name: String, _ version: String) -> JSONValue {
    [
      "metadata": [
        "name": .string(name), "namespace": "default", "resourceVersion": .string(version),
      ]
    ]
  }

  func testPagesWatchResumeGoneRelistAndOnlyRealChanges() async throws {
    let transport = ScriptedTransport([
      .page(ListPage(items: [service("a", "1")], resourceVersion: "10", continueToken: "p2")),
      .page(ListPage(items: [service("b", "2")], resourceVersion: "10", continueToken: nil)),
      .events([
        WatchEvent(type: .added, object: service("c", "11")),
        WatchEvent(type: .bookmark, object: ["metadata": ["resourceVersion": "15"]]),
      ]),
      .events([
        WatchEvent(
          type: .error,
          object: ["kind": "Status", "code": 410, "reason": "Expired", "message": "too old"])
      ]),
      // The relist: b was deleted while the watch was gone; a and c unchanged.
      .page(
        ListPage(
          items: [service("a", "1"), service("c", "11")], resourceVersion: "30", continueToken: nil)
      ),
    ])
    let deliveries = Mutex<[InformerDelivery]>([])
    let informer = Informer(
      resource: services, transport: transport, logger: Logger(label: "test"), pageSize: 1,
      watchTimeout: { 300 }, deliver: { delivery in deliveries.withLock { $0.append(delivery) } })
    let task = Task { await informer.run(backoff: Backoff(initial: 0.001, cap: 0.01)) }
    for _ in 0..<200 where transport.requests.withLock({ $0.count }) < 6 {
      try await Task.sleep(for: .milliseconds(10))
    }
    task.cancel()
    await task.value

    XCTAssertEqual(
      transport.requests.withLock { $0 },
      [
        "list rv=0 continue=-", "list rv=0 continue=p2", "watch rv=10", "watch rv=15",
        "list rv=- continue=-", "watch rv=30",
      ])
    let seen = deliveries.withLock { $0 }
    // The first page is handed on as it arrives (a part), the list ends with the last one.
    XCTAssertEqual(seen.map(\.isListPart), [true, false, false, false])
    XCTAssertEqual(seen.map(\.isList), [false, true, false, true])
    XCTAssertEqual(seen[0].changes.map(\.key.name), ["a"])
    XCTAssertEqual(seen[1].changes.map(\.key.name), ["b"])
    XCTAssertEqual(seen[2].changes.map(\.key.name), ["c"])
    // Only b's delete: a and c came back unchanged.
    XCTAssertEqual(seen[3].changes.count, 1)
    guard case .delete(let key, _) = seen[3].changes.first else { return XCTFail() }
    XCTAssertEqual(key.name, "b")
    let status = informer.status
    XCTAssertTrue(status.synced)
    XCTAssertEqual(status.objects, 2)
    XCTAssertEqual(status.relists, 1)
    XCTAssertNil(status.lastError)
  }

  /// Runs an informer over `transport` until it has synced (or 2 s), and what it handed on.
  private func deliveriesUntilSynced(_ transport: ScriptedTransport, pageSize: Int, batchSize: Int)
    async throws -> (Informer, [InformerDelivery])
  {
    let deliveries = Mutex<[InformerDelivery]>([])
    let informer = Informer(
      resource: services, transport: transport, logger: Logger(label: "test"),
      pageSize: pageSize, batchSize: batchSize, watchTimeout: { 300 },
      deliver: { delivery in deliveries.withLock { $0.append(delivery) } })
    let task = Task { await informer.run(backoff: Backoff(initial: 0.001, cap: 0.01)) }
    for _ in 0..<200 where !informer.status.synced {
      try await Task.sleep(for: .milliseconds(10))
    }
    task.cancel()
    await task.value
    return (informer, deliveries.withLock { $0 })
  }

  /// A page is handed on `batchSize` objects at a time, the list ending with its last batch.
  func testAPageIsHandedOnInBatches() async throws {
    let transport = ScriptedTransport([
      .page(
        ListPage(
          items: (1...5).map { service("s\($0)", "\($0)") }, resourceVersion: "10",
          continueToken: nil))
    ])
    let (_, seen) = try await deliveriesUntilSynced(transport, pageSize: 500, batchSize: 2)
    XCTAssertEqual(seen.map(\.isListPart), [true, true, false])
    XCTAssertEqual(seen.map(\.isList), [false, false, true])
    XCTAssertEqual(
      seen.map { $0.changes.map(\.key.name) }, [["s1", "s2"], ["s3", "s4"], ["s5"]])
    XCTAssertEqual(transport.limits.withLock { $0 }, [500], "a page's limit is not the batch")
  }

  /// A list that fails after its first page was handed on leaves the cache as it was: the
  /// relist hands that page on again, and only the finished list syncs.
  func testAListFailingPartWayLeavesTheCacheAndIsReadAgain() async throws {
    let transport = ScriptedTransport([
      .page(ListPage(items: [service("a", "1")], resourceVersion: "10", continueToken: "p2")),
      .failure(.unreachable(server: "s", detail: "connection reset")),
      .page(ListPage(items: [service("a", "1")], resourceVersion: "12", continueToken: "p2")),
      .page(ListPage(items: [service("b", "2")], resourceVersion: "12", continueToken: nil)),
    ])
    let (informer, seen) = try await deliveriesUntilSynced(transport, pageSize: 1, batchSize: 100)
    XCTAssertEqual(seen.map(\.isListPart), [true, true, false])
    XCTAssertEqual(seen.map(\.isList), [false, false, true])
    XCTAssertEqual(seen.map { $0.changes.map(\.key.name) }, [["a"], ["a"], ["b"]])
    XCTAssertEqual(informer.status.objects, 2)
    XCTAssertEqual(informer.status.errors, 1)
  }

  /// A watch line that is not an event (the stream throws `malformed`) ends that watch: it
  /// is counted, the events before it are delivered, and the watch resumes from the last
  /// version seen without a relist.
  func testAWatchEventThatIsNotJSONEndsTheWatchWhichResumesCounted() async throws {
    let transport = ScriptedTransport([
      .page(ListPage(items: [service("a", "1")], resourceVersion: "10", continueToken: nil)),
      .eventsThenFailure(
        [WatchEvent(type: .added, object: service("b", "11"))],
        .malformed(detail: "watch event is not JSON: {not json}")),
      .events([WatchEvent(type: .added, object: service("c", "12"))]),
    ])
    let deliveries = Mutex<[InformerDelivery]>([])
    let informer = Informer(
      resource: services, transport: transport, logger: Logger(label: "test"),
      watchTimeout: { 300 }, deliver: { delivery in deliveries.withLock { $0.append(delivery) } })
    let task = Task { await informer.run(backoff: Backoff(initial: 0.001, cap: 0.01)) }
    for _ in 0..<200 where deliveries.withLock({ $0.count }) < 3 {
      try await Task.sleep(for: .milliseconds(10))
    }
    task.cancel()
    await task.value
    XCTAssertEqual(
      Array(transport.requests.withLock { $0 }.prefix(3)),
      ["list rv=0 continue=-", "watch rv=10", "watch rv=11"])
    XCTAssertEqual(
      deliveries.withLock { $0 }.flatMap { $0.changes.map(\.key.name) }, ["a", "b", "c"])
    let status = informer.status
    XCTAssertEqual(status.errors, 1)
    XCTAssertEqual(status.relists, 0)
    XCTAssertEqual(status.objects, 3)
  }

  func testFailuresAreCountedAndAMissingCRDIsSyncedEmpty() async throws {
    let policies = APIResource.followed(nodeName: "n", serviceProxyName: nil)[5]
    let transport = ScriptedTransport([
      .failure(.forbidden(verb: "list", resource: policies.rbacName, detail: "")),
      .failure(.notInstalled(resource: policies.rbacName)),
    ])
    let informer = Informer(resource: policies, transport: transport, logger: Logger(label: "t")) {
      _ in
    }
    let task = Task { await informer.run(backoff: Backoff(initial: 0.001, cap: 5)) }
    for _ in 0..<200 where !informer.status.notInstalled {
      try await Task.sleep(for: .milliseconds(10))
    }
    task.cancel()
    await task.value
    let status = informer.status
    XCTAssertTrue(status.synced)
    XCTAssertTrue(status.notInstalled)
    XCTAssertEqual(status.errors, 1)
    XCTAssertEqual(
      status.lastError,
      "ciliumlocalredirectpolicies.cilium.io is not installed (404); checked again later")
  }
}
