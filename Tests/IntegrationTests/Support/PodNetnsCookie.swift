import BPFKit
import DatapathABI
import XCTest

extension TestNode {
  /// The cookie of `pod`'s network namespace as a process inside it sees it (Python's
  /// getsockopt SO_NETNS_COOKIE, 71): an oracle independent of the plugin's and the agent's
  /// reading of it.
  func netnsCookie(of pod: String, file: StaticString = #filePath, line: UInt = #line) throws
    -> UInt64
  {
    let script =
      "import socket, struct; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
      + "print(struct.unpack('=Q', s.getsockopt(socket.SOL_SOCKET, 71, 8))[0])"
    let result = try exec(in: pod, ["python3", "-c", script])
    XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
    return try XCTUnwrap(
      UInt64(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
      "no cookie: \(result.stdout) \(result.stderr)", file: file, line: line)
  }
}

/// jnc_pod_netns as the datapath sees it: entries by netns cookie.
enum PodNetnsMap {
  static func entries(bpfFS: String) throws -> [UInt64: junction_pod_netns] {
    let map = try BPFMap.openPinned(at: bpfFS + "/" + JUNCTION_MAP_POD_NETNS)
    var result: [UInt64: junction_pod_netns] = [:]
    for key in try map.keys(as: junction_pod_netns_key.self) {
      result[key.cookie] = try map.lookup(key, as: junction_pod_netns.self)
    }
    return result
  }
}
