import AgentAPI
import Foundation
import XCTest

@testable import AgentCore

final class EndpointStateTests: XCTestCase {
  func testLayoutNames() {
    let layout = StateLayout(stateDirectory: "/var/lib/junction")
    XCTAssertEqual(layout.endpointsDirectory, "/var/lib/junction/endpoints")
    XCTAssertEqual(layout.endpointFile(id: "abc:eth0"), "/var/lib/junction/endpoints/abc:eth0.json")
    XCTAssertEqual(StateLayout(stateDirectory: "/s/").endpointsDirectory, "/s/endpoints")
    XCTAssertEqual(StateLayout.endpointID(fromFileName: "abc:eth0.json"), "abc:eth0")
    XCTAssertNil(StateLayout.endpointID(fromFileName: ".abc:eth0.json.tmp-1-2"))
    XCTAssertNil(StateLayout.endpointID(fromFileName: "abc:eth0.txt"))
    XCTAssertNil(StateLayout.endpointID(fromFileName: "noid.json"))
  }

  func testStoreRoundTripAndAtomicFiles() throws {
    let directory = try temporaryDirectory(self)
    let store = FileEndpointStore(layout: StateLayout(stateDirectory: directory + "/state"))
    try store.prepare()
    var endpoint = Endpoint(id: "ctr1:eth0", spec: sampleSpec(), createdAt: Timestamp.now())
    endpoint.counters = EndpointCounters(fromPackets: 5)
    endpoint.datapathAttached = true
    try store.save(endpoint)

    let path = directory + "/state/endpoints/ctr1:eth0.json"
    var info = stat()
    XCTAssertEqual(stat(path, &info), 0)
    XCTAssertEqual(info.st_mode & 0o777, 0o600)
    XCTAssertEqual(stat(directory + "/state", &info), 0)
    XCTAssertEqual(info.st_mode & 0o777, 0o700)
    // Nothing but the file itself: the temporary file was renamed.
    XCTAssertEqual(try AtomicFile.list(directory + "/state/endpoints"), ["ctr1:eth0.json"])

    let loaded = try store.loadAll()
    XCTAssertEqual(loaded.problems, [])
    endpoint.counters = nil
    endpoint.datapathAttached = nil
    XCTAssertEqual(loaded.endpoints, [endpoint], "live fields are not persisted")

    XCTAssertTrue(try store.remove(id: "ctr1:eth0"))
    XCTAssertFalse(try store.remove(id: "ctr1:eth0"))
    XCTAssertEqual(try store.loadAll().endpoints, [])
  }

  func testLoadSkipsBadFilesAndCleansTemporaryOnes() throws {
    let directory = try temporaryDirectory(self)
    let store = FileEndpointStore(layout: StateLayout(stateDirectory: directory))
    try store.prepare()
    let good = Endpoint(id: "ctr1:eth0", spec: sampleSpec(), createdAt: "2025-01-01T00:00:00.000Z")
    try store.save(good)
    let endpoints = directory + "/endpoints/"
    try AtomicFile.write(Array("{not json".utf8), to: endpoints + "bad:eth0.json")
    // A file whose name does not match the id inside.
    let other = Endpoint(id: "ctr2:eth0", spec: sampleSpec(containerID: "ctr2"), createdAt: "x")
    try AtomicFile.write(Array(try JSONEncoder().encode(other)), to: endpoints + "ctr3:eth0.json")
    try AtomicFile.write([1], to: endpoints + ".ctr9:eth0.json.tmp-1-2")
    try AtomicFile.write([1], to: endpoints + "README")

    let loaded = try store.loadAll()
    XCTAssertEqual(loaded.endpoints, [good])
    XCTAssertEqual(loaded.problems.count, 3, "\(loaded.problems)")
    XCTAssertFalse(AtomicFile.exists(endpoints + ".ctr9:eth0.json.tmp-1-2"))
    XCTAssertTrue(
      AtomicFile.exists(endpoints + "bad:eth0.json"), "bad files are kept for a person to look at")
  }

  func testLoadOfMissingDirectoryIsEmpty() throws {
    let store = FileEndpointStore(
      layout: StateLayout(stateDirectory: "/nonexistent/\(UUID().uuidString)"))
    XCTAssertEqual(try store.loadAll().endpoints, [])
  }

