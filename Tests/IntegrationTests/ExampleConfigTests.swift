import CNIKit
import Foundation
import XCTest

/// Every conflist in cni-conf/ (native, and chained after bridge, ptp, flannel, calico,
/// aws-vpc-cni: whatever the directory holds) is valid JSON, every plugin in it has a
/// type, it has a note beside it, and each Junction plugin passes the plugin's own
/// validation for ADD once the runtime has injected `name`, `cniVersion` and (chained) a
/// `prevResult`, at every version the list offers.
final class ExampleConfigTests: XCTestCase {
  func testEveryExampleConflistValidates() throws {
    let directory = Artifacts.repoRoot.appendingPathComponent("cni-conf")
    let entries = try FileManager.default.contentsOfDirectory(atPath: directory.path)
    let files = entries.filter { $0.hasSuffix(".conflist") }.sorted()
    XCTAssertGreaterThanOrEqual(files.count, 4, "example conflists in \(directory.path): \(files)")
    var chainedAfter: Set<String> = []
    for file in files {
      let note = file.replacingOccurrences(of: ".conflist", with: ".md")
      XCTAssertTrue(entries.contains(note), "\(file) has no \(note) saying what to set")
      let data = try Data(contentsOf: directory.appendingPathComponent(file))
      let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], file)
      let plugins = try XCTUnwrap(list["plugins"] as? [[String: Any]], file)
      XCTAssertNotNil(list["name"] as? String, "\(file): no name")
      let versions =
        [list["cniVersion"] as? String].compactMap { $0 } + (list["cniVersions"] as? [String] ?? [])
      XCTAssertNotNil(
        CNIVersion.select(cniVersion: list["cniVersion"] as? String, cniVersions: versions), file)
      for (index, plugin) in plugins.enumerated() {
        let type = plugin["type"] as? String
        XCTAssertFalse(type?.isEmpty ?? true, "\(file): plugins[\(index)] has no type")
      }
      let junctions = plugins.indices.filter { plugins[$0]["type"] as? String == "junction" }
      XCTAssertEqual(junctions.count, 1, "\(file): one junction plugin expected")
      for index in junctions {
        let plugin = plugins[index]
        let chained = plugin["mode"] as? String == "chained"
        if chained {
          // Chained: after the plugin that makes the interface.
          XCTAssertGreaterThan(index, 0, "\(file): a chained junction cannot come first")
          chainedAfter.insert(plugins[0]["type"] as? String ?? "")
        } else {
          XCTAssertEqual(index, 0, "\(file): native junction must be first")
        }
        for version in versions {
          var request = plugin
          request["name"] = list["name"]
          request["cniVersion"] = version
          if chained { request["prevResult"] = Self.prevResult(version) }
          let stdin = Array(try JSONSerialization.data(withJSONObject: request))
          XCTAssertNoThrow(try JunctionConfig.parse(stdin, for: .add), "\(file) at \(version)")
          if chained {
            request["prevResult"] = nil
            let without = Array(try JSONSerialization.data(withJSONObject: request))
            XCTAssertThrowsError(
              try JunctionConfig.parse(without, for: .add), "\(file): ADD without prevResult")
          }
        }
      }
    }
    for cni in ["flannel", "calico", "aws-cni"] {
      XCTAssertTrue(chainedAfter.contains(cni), "no example chains Junction after \(cni)")
    }
  }

  /// What the previous plugin hands Junction: a pod interface and its address.
  static func prevResult(_ version: String) -> [String: Any] {
    [
      "cniVersion": version,
      "interfaces": [
        ["name": "veth1234", "mac": "0a:58:0a:f4:01:01"],
        ["name": "eth0", "mac": "0a:58:0a:f4:01:05", "sandbox": "/var/run/netns/pod"],
      ],
      "ips": [["address": "10.244.1.5/24", "gateway": "10.244.1.1", "interface": 1]],
    ]
  }
}
