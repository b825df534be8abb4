import AgentCore
import Foundation
import Logging
import ServiceCore
import Synchronization
import XCTest

@testable import JunctionAgent

/// ServiceManager's one entry point for the L7 proxy's redirects: the proxy manager's set
/// replaces the previous one, the configured (--proxy-redirect) ones stay, the listing shows
/// the proxy port, a restart keeps what is stored and takes only the static redirects, and
/// the proxy routing is present exactly while a redirect is.
final class ServiceManagerProxyTests: XCTestCase {
  private let web = NamespacedName(namespace: "default", name: "web")
  private let api = NamespacedName(namespace: "default", name: "api")

  private var yaml: String {
    ["web": "10.96.0.10", "api": "10.96.0.20"].sorted { $0.key < $1.key }.map { name, ip in
      """
      apiVersion: v1
      kind: Service
      metadata: {name: \(name), namespace: default}
      spec:
        clusterIP: \(ip)
        ports: [{port: 80, targetPort: 8080}]
      """
    }.joined(separator: "\n---\n")
  }

  private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "proxyredirect-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
  }

  private func ports(_ manager: ServiceManager) async -> [String: Int] {
    var result: [String: Int] = [:]
    for status in await manager.list() {
      if let port = status.proxyPort { result[status.frontend] = port }
    }
    return result
  }

  /// GET /v1/services's body, made one status at a time, is the listing JSONEncoder gives.
  func testTheStreamedListingIsTheEncodedOne() async throws {
    let directory = try temporaryDirectory()
    let manager = try ServiceManager(
      stateDirectory: directory, nodeName: "node1", proxyRedirects: [],
      datapath: UnloadedDatapath(bpfFS: directory), logger: Logger(label: "test"))
    let slice = """
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
      addressType: IPv4
      ports: [{port: 8080}]
      endpoints:
      - {addresses: [10.0.0.1], conditions: {ready: true}}
      - {addresses: [10.0.0.2], conditions: {ready: false, serving: true, terminating: true}}
      """
    _ = try await manager.change(yaml: yaml + "\n---\n" + slice, delete: false)
    let statuses = await manager.list()
    XCTAssertEqual(statuses.map(\.backends.count).sorted(), [0, 2])
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let encoded = try encoder.encode(statuses) + Data("\n".utf8)
    let streamed = await manager.listJSON()
    XCTAssertEqual(
      String(decoding: streamed, as: UTF8.self), String(decoding: encoded, as: UTF8.self))
  }

  func testTheProxyManagersSetReplacesItsOwnAndKeepsTheStaticOnes() async throws {
    let directory = try temporaryDirectory()
    let routing = Mutex<[Bool]>([])
    let record: @Sendable (Bool) throws -> Void = { present in
      routing.withLock { $0.append(present) }
    }
    func start(_ redirects: [ProxyRedirect]) throws -> ServiceManager {
      try ServiceManager(
        stateDirectory: directory, nodeName: "node1", proxyRedirects: redirects,
        proxyRouting: record, datapath: UnloadedDatapath(bpfFS: directory),
        logger: Logger(label: "test"))
    }
    var manager = try start([])
    XCTAssertEqual(routing.withLock { $0 }, [false], "a start without redirects clears it")
    _ = try await manager.change(yaml: yaml, delete: false)

    try await manager.setProxyRedirects([
      ProxyRedirect(service: web, proxyPort: 15001, owner: "cec")
    ])
    let afterSet = await ports(manager)
    XCTAssertEqual(afterSet, ["10.96.0.10:80/TCP": 15001])
    XCTAssertEqual(routing.withLock { $0 }.last, true)
    try await manager.setProxyRedirects([
      ProxyRedirect(service: api, proxyPort: 15002, owner: "cec")
    ])
    let afterReplace = await ports(manager)
    XCTAssertEqual(afterReplace, ["10.96.0.20:80/TCP": 15002])
    try await manager.setProxyRedirects([])
    let afterClear = await ports(manager)
    XCTAssertEqual(afterClear, [:])
    XCTAssertEqual(routing.withLock { $0 }.last, false)

    // A restart with a static redirect: the stored Services, only the static redirect, and
    // the proxy manager's set adds to it.
    manager = try start([ProxyRedirect(service: web, proxyPort: 16000, owner: "--proxy-redirect")])
    XCTAssertEqual(routing.withLock { $0 }.last, true)
    let restarted = await ports(manager)
    XCTAssertEqual(restarted, ["10.96.0.10:80/TCP": 16000])
    try await manager.setProxyRedirects([
      ProxyRedirect(service: api, proxyPort: 15002, owner: "cec")
    ])
    let both = await ports(manager)
    XCTAssertEqual(both, ["10.96.0.10:80/TCP": 16000, "10.96.0.20:80/TCP": 15002])
    try await manager.setProxyRedirects([])
    let staticOnly = await ports(manager)
    XCTAssertEqual(staticOnly, ["10.96.0.10:80/TCP": 16000])
    XCTAssertEqual(routing.withLock { $0 }.last, true, "the static redirect still needs it")
  }
}