  func testPutCreatesThenReplacesKeepingCreatedAt() throws {
    var table = EndpointTable()
    let store = RecordingStore()
    let created = try table.put(sampleSpec(), now: "T1", store: store)
    XCTAssertEqual(
      created, .created(Endpoint(id: "ctr1:eth0", spec: sampleSpec(), createdAt: "T1")))
    var changed = sampleSpec()
    changed.ips = ["10.244.1.6/32"]
    let replaced = try table.put(changed, now: "T2", store: store)
    XCTAssertEqual(replaced.endpoint.createdAt, "T1")
    XCTAssertEqual(replaced.endpoint.spec.ips, ["10.244.1.6/32"])
    XCTAssertEqual(store.saved.count, 2)
    // The same spec again: answered, not rewritten.
    _ = try table.put(changed, now: "T3", store: store)
    XCTAssertEqual(store.saved.count, 2)
    XCTAssertEqual(table.count, 1)
  }

  func testFailedWritesLeaveTheTableUnchanged() throws {
    var table = EndpointTable()
    let store = RecordingStore()
    _ = try table.put(sampleSpec(), now: "T1", store: store)
    let before = table.sorted
    store.failing = true

    XCTAssertThrowsError(try table.put(sampleSpec(containerID: "ctr2"), now: "T2", store: store))
    var changed = sampleSpec()
    changed.hostIfindex = 99
    XCTAssertThrowsError(try table.put(changed, now: "T2", store: store))
    XCTAssertThrowsError(try table.delete(id: "ctr1:eth0", store: store))
    XCTAssertEqual(table.sorted, before)
  }

  func testDeleteUnknownTouchesNothing() throws {
    var table = EndpointTable()
    let store = RecordingStore()
    XCTAssertNil(try table.delete(id: "nope:eth0", store: store))
    XCTAssertEqual(store.removed, [])
  }

  func testAtomicWriteReplacesAndLeavesNoTemporaryFiles() throws {
    let directory = try temporaryDirectory(self)
    let path = directory + "/file.json"
    try AtomicFile.write(Array("one".utf8), to: path)
    try AtomicFile.write(Array("two".utf8), to: path, mode: 0o640)
    XCTAssertEqual(try AtomicFile.read(path), Array("two".utf8))
    XCTAssertEqual(try AtomicFile.list(directory), ["file.json"])
    var info = stat()
    stat(path, &info)
    XCTAssertEqual(info.st_mode & 0o777, 0o640)
    XCTAssertThrowsError(try AtomicFile.write([1], to: directory + "/missing/file.json"))
    XCTAssertEqual(try AtomicFile.list(directory), ["file.json"])
    XCTAssertThrowsError(try AtomicFile.read(path, limit: 2))
  }

  func testMakeDirectoryCreatesParents() throws {
    let directory = try temporaryDirectory(self)
    try AtomicFile.makeDirectory(directory + "/a/b/c", mode: 0o700)
    try AtomicFile.makeDirectory(directory + "/a/b/c", mode: 0o700)
    var info = stat()
    XCTAssertEqual(stat(directory + "/a/b/c", &info), 0)
    XCTAssertEqual(info.st_mode & 0o777, 0o700)
    try AtomicFile.write([1], to: directory + "/file")
    XCTAssertThrowsError(try AtomicFile.makeDirectory(directory + "/file", mode: 0o700))
  }

  func testPathNames() {
    XCTAssertEqual(PathNames.directory(of: "/run/junction/junction.sock"), "/run/junction")
    XCTAssertEqual(PathNames.directory(of: "/run/junction/"), "/run")
    XCTAssertEqual(PathNames.directory(of: "/x"), "/")
    XCTAssertEqual(PathNames.directory(of: "agent.sock"), ".")
    XCTAssertEqual(PathNames.directory(of: "a//b"), "a")
    XCTAssertEqual(PathNames.base(of: "/run/junction/junction.sock"), "junction.sock")
    XCTAssertEqual(PathNames.base(of: "plain"), "plain")
    XCTAssertEqual(PathNames.join("/a/", "b"), "/a/b")
    XCTAssertEqual(PathNames.join("/a", "b"), "/a/b")
  }
}
