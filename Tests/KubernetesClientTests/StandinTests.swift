import CNIKit
import Foundation
import Logging
import StandinSupport
import Synchronization
import XCTest

@testable import KubernetesClient

/// The client against tools/standin-apiserver over real TLS; and the stand-in itself checked
/// with the official Python client.
final class StandinTests: XCTestCase {
  let services = APIResource.followed(nodeName: "node-1", serviceProxyName: nil)[0]
  let readFile: FileReader = { path in Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

  func transport(_ server: StandinServer) throws -> HTTPTransport {
    let config = try ClusterConfig.kubeconfig(path: server.kubeconfig, readFile: readFile)
    return try HTTPTransport(config: config, readFile: readFile)
  }

  func testTheOfficialPythonClientListsAndWatchesThroughTheStandin() throws {
    let python = StandinServer.repository + "/.venv-standin/bin/python3"
    try requireOrSkip(
      FileManager.default.isExecutableFile(atPath: python),
      "the Python kubernetes client is not installed (install/deps.sh test makes .venv-standin)")
    let server = try StandinServer()
    let check = Process()
    check.executableURL = URL(fileURLWithPath: python)
    check.arguments = [
      StandinServer.repository + "/tools/standin-apiserver/check_python_client.py",
      server.directory,
    ]
    let output = Pipe()
    check.standardOutput = output
    check.standardError = output
    try check.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    check.waitUntilExit()
    XCTAssertEqual(check.terminationStatus, 0, text)
    XCTAssertTrue(text.contains("list, pages, selectors and watch agree"), text)
  }

  func testListPagesAndWatchOverVerifiedTLS() async throws {
    let server = try StandinServer()
    for index in 1...5 { try server.createService("web-\(index)", clusterIP: "10.96.0.\(index)") }
    try server.request(
      "POST", "/api/v1/namespaces/default/services",
      #"{"metadata":{"name":"headless","labels":{"service.kubernetes.io/headless":""}},"spec":{"clusterIP":"None"}}"#
    )
    let api = try transport(server)
    // RV "" pages (the server honours limit); the selector leaves out the headless one.
    var names: [String] = []
    var token: String?
    var pages = 0
    var version = ""
    repeat {
      let page = try await api.list(services, limit: 2, continueToken: token, resourceVersion: nil)
      names += page.items.compactMap { $0["metadata"]?["name"]?.stringValue }
      token = page.continueToken
      version = page.resourceVersion
      pages += 1
    } while token != nil
    XCTAssertEqual(pages, 3)
    XCTAssertEqual(names.sorted(), (1...5).map { "web-\($0)" })

    let stream = try await api.watch(services, resourceVersion: version, timeoutSeconds: 5)
    try server.createService("web-6", clusterIP: "10.96.0.6")
    try server.request("DELETE", "/api/v1/namespaces/default/services/web-1")
    var seen: [String] = []
    for try await event in stream where event.type != .bookmark {
      seen.append("\(event.type.rawValue) \(event.object["metadata"]?["name"]?.stringValue ?? "?")")
      if seen.count == 2 { break }
    }
    XCTAssertEqual(seen, ["ADDED web-6", "DELETED web-1"])
    await api.shutdown()
  }

  func testARotatedTokenFileIsReadForTheNextRequest() async throws {
    let server = try StandinServer()
    let api = try transport(server)
    _ = try await api.list(services, limit: 10, continueToken: nil, resourceVersion: "0")
    // The server now accepts only a new token: the client's file still has the old one.
    try "rotated-token\n".write(
      toFile: server.directory + "/tokens", atomically: true, encoding: .utf8)
    do {
      _ = try await api.list(services, limit: 10, continueToken: nil, resourceVersion: "0")
      XCTFail("the old token was accepted")
    } catch {
      XCTAssertEqual(error, .unauthorized(detail: "Unauthorized"))
      XCTAssertTrue(error.description.hasPrefix("401 Unauthorized"), error.description)
    }
    // The kubelet rewrites the projected token: the next request carries it.
    try "rotated-token".write(
      toFile: server.directory + "/token", atomically: true, encoding: .utf8)
    let page = try await api.list(services, limit: 10, continueToken: nil, resourceVersion: "0")
    XCTAssertEqual(page.items, [])
    await api.shutdown()
  }

  func testAWrongCAIsAClearErrorAndADownServerIsUnreachable() async throws {
    let server = try StandinServer()
    let other = try StandinServer()
    var config = try ClusterConfig.kubeconfig(
      path: server.directory + "/kubeconfig", readFile: readFile)
    config.certificateAuthority = try readFile(other.directory + "/ca.crt")
    let api = try HTTPTransport(config: config, readFile: readFile)
    do {
      _ = try await api.list(services, limit: 1, continueToken: nil, resourceVersion: "0")
      XCTFail("a server signed by another CA was trusted")
    } catch {
      guard case .untrustedCertificate = error else { return XCTFail("\(error)") }
      XCTAssertTrue(
        error.description.hasPrefix("API server \(server.url): certificate not trusted"),
        error.description)
    }
    await api.shutdown()
    other.stop()
    let gone = try ClusterConfig.kubeconfig(
      path: other.directory + "/kubeconfig", readFile: readFile)
    let down = try HTTPTransport(config: gone, readFile: readFile)
    do {
      _ = try await down.list(services, limit: 1, continueToken: nil, resourceVersion: "0")
      XCTFail("a stopped server answered")
    } catch {
      guard case .unreachable = error else { return XCTFail("\(error)") }
      XCTAssertTrue(
        error.description.hasPrefix("API server \(other.url) unreachable"), error.description)
    }
    await down.shutdown()
  }

  func testForbiddenNamesTheVerbAndResourceAndAMissingCRDIsNotFatal() async throws {
    let server = try StandinServer(arguments: [
      "--forbid", "watch:endpointslices.discovery.k8s.io", "--without",
      "ciliumlocalredirectpolicies.cilium.io",
    ])
    let api = try transport(server)
    let followed = APIResource.followed(nodeName: "node-1", serviceProxyName: nil)
    let informers = [followed[1], followed[5]].map { resource in
      Informer(resource: resource, transport: api, logger: Logger(label: "test")) { _ in }
    }
    let tasks = informers.map { informer in
      Task { await informer.run(backoff: Backoff(initial: 0.05, cap: 0.2)) }
    }
    for _ in 0..<100 where informers.contains(where: { $0.status.lastError == nil }) {
      try await Task.sleep(for: .milliseconds(50))
    }
    for task in tasks { task.cancel() }
    for task in tasks { await task.value }
    XCTAssertEqual(
      informers[0].status.lastError,
      "403 Forbidden: RBAC does not allow watch on endpointslices.discovery.k8s.io (add it to the agent's ClusterRole)"
    )
    XCTAssertTrue(informers[0].status.synced, "the list was allowed")
    XCTAssertNotNil(informers[0].status.failingSince)
    XCTAssertTrue(informers[1].status.notInstalled)
    XCTAssertTrue(informers[1].status.synced)
    await api.shutdown()
  }

  func testCompactionBeyondTheWindowRelistsAndAppliesMissedDeletesOnly() async throws {
    let server = try StandinServer(arguments: ["--bookmark-interval", "0.2"])
    for index in 1...3 { try server.createService("web-\(index)", clusterIP: "10.96.0.\(index)") }
    let api = try transport(server)
    let deliveries = Mutex<[InformerDelivery]>([])
    let informer = Informer(resource: services, transport: api, logger: Logger(label: "test")) {
      delivery in deliveries.withLock { $0.append(delivery) }
    }
    let task = Task { await informer.run(backoff: Backoff(initial: 0.05, cap: 0.2)) }
    func waitFor(_ what: String, _ condition: () -> Bool) async throws {
      for _ in 0..<200 where !condition() { try await Task.sleep(for: .milliseconds(25)) }
      XCTAssertTrue(condition(), what)
    }
    try await waitFor("the first list") { deliveries.withLock { $0.count } == 1 }
    // Within the window: a dropped watch resumes from its version, no relist. (Dropped once
    // it has delivered a bookmark: a watch closed at once with no event relists.)
    try await Task.sleep(for: .milliseconds(600))
    try server.request("POST", "/standin/drop-watches")
    try server.createService("web-4", clusterIP: "10.96.0.4")
    try await waitFor("web-4 through the resumed watch") { deliveries.withLock { $0.count } == 2 }
    XCTAssertEqual(informer.status.relists, 0)
    // Beyond it: web-2 deleted while the watch delivers nothing, then the history compacted.
    try server.request("POST", "/standin/hold-watches")
    try server.request("DELETE", "/api/v1/namespaces/default/services/web-2")
    try server.request("POST", "/standin/compact")
    try server.request("POST", "/standin/drop-watches")
    try await waitFor("a relist") { informer.status.relists == 1 }
    task.cancel()
    await task.value
    let seen = deliveries.withLock { $0 }
    XCTAssertEqual(seen[0].changes.count, 3)
    XCTAssertEqual(seen[1].changes.map(\.key.name), ["web-4"])
    // The relist found the delete, and handed on nothing that did not change.
    XCTAssertTrue(seen[2].isList)
    let after = seen.dropFirst(2).flatMap(\.changes)
    XCTAssertEqual(after.count, 1, "\(after)")
    guard case .delete(let key, _) = after.first else { return XCTFail("\(after)") }
    XCTAssertEqual(key.name, "web-2")
    XCTAssertEqual(informer.status.objects, 3)
    await api.shutdown()
  }

  /// The Ingress side's writes: a create is idempotent (409 is `.alreadyExists`), a status
  /// merge patch changes only the status, and RBAC's 403 names the verb and subresource.
  func testCreateIsIdempotentAndAStatusPatchChangesOnlyTheStatus() async throws {
    let server = try StandinServer(arguments: ["--forbid", "patch:services/status"])
    let api = try transport(server)
    let object: JSONValue = [
      "apiVersion": "v1", "kind": "Service",
      "metadata": ["name": "junction-ingress-web", "labels": ["a": "b"]],
      "spec": ["type": "LoadBalancer", "ports": [["name": "http", "port": 80]]],
    ]
    var outcome = try await api.create(.services, namespace: "shop", object: object)
    XCTAssertEqual(outcome, .created)
    outcome = try await api.create(.services, namespace: "shop", object: object)
    XCTAssertEqual(outcome, .alreadyExists)
    try server.request(
      "POST", "/apis/networking.k8s.io/v1/namespaces/shop/ingresses",
      #"{"metadata":{"name":"web"},"spec":{"ingressClassName":"junction"}}"#)
    try await api.mergePatch(
      .ingresses, namespace: "shop", name: "web",
      patch: ["status": ["loadBalancer": ["ingress": [["ip": "192.0.2.8"]]]], "spec": ["x": 1]],
      status: true)
    let stored = try JSONValue.parse(
      Array(
        try server.request("GET", "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web").utf8
      ))
    XCTAssertEqual(stored["status"]?["loadBalancer"]?["ingress"], [["ip": "192.0.2.8"]])
    XCTAssertEqual(
      stored["spec"], ["ingressClassName": "junction"], "the status patch's spec ignored")
    do {
      try await api.mergePatch(
        .services, namespace: "shop", name: "junction-ingress-web", patch: ["status": [:]],
        status: true)
      XCTFail("forbidden expected")
    } catch {
      XCTAssertTrue(
        "\(error)".contains("RBAC does not allow patch on services/status"), "\(error)")
    }
    do {
      try await api.mergePatch(
        .ingresses, namespace: "shop", name: "gone", patch: ["status": [:]], status: true)
      XCTFail("404 expected")
    } catch {
      XCTAssertEqual("\(error)", "HTTP 404: Ingress shop/gone not found")
    }
    await api.shutdown()
  }
}
