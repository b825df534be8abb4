import CNIKit
import Foundation
import XCTest

/// Every conflist in cni-conf/ is valid JSON, and each Junction plugin in it passes the
/// plugin's own validation once the runtime has injected `name` and `cniVersion`, at every
/// version the list offers.
final class ExampleConfigTests: XCTestCase {
  func testEveryExampleConflistValidates() throws {
    let directory = Artifacts.repoRoot.appendingPathComponent("cni-conf")
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
      .filter { $0.hasSuffix(".conflist") }
    XCTAssertFalse(files.isEmpty, "no example conflists found in \(directory.path)")
    for file in files {
      let data = try Data(contentsOf: directory.appendingPathComponent(file))
      let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], file)
      let plugins = try XCTUnwrap(list["plugins"] as? [[String: Any]], file)
      let versions =
        [list["cniVersion"] as? String].compactMap { $0 } + (list["cniVersions"] as? [String] ?? [])
      XCTAssertNotNil(
        CNIVersion.select(cniVersion: list["cniVersion"] as? String, cniVersions: versions), file)
      var sawJunction = false
      for plugin in plugins where plugin["type"] as? String == "junction" {
        sawJunction = true
        for version in versions {
          var request = plugin
          request["name"] = list["name"]
          request["cniVersion"] = version
          if plugin["mode"] as? String == "chained" {
            // What the runtime inserts for a chained ADD: the previous plugin's result.
            request["prevResult"] = [
              "cniVersion": version,
              "interfaces": [["name": "eth0", "sandbox": "/var/run/netns/example"]],
              "ips": [["address": "10.244.1.5/24", "interface": 0]],
            ]
          }
          let stdin = Array(try JSONSerialization.data(withJSONObject: request))
          XCTAssertNoThrow(try JunctionConfig.parse(stdin, for: .add), "\(file) at \(version)")
        }
      }
      XCTAssertTrue(sawJunction, "\(file) has no junction plugin")
    }
  }
}
