import CNIKit
import XCTest

@testable import ServiceCore

/// The incremental table against the whole-set planner: after every change of a long random
/// run, the table holds what planning the whole set from scratch gives (ids aside, which
/// depend on history), its ids are consistent, and its diffs, replayed onto a model of the
/// maps, give exactly the table's state.
final class ServiceTableTests: XCTestCase {
  /// The maps as the datapath sees them: frontends by key, backends by id.
  private struct MapModel {
    var frontends: [FrontendKey: ServiceFrontend] = [:]
    var backends: [UInt32: BackendKey] = [:]

    mutating func apply(_ diff: DesiredStateDiff) {
      for step in diff.steps {
        switch step {
        case .createBackend(let id, let key):
          XCTAssertNil(backends[id], "backend \(id) created twice")
          backends[id] = key
        case .writeFrontend(let frontend):
          for backend in frontend.allBackends {
            XCTAssertEqual(backends[backend.id], backend.key, "slot names a missing backend")
          }
          frontends[frontend.key] = frontend
        case .deleteFrontend(let frontend):
          XCTAssertNotNil(frontends.removeValue(forKey: frontend.key), "deleted a missing frontend")
        case .deleteBackend(let id, _):
          XCTAssertNotNil(backends.removeValue(forKey: id), "deleted a missing backend")
        }
      }
    }
  }

  /// What a frontend is, ids left out.
  private struct Shape: Equatable, CustomStringConvertible {
    var key: FrontendKey
    var type: FrontendType
    var service: NamespacedName
    var backends: [String]
    var origin: [String]?
    init(_ frontend: ServiceFrontend) {
      key = frontend.key
      type = frontend.type
      service = frontend.service
      backends = frontend.backends.map { "\($0.key) \($0.state.rawValue)" }
      origin = frontend.redirect?.origin?.map { "\($0.key) \($0.state.rawValue)" }
    }
    var description: String { "\(key) \(type.rawValue) \(service) \(backends) \(origin ?? [])" }
  }

  /// A pod of namespace ns on `node`.
  private func pod(_ name: String, node: String, ip: String, role: String, ready: Bool) -> String {
    """
    apiVersion: v1
    kind: Pod
    metadata: {name: \(name), namespace: ns, labels: {role: \(role)}}
    spec: {nodeName: \(node)}
    status:
      podIP: \(ip)
      conditions: [{type: Ready, status: "\(ready ? "True" : "False")"}]
    """
  }

  /// A policy redirecting Service `service`'s ports (or, without one, 10.96.0.1:80, an
  /// address a Service may also hold) to the pods with role `role`.
  private func policy(_ name: String, service: String?, role: String, skip: Bool) -> String {
    let frontend =
      service.map { "serviceMatcher: {serviceName: \($0), namespace: ns}" }
      ?? "addressMatcher: {ip: 10.96.0.1, toPorts: [{port: \"80\", protocol: TCP}]}"
    return """
      apiVersion: cilium.io/v2
      kind: CiliumLocalRedirectPolicy
      metadata: {name: \(name), namespace: ns}
      spec:
        redirectFrontend: {\(frontend)}
        redirectBackend:
          localEndpointSelector: {matchLabels: {role: \(role)}}
          toPorts: [{port: "9000", protocol: TCP}]
        skipRedirectFromBackend: \(skip)
      """
  }

