import AgentAPI
import Foundation
import XCTest

@testable import AgentCore

/// A valid spec, changed per test.
func sampleSpec(containerID: String = "ctr1", ifname: String = "eth0") -> EndpointSpec {
  EndpointSpec(
    containerID: containerID, ifname: ifname, network: "pods", podNamespace: "default",
    podName: "web-0", podUID: "0f1e2d3c-aaaa-bbbb-cccc-123456789abc", netns: "/var/run/netns/pod1",
    hostInterface: "jx1a2b3c4d", hostIfindex: 12, podInterfaceIndex: 2,
    ips: ["10.244.1.5/32", "fd00::5/128"],
    mac: "0a:58:0a:f4:01:05", hostMAC: "ee:ee:ee:ee:ee:ee", socketLB: false,
    netnsCookie: 4242)
}

/// The spec as a JSON object, to edit field by field.
func sampleObject() -> [String: Any] {
  let data = try! JSONEncoder().encode(sampleSpec())
  return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
}

func bytes(_ object: Any) -> [UInt8] {
  Array(try! JSONSerialization.data(withJSONObject: object))
}

/// A fresh temporary directory, removed by the test's teardown block.
func temporaryDirectory(_ test: XCTestCase) throws -> String {
  let path = NSTemporaryDirectory() + "agentcore-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
  return path
}

/// A store that records calls and fails on demand.
final class RecordingStore: EndpointStore {
  var saved: [Endpoint] = []
  var removed: [String] = []
  var failing = false

  func save(_ endpoint: Endpoint) throws(FileError) {
    if failing { throw FileError("write", "/state/\(endpoint.id).json", ENOSPC) }
    saved.append(endpoint)
  }

  func remove(id: String) throws(FileError) -> Bool {
    if failing { throw FileError("remove", "/state/\(id).json", EIO) }
    removed.append(id)
    return true
  }

  func loadAll() throws(FileError) -> (endpoints: [Endpoint], problems: [String]) { (saved, []) }
}
