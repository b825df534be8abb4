import CNIKit
import XCTest

@testable import ServiceCore

final class DiffTests: XCTestCase {
  private func plan(_ yaml: String, _ ids: inout LoadBalancerIDs) throws -> DesiredState {
    ServicePlanner.plan(
      try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet()), ids: &ids)
  }

  private func services(_ backends: [(String, Bool, Bool, Bool)], other: String = "10.1.0.1")
    -> String
  {
    Fixtures.service(name: "api", clusterIP: "10.96.0.20") + "\n---\n"
      + Fixtures.slice(endpoints: backends)
      + "\n---\n" + Fixtures.service(name: "other", clusterIP: "10.96.0.30") + "\n---\n"
      + Fixtures.slice(service: "other", endpoints: [(other, true, true, false)])
  }

  func testNoChangeIsEmpty() throws {
    var ids = LoadBalancerIDs()
    let yaml = services([("10.0.0.1", true, true, false)])
    let a = try plan(yaml, &ids)
    let b = try plan(yaml, &ids)
    XCTAssertTrue(DesiredStateDiff(from: a, to: b).isEmpty)
    XCTAssertEqual(DesiredStateDiff(from: a, to: b).steps, [])
  }

  func testChangingOneBackendTouchesOnlyItsService() throws {
    var ids = LoadBalancerIDs()
    let before = try plan(
      services([("10.0.0.1", true, true, false), ("10.0.0.2", true, true, false)]), &ids)
    // 10.0.0.2 starts terminating, 10.0.0.3 appears, 10.0.0.1 goes away.
    let after = try plan(
      services([("10.0.0.2", false, true, true), ("10.0.0.3", true, true, false)]), &ids)
    let diff = DesiredStateDiff(from: before, to: after)
    XCTAssertEqual(diff.addedFrontends, [])
    XCTAssertEqual(diff.removedFrontends, [])
    XCTAssertEqual(diff.changedFrontends.count, 1)
    let change = diff.changedFrontends[0]
    XCTAssertEqual(change.new.service.name, "api")
    XCTAssertEqual(change.addedBackends.map(\.key.description), ["10.0.0.3:8080/TCP"])
    XCTAssertEqual(change.removedBackends.map(\.key.description), ["10.0.0.1:8080/TCP"])
    XCTAssertEqual(
      change.stateChangedBackends.map { "\($0.key) \($0.state)" }, ["10.0.0.2:8080/TCP terminating"]
    )
    XCTAssertFalse(change.settingsChanged)
    XCTAssertEqual(diff.createdBackends.map(\.key.description), ["10.0.0.3:8080/TCP"])
    XCTAssertEqual(diff.deletedBackends.map(\.key.description), ["10.0.0.1:8080/TCP"])
    // The surviving backend keeps its id.
    XCTAssertEqual(
      before.frontends[0].backends.first { $0.key.address == IPAddress("10.0.0.2") }?.id,
      change.new.backends.first { $0.key.address == IPAddress("10.0.0.2") }?.id)
  }

  func testStepsCreateBackendsFirstAndDeleteThemLast() throws {
    var ids = LoadBalancerIDs()
    let before = try plan(services([("10.0.0.1", true, true, false)]), &ids)
    let after = try plan(
      Fixtures.service(name: "api", clusterIP: "10.96.0.21") + "\n---\n"
        + Fixtures.slice(endpoints: [("10.0.0.9", true, true, false)]), &ids)
    let steps = DesiredStateDiff(from: before, to: after).steps
    func index(_ match: (LBStep) -> Bool) -> Int { steps.firstIndex(where: match)! }
    let create = index { if case .createBackend = $0 { true } else { false } }
    let write = index { if case .writeFrontend = $0 { true } else { false } }
    let remove = index { if case .deleteFrontend = $0 { true } else { false } }
    let lastCreate = steps.lastIndex { if case .createBackend = $0 { true } else { false } }!
    let firstDelete = index { if case .deleteBackend = $0 { true } else { false } }
    XCTAssertLessThan(create, write)
    XCTAssertLessThan(lastCreate, write)
    XCTAssertLessThan(write, remove)
    XCTAssertLessThan(remove, firstDelete)
    // 1 new backend, 1 new frontend, 2 frontends gone, 2 backends gone.
    XCTAssertEqual(steps.count, 1 + 1 + 2 + 2)
  }

  func testSettingsChangeIsAChangeWithoutBackendChanges() throws {
    var ids = LoadBalancerIDs()
    let before = try plan(services([("10.0.0.1", true, true, false)]), &ids)
    let affinity = services([("10.0.0.1", true, true, false)]).replacingOccurrences(
      of: "  name: api\nspec:\n", with: "  name: api\nspec:\n  sessionAffinity: ClientIP\n")
    let after = try plan(affinity, &ids)
    let diff = DesiredStateDiff(from: before, to: after)
    XCTAssertEqual(diff.changedFrontends.count, 1)
    XCTAssertTrue(diff.changedFrontends[0].settingsChanged)
    XCTAssertEqual(diff.changedFrontends[0].new.affinityTimeout, 10800)
    XCTAssertTrue(diff.createdBackends.isEmpty && diff.deletedBackends.isEmpty)
  }
}
