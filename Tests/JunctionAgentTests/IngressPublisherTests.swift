import CNIKit
import KubernetesClient
import Logging
import ServiceCore
import Synchronization
import XCTest

@testable import JunctionAgent

/// The Ingress write side's loop: a failed write is retried from the newest state after a
/// backoff, and nothing is written before the follower has synced.
final class IngressPublisherTests: XCTestCase {
  /// Records the writes; the first `failing` creates fail as an unreachable server would.
  final class FakeWriter: APIWriter {
    let calls = Mutex<[String]>([])
    let failing: Mutex<Int>

    init(failing: Int) { self.failing = Mutex(failing) }

    func create(_ resource: APIResource, namespace: String, object: JSONValue)
      async throws(APIError) -> CreateOutcome
    {
      let name = object["metadata"]?["name"]?.stringValue ?? "?"
      calls.withLock { $0.append("create \(resource.plural) \(namespace)/\(name)") }
      let fail = failing.withLock { left in
        defer { left = max(0, left - 1) }
        return left > 0
      }
      if fail { throw .unreachable(server: "https://api", detail: "connection refused") }
      return .created
    }

    func mergePatch(
      _ resource: APIResource, namespace: String, name: String, patch: JSONValue, status: Bool
    ) async throws(APIError) {
      calls.withLock {
        $0.append("patch \(resource.plural)\(status ? "/status" : "") \(namespace)/\(name)")
      }
    }
  }

  private let ingress = """
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: web, namespace: shop, uid: u-1}
    spec:
      ingressClassName: junction
      defaultBackend: {service: {name: app, port: {number: 80}}}
    """

  private func wait(_ what: String, _ condition: () -> Bool) async throws {
    for _ in 0..<100 {
      if condition() { return }
      try await Task.sleep(for: .milliseconds(50))
    }
    XCTFail("timed out waiting for \(what)")
  }

  func testAFailedCreateIsRetriedAfterABackoffAndNothingIsWrittenBeforeTheSync() async throws {
    let writer = FakeWriter(failing: 1)
    let ready = Atomic<Bool>(false)
    let publisher = IngressPublisher(
      writer: writer, logger: Logger(label: "test"),
      isReady: { ready.load(ordering: .relaxed) })
    publisher.update(ResourceSet(ResourceDecoder.decode(yaml: ingress).resources))
    try await Task.sleep(for: .milliseconds(400))
    XCTAssertEqual(writer.calls.withLock { $0 }, [], "not synced: no write")
    ready.store(true, ordering: .relaxed)
    try await wait("the retry") { writer.calls.withLock { $0.count } == 2 }
    XCTAssertEqual(
      writer.calls.withLock { $0 },
      ["create services shop/junction-ingress-web", "create services shop/junction-ingress-web"])
  }
}