  private func service(_ name: String, ip: String, ports: [Int]) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: \(name), namespace: ns}
    spec:
      clusterIP: \(ip)
      ports:
    \(ports.map { "  - {name: p\($0), port: \($0), targetPort: \($0 + 8000)}" }.joined(separator: "\n"))
    """
  }

  private func slice(_ name: String, owner: String, ports: [Int], endpoints: [(String, Int)])
    -> String
  {
    let conditions = [
      "{ready: true, serving: true, terminating: false}",
      "{ready: false, serving: true, terminating: true}",
      "{ready: false, serving: false, terminating: false}",
    ]
    return """
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: \(name), namespace: ns, labels: {kubernetes.io/service-name: \(owner)}}
      addressType: IPv4
      ports:
      \(ports.map { "- {name: p\($0), port: \($0 + 8000)}" }.joined(separator: "\n"))
      endpoints:
      \(endpoints.map { "- {addresses: [\"\($0.0)\"], conditions: \(conditions[$0.1])}" }.joined(separator: "\n"))
      """
  }

  func testRandomChangesMatchTheWholeSetPlannerAndTheirDiffs() throws {
    var random = SeededRandom()
    let initialSeed = random.seed
    func next(_ bound: Int) -> Int { random.next(bound) }
    let names = (0..<6).map { "s\($0)" }
    let ips = (1...4).map { "10.96.0.\($0)" }
    var table = ServiceTable(nodeName: "node1")
    var model = MapModel()
    var refused = 0
    var redirected = 0
    var withOrigin = 0
    for step in 0..<400 {
      var documents: [String] = []
      for _ in 0..<(1 + next(3)) {
        let ports = [80, 443, 53].filter { _ in next(2) == 0 }
        // Local Redirect Policies and the pods they select, now and then.
        if next(4) == 0 {
          documents.append(
            pod(
              "p\(next(4))", node: next(3) == 0 ? "node2" : "node1", ip: "10.0.0.\(1 + next(6))",
              role: next(2) == 0 ? "a" : "b", ready: next(4) != 0))
          continue
        }
        if next(6) == 0 {
          documents.append(
            policy(
              "lrp\(next(3))", service: next(3) == 0 ? nil : names[next(names.count)],
              role: next(2) == 0 ? "a" : "b", skip: next(2) == 0))
          continue
        }
        if next(2) == 0 {
          documents.append(
            service(
              names[next(names.count)], ip: ips[next(ips.count)],
              ports: ports.isEmpty ? [80] : ports))
        } else {
          let endpoints = (0..<next(4)).map { _ in ("10.0.0.\(1 + next(6))", next(3)) }
          documents.append(
            slice(
              "e\(next(8))", owner: names[next(names.count)], ports: ports,
              endpoints: endpoints))
        }
      }
      let plan = ApplyPlan(
        next(4) == 0 ? .delete : .apply, yaml: documents.joined(separator: "\n---\n"))
      XCTAssertEqual(plan.errors, [], "seed \(initialSeed), step \(step)")
      let before = table.desiredState
      let update: ServiceTable.Update
      do {
        update = try plan.update(for: table)
      } catch {
        refused += 1
        XCTAssertTrue(error.messages.allSatisfy { $0.contains("is already used by") })
        continue
      }
      model.apply(update.diff)
      table.commit(update)
      // Now and then the agent's restart: the table rebuilt from what it stores (its
      // resources and id tables) must be the same table, and go on from there.
      if step % 37 == 36 {
        let restored = ServiceTable(resources: table.resources, ids: table.ids, nodeName: "node1")
        XCTAssertEqual(restored.frontends, table.frontends, "seed \(initialSeed), step \(step)")
        XCTAssertEqual(restored.ids, table.ids, "seed \(initialSeed), step \(step)")
        table = restored
      }

      let message = "seed \(initialSeed), step \(step)"
      var scratch = LoadBalancerIDs()
      let whole = ServicePlanner.plan(table.resources, ids: &scratch, nodeName: "node1")
      XCTAssertEqual(
        table.desiredState.frontends.map(Shape.init), whole.frontends.map(Shape.init), message)
      XCTAssertEqual(table.desiredState.conflicts.sorted(), whole.conflicts.sorted(), message)
      XCTAssertEqual(model.frontends, table.frontends, message)
      XCTAssertEqual(model.backends, table.desiredState.backends, message)
      // Ids: one per live key, unique, and an unchanged frontend keeps its id.
      XCTAssertEqual(
        Set(table.ids.services.table.ids.keys), Set(table.frontends.keys), message)
      XCTAssertEqual(
        Set(table.ids.backends.table.ids.keys), Set(table.desiredState.backends.values),
        message)
      for frontend in before.frontends {
        if let now = table.frontends[frontend.key] { XCTAssertEqual(now.id, frontend.id, message) }
      }
      if table.frontends.values.contains(where: { $0.type == .localRedirect }) { redirected += 1 }
      if table.frontends.values.contains(where: { $0.redirect?.origin != nil }) { withOrigin += 1 }
    }
    XCTAssertLessThan(refused, 400, "every change was refused: the run tested nothing")
    XCTAssertGreaterThan(redirected, 20, "seed \(initialSeed): redirects were hardly exercised")
    XCTAssertGreaterThan(withOrigin, 5, "seed \(initialSeed): origins were hardly exercised")
  }

  func testChangingOneSliceReplansOnlyItsService() throws {
    var yaml: [String] = []
    for index in 0..<50 {
      yaml.append(service("svc\(index)", ip: "10.96.1.\(index + 1)", ports: [80]))
      yaml.append(
        slice(
          "svc\(index)-a", owner: "svc\(index)", ports: [80],
          endpoints: [("10.0.1.\(index + 1)", 0)]))
    }
    var table = ServiceTable()
    table.commit(try ApplyPlan(.apply, yaml: yaml.joined(separator: "\n---\n")).update(for: table))
    let change = ApplyPlan(
      .apply,
      yaml: slice(
        "svc7-a", owner: "svc7", ports: [80], endpoints: [("10.0.1.8", 0), ("10.0.2.1", 0)]))
    let update = try change.update(for: table)
    XCTAssertEqual(update.diff.changedFrontends.map(\.new.service.name), ["svc7"])
    XCTAssertEqual(update.diff.addedFrontends, [])
    XCTAssertEqual(update.diff.removedFrontends, [])
    XCTAssertEqual(update.diff.createdBackends.map(\.key.description), ["10.0.2.1:8080/TCP"])
  }

  /// A restart with a stored id table naming a backend nothing uses any more (its Service
  /// went while the agent was down): the stale id is released, and a backend used once
  /// after the restart goes when its Service does.
  func testARestoredTableReleasesStaleBackendsAndCountsTheRest() throws {
    var table = ServiceTable()
    let both =
      service("a", ip: "10.96.0.9", ports: [80]) + "\n---\n"
      + slice("a1", owner: "a", ports: [80], endpoints: [("10.0.0.1", 0)]) + "\n---\n"
      + service("b", ip: "10.96.0.8", ports: [80]) + "\n---\n"
      + slice("b1", owner: "b", ports: [80], endpoints: [("10.0.0.2", 0)])
    table.commit(try ApplyPlan(.apply, yaml: both).update(for: table))
    XCTAssertEqual(table.ids.backends.table.ids.count, 2)
    let onlyA = ApplyPlan(
      .apply,
      yaml: service("a", ip: "10.96.0.9", ports: [80]) + "\n---\n"
        + slice("a1", owner: "a", ports: [80], endpoints: [("10.0.0.1", 0)]))
    var restored = ServiceTable(resources: ResourceSet(onlyA.resources), ids: table.ids)
    let kept = BackendKey(address: IPAddress("10.0.0.1")!, port: 8080, proto: .tcp)
    XCTAssertEqual(Array(restored.ids.backends.table.ids.keys), [kept])
    XCTAssertEqual(restored.ids.backends.table.lookup(kept), table.ids.backends.table.lookup(kept))
    // A second Service on the same backend, then both go, one at a time.
    let c =
      service("c", ip: "10.96.0.7", ports: [80]) + "\n---\n"
      + slice("c1", owner: "c", ports: [80], endpoints: [("10.0.0.1", 0)])
    restored.commit(try ApplyPlan(.apply, yaml: c).update(for: restored))
    let deleteA = try ApplyPlan(.delete, yaml: service("a", ip: "10.96.0.9", ports: [80]))
      .update(for: restored)
    XCTAssertFalse(
      deleteA.diff.steps.contains { if case .deleteBackend = $0 { true } else { false } },
      "the backend still has a user")
    restored.commit(deleteA)
    let deleteC = try ApplyPlan(.delete, yaml: service("c", ip: "10.96.0.7", ports: [80]))
      .update(for: restored)
    XCTAssertTrue(
      deleteC.diff.steps.contains { if case .deleteBackend(_, kept) = $0 { true } else { false } },
      "the backend's last user went")
    restored.commit(deleteC)
    XCTAssertEqual(restored.ids.backends.table.ids, [:])
  }

  func testTheNextClaimantTakesOverAFrontendWithItsID() throws {
    var table = ServiceTable()
    let both =
      service("a", ip: "10.96.0.9", ports: [80]) + "\n---\n"
      + service("b", ip: "10.96.0.8", ports: [80])
    table.commit(try ApplyPlan(.apply, yaml: both).update(for: table))
    // b moving onto a's address is refused: it would introduce a conflict.
    XCTAssertThrowsError(
      try ApplyPlan(.apply, yaml: service("b", ip: "10.96.0.9", ports: [80])).update(for: table))
    // Stored conflicts (from a whole set) are kept; when the holder goes, the other takes over.
    let conflicting = ApplyPlan(
      .apply,
      yaml: service("a", ip: "10.96.0.9", ports: [80]) + "\n---\n"
        + service("b", ip: "10.96.0.9", ports: [80]))
    var stored = ServiceTable(
      resources: ResourceSet(conflicting.resources), ids: LoadBalancerIDs())
    let key = FrontendKey(address: IPAddress("10.96.0.9")!, port: 80, proto: .tcp)
    let id = stored.frontends[key]!.id
    XCTAssertEqual(stored.frontends[key]?.service.name, "a")
    XCTAssertEqual(stored.desiredState.conflicts.count, 1)
    stored.commit(
      try ApplyPlan(.delete, yaml: service("a", ip: "10.96.0.9", ports: [80])).update(for: stored))
    XCTAssertEqual(stored.frontends[key]?.service.name, "b")
    XCTAssertEqual(stored.frontends[key]?.id, id)
    XCTAssertEqual(stored.desiredState.conflicts, [])
  }
}
