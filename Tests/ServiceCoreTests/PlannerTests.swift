import CNIKit
import Foundation
import XCTest

@testable import ServiceCore

final class PlannerTests: XCTestCase {
  private func set(_ yaml: String, file: StaticString = #filePath, line: UInt = #line)
    -> ResourceSet
  {
    do {
      return try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
    } catch {
      XCTFail("\(error)", file: file, line: line)
      return ResourceSet()
    }
  }

  private func key(_ text: String) -> FrontendKey {
    let parts = text.split(separator: "/")
    let hostPort = parts[0].split(separator: ":")
    return FrontendKey(
      address: IPAddress(String(hostPort[0]))!, port: UInt16(hostPort[1])!,
      proto: L4Protocol(rawValue: String(parts[1]))!)
  }

  private func describe(_ frontend: ServiceFrontend?) -> [String] {
    frontend?.backends.map { "\($0.key) (\($0.state.rawValue))" } ?? []
  }

  func testTargetPortByNameResolvesThroughTheSlicePortName() {
    var ids = LoadBalancerIDs()
    let state = ServicePlanner.plan(set(Fixtures.list), ids: &ids)
    XCTAssertEqual(state.conflicts, [])
    XCTAssertEqual(
      state.frontends.map(\.key.description), ["10.96.12.34:80/TCP", "10.96.12.34:9090/TCP"])
    let http = state.frontend(key("10.96.12.34:80/TCP"))
    // targetPort "http" → the slice port named like the service port "http": 8080.
    XCTAssertEqual(
      describe(http),
      [
        "10.244.1.3:8080/TCP (active)", "10.244.1.7:8080/TCP (active)",
        "10.244.2.9:8080/TCP (terminating)", "10.244.3.4:8080/TCP (excluded)",
      ])
    XCTAssertEqual(http?.type, .clusterIP)
    XCTAssertEqual(http?.affinityTimeout, 600)
    XCTAssertEqual(http?.algorithm, .maglev)
    XCTAssertEqual(http?.portName, "http")
    // The zone reaches the plan, where topology is decided (the table's backends keep only
    // what the datapath needs).
    var service: Service?
    var slices: [EndpointSlice] = []
    for object in set(Fixtures.list).objects.values {
      if case .service(let value) = object { service = value }
      if case .endpointSlice(let value) = object { slices.append(value) }
    }
    guard let service else { return XCTFail("no Service in Fixtures.list") }
    let planned = ServicePlanner.contribution(of: service, slices: slices).claims
      .first { $0.key == key("10.96.12.34:80/TCP") }?.backends
    XCTAssertEqual(
      planned?.first { $0.key.address == IPAddress("10.244.1.7") }?.zone, "zone-1")
    // The metrics port pairs with the slice port named "metrics" (9100), not the http one.
    XCTAssertEqual(
      describe(state.frontend(key("10.96.12.34:9090/TCP"))).first, "10.244.1.3:9100/TCP (active)")
    // Backend ids are per address:port/protocol: the same pod on two ports is two backends.
    XCTAssertEqual(state.backends.count, 8)
  }

  func testSlicePortNamedDifferentlyContributesNothing() {
    let yaml =
      Fixtures.service(extra: "") + "\n---\n"
      + Fixtures.slice(endpoints: [("10.0.0.1", true, true, false)])
      .replacingOccurrences(of: "- port: 8080", with: "- port: 8080\n  name: other")
    var ids = LoadBalancerIDs()
    XCTAssertEqual(ServicePlanner.plan(set(yaml), ids: &ids).frontends.first?.backends, [])
  }

  func testHandWrittenSliceWithoutPortsUsesNumericTargetPort() {
    let yaml =
      Fixtures.service(extra: "") + "\n---\n"
      + Fixtures.slice(endpoints: [("10.0.0.1", true, true, false)])
      .replacingOccurrences(of: "ports:\n- port: 8080\n", with: "")
    var ids = LoadBalancerIDs()
    let state = ServicePlanner.plan(set(yaml), ids: &ids)
    XCTAssertEqual(describe(state.frontends.first), ["10.0.0.1:8080/TCP (active)"])
  }

  func testTerminatingBackendsOnlyWhenNoneIsReady() {
    let mixed =
      Fixtures.service(extra: "") + "\n---\n"
      + Fixtures.slice(endpoints: [
        ("10.0.0.1", true, true, false), ("10.0.0.2", false, true, true),
        ("10.0.0.3", false, false, true),
      ])
    var ids = LoadBalancerIDs()
    let frontend = ServicePlanner.plan(set(mixed), ids: &ids).frontends[0]
    XCTAssertEqual(frontend.selectable.map(\.key.description), ["10.0.0.1:8080/TCP"])
    XCTAssertEqual(frontend.backends.map(\.state), [.active, .terminating, .excluded])

    let draining =
      Fixtures.service(extra: "") + "\n---\n"
      + Fixtures.slice(endpoints: [
        ("10.0.0.2", false, true, true), ("10.0.0.3", false, false, true),
      ])
    let fallback = ServicePlanner.plan(set(draining), ids: &ids).frontends[0]
    XCTAssertEqual(fallback.selectable.map(\.key.description), ["10.0.0.2:8080/TCP"])

    let gone =
      Fixtures.service(extra: "") + "\n---\n"
      + Fixtures.slice(endpoints: [("10.0.0.3", false, false, false)])
    XCTAssertEqual(ServicePlanner.plan(set(gone), ids: &ids).frontends[0].selectable, [])
  }

  func testHeadlessAndExternalNameHaveNoFrontend() {
    let yaml = """
      apiVersion: v1
      kind: Service
      metadata: {name: db}
      spec:
        clusterIP: None
        ports: [{port: 5432}]
      ---
      apiVersion: v1
      kind: Service
      metadata: {name: search}
      spec:
        type: ExternalName
        externalName: search.example.com
      """
    var ids = LoadBalancerIDs()
    let state = ServicePlanner.plan(set(yaml), ids: &ids)
    XCTAssertEqual(state.frontends, [])
    XCTAssertEqual(state.notes.count, 2)
    XCTAssertTrue(state.notes.contains { $0.contains("default/db") && $0.contains("headless") })
    XCTAssertTrue(
      state.notes.contains { $0.contains("default/search") && $0.contains("ExternalName") })
  }

  func testExternalLoadBalancerAndNodePortFrontends() {
    let yaml = """
      apiVersion: v1
      kind: Service
      metadata: {name: edge}
      spec:
        type: LoadBalancer
        clusterIP: 10.96.0.50
        externalIPs: [192.0.2.10]
        ports: [{port: 443, nodePort: 30443, protocol: TCP}]
      status:
        loadBalancer:
          ingress: [{ip: 198.51.100.7}, {hostname: lb.example.com}]
      """
    var ids = LoadBalancerIDs()
    let state = ServicePlanner.plan(
      set(yaml), ids: &ids, northSouth: NorthSouthPolicy(nodeAddresses: [IPAddress("172.18.0.2")!]))
    XCTAssertEqual(
      state.frontends.map { "\($0.key) \($0.type.rawValue)" },
      [
        "0.0.0.0:30443/TCP NodePort", "10.96.0.50:443/TCP ClusterIP",
        "172.18.0.2:30443/TCP NodePort",
        "192.0.2.10:443/TCP ExternalIPs",
        "198.51.100.7:443/TCP LoadBalancer",
      ])
  }

  func testConflictingFrontendIsRefused() throws {
    let first = try ApplyPlan(.apply, yaml: Fixtures.service(name: "a")).result(
      applyingTo: ResourceSet())
    XCTAssertThrowsError(
      try ApplyPlan(.apply, yaml: Fixtures.service(name: "b")).result(applyingTo: first)
    ) {
      XCTAssertEqual(
        "\($0)",
        "frontend 10.96.0.20:80/TCP of Service default/b is already used by Service default/a")
    }
  }

  func testApplyIsAllOrNothingAndDeleteRemoves() throws {
    let good = set(Fixtures.service(name: "a", clusterIP: "10.96.0.1"))
    let mixed =
      Fixtures.service(name: "b", clusterIP: "10.96.0.2") + "\n---\n"
      + Fixtures.service(name: "c", clusterIP: "10.96.0.300")
    XCTAssertThrowsError(try ApplyPlan(.apply, yaml: mixed).result(applyingTo: good)) {
      XCTAssertEqual(
        "\($0)", "Service default/c: spec.clusterIP: \"10.96.0.300\" is not an IP address")
    }
    XCTAssertThrowsError(try ApplyPlan(.delete, yaml: mixed).result(applyingTo: good))
    let emptied = try ApplyPlan(.delete, yaml: Fixtures.service(name: "a", clusterIP: "10.96.0.1"))
      .result(applyingTo: good)
    XCTAssertEqual(emptied.count, 0)
  }

  func testIDsAreStableAcrossReplansRestartsAndUpdates() throws {
    var ids = LoadBalancerIDs()
    let base = set(
      Fixtures.list + "\n---\n" + Fixtures.service(name: "api", clusterIP: "10.96.0.20"))
    let first = ServicePlanner.plan(base, ids: &ids)

    // Restart: the table comes back from JSON and yields the same ids.
    var restored = try JSONDecoder().decode(LoadBalancerIDs.self, from: JSONEncoder().encode(ids))
    XCTAssertEqual(restored, ids)
    XCTAssertEqual(ServicePlanner.plan(base, ids: &restored), first)

    // Adding a service before the others (by address) does not renumber them.
    var grown = base
    grown.upsert(
      ResourceDecoder.decode(yaml: Fixtures.service(name: "aaa", clusterIP: "10.0.0.1")).resources[
        0])
    let second = ServicePlanner.plan(grown, ids: &ids)
    for frontend in first.frontends {
      XCTAssertEqual(second.frontend(frontend.key)?.id, frontend.id)
      XCTAssertEqual(second.frontend(frontend.key)?.backends.map(\.id), frontend.backends.map(\.id))
    }
    let newID = second.frontend(key("10.0.0.1:80/TCP"))!.id
    XCTAssertFalse(first.frontends.map(\.id).contains(newID))

    // Removing a frontend releases its id; a new frontend does not get it right away.
    var shrunk = grown
    shrunk.remove(ResourceKey(kind: .service, namespace: "default", name: "aaa"))
    _ = ServicePlanner.plan(shrunk, ids: &ids)
    XCTAssertNil(ids.services.lookup(key("10.0.0.1:80/TCP")))
    shrunk.upsert(
      ResourceDecoder.decode(yaml: Fixtures.service(name: "bbb", clusterIP: "10.0.0.2")).resources[
        0])
    let third = ServicePlanner.plan(shrunk, ids: &ids)
    XCTAssertNotEqual(third.frontend(key("10.0.0.2:80/TCP"))?.id, newID)
  }

  func testIDTableWrapsAndNeverHandsOutAnIDInUse() {
    var table = StableIDTable<String>(maxID: 3)
    XCTAssertEqual(table.id(for: "a"), 1)
    XCTAssertEqual(table.id(for: "b"), 2)
    XCTAssertEqual(table.id(for: "c"), 3)
    XCTAssertNil(table.id(for: "d"))
    table.retain(only: ["a", "c"])
    XCTAssertEqual(table.id(for: "d"), 2)
    XCTAssertEqual(table.id(for: "a"), 1)
  }
}

final class PersistenceTests: XCTestCase {
  /// Strings that read as another type in YAML ("80", "true") stay strings through the
  /// agent's JSON snapshot, read back by the agent or by `junctionctl apply -f`.
  func testResourceSetRoundTripsThroughTheSnapshot() throws {
    let yaml =
      Fixtures.multiDocument + "\n---\n"
      + Fixtures.service(name: "quoted", clusterIP: "10.96.0.99")
      .replacingOccurrences(of: "targetPort: 8080", with: "targetPort: \"web\"\n  name: \"80\"")
    let set = try ApplyPlan(
      .apply, yaml: yaml.replacingOccurrences(of: "name: \"80\"", with: "name: \"true\"")
    )
    .result(applyingTo: ResourceSet())
    XCTAssertEqual(set.count, 3)
    let saved = try JSONEncoder().encode(
      ServiceSnapshot(resources: set, ids: LoadBalancerIDs(), sequence: 0))
    let restored = try ServiceJournal.restore(
      snapshot: try JSONDecoder().decode(ServiceSnapshot.self, from: saved), records: [])
    XCTAssertEqual(restored.resources, set)
    let applied = try ApplyPlan(.apply, yaml: String(decoding: saved, as: UTF8.self))
      .result(applyingTo: ResourceSet())
    XCTAssertEqual(applied.objects, set.objects)
  }
}
