import Foundation
import XCTest

/// install/lab.d/derive.py, the lab's EndpointSlice controller, on a hand-made lab
/// directory and the cluster's Services: which pods become endpoints of which Service (in the
/// Service's namespace), with which ports, node, zone and conditions (ready, not ready,
/// terminating), and which lab-made objects are stale. No root needed.
final class LabDerivationTests: XCTestCase {
  static var script: String {
    Artifacts.repoRoot.appendingPathComponent("install/lab.d/derive.py").path
  }

  var directory: URL!

  override func setUpWithError() throws {
    directory = FileManager.default.temporaryDirectory
      .appendingPathComponent(TestNode.uniqueName("derive"))
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: directory)
  }

  func write(_ text: String, _ path: String) throws {
    let url = directory.appendingPathComponent(path)
    try FileManager.default.createDirectory(
      at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try text.write(to: url, atomically: true, encoding: .utf8)
  }

  func service(_ name: String, selector: String, targetPort: String, namespace: String = "default")
    -> String
  {
    """
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "\(name)", "namespace": "\(namespace)"},
     "spec": {"clusterIP": "10.96.0.1", \(selector) "ports": [{"name": "http", "port": 80, "targetPort": \(targetPort)}]}}
    """
  }

  func labMade(_ kind: String, _ name: String) -> String {
    let apiVersion = kind == "Pod" ? "v1" : "discovery.k8s.io/v1"
    return """
      {"apiVersion": "\(apiVersion)", "kind": "\(kind)", "metadata": {"name": "\(name)", "namespace": "default", "annotations": {"junction.io/lab": "t"}}}
      """
  }

  func testSlicesFollowSelectorsPortsAndZonesAndStaleObjectsAreFound() throws {
    try write("zone-a\n", "lab/nodes/node1/zone")
    try write("zone-b\n", "lab/nodes/node2/zone")
    for (pod, node, ip, labels, ports, namespace, state) in [
      ("a", "node1", "10.240.1.2", "app=web\n", "http=8080\n", "default", "ready"),
      ("b", "node2", "10.240.2.2", "app=web\ntier=x\n", "", "default", "terminating"),
      ("c", "node1", "10.240.1.3", "app=other\n", "", "default", "ready"),
      ("d", "node2", "10.240.2.3", "app=web\n", "", "prod", "not-ready"),
    ] {
      try write("\(node)\n", "lab/pods/\(pod)/node")
      try write("\(namespace)\n", "lab/pods/\(pod)/namespace")
      try write("\(state)\n", "lab/pods/\(pod)/state")
      try write("\(ip)\n", "lab/pods/\(pod)/ip")
      try write(labels, "lab/pods/\(pod)/labels")
      try write(ports, "lab/pods/\(pod)/ports")
    }
    let services = [
      service("named", selector: #""selector": {"app": "web"},"#, targetPort: #""http""#),
      service("numbered", selector: #""selector": {"app": "web"},"#, targetPort: "8081"),
      service("manual", selector: "", targetPort: "80"),
      service(
        "elsewhere", selector: #""selector": {"app": "web"},"#, targetPort: "80", namespace: "prod"),
    ]
    // Lab-made objects in the cluster: one still desired, two stale.
    let existing = [
      labMade("EndpointSlice", "removed-lab0"), labMade("Pod", "old"), labMade("Pod", "a"),
    ]
    let (result, desired) = try derive(services: services, existing: existing)
    XCTAssertTrue(result.stderr.contains("pod b has no port named 'http'"), result.stderr)

    let pods = desired.filter { $0["kind"] as? String == "Pod" }
    XCTAssertEqual(pods.map(name).sorted(), ["a", "b", "c", "d"])
    let podA = try XCTUnwrap(pods.first { name($0) == "a" })
    XCTAssertEqual((podA["spec"] as? [String: Any])?["nodeName"] as? String, "node1")
    let status = try XCTUnwrap(podA["status"] as? [String: Any])
    XCTAssertEqual(status["podIP"] as? String, "10.240.1.2")
    XCTAssertEqual(
      (status["conditions"] as? [[String: String]])?.first, ["type": "Ready", "status": "True"])
    let podB = try XCTUnwrap(pods.first { name($0) == "b" })
    XCTAssertNotNil(
      (podB["metadata"] as? [String: Any])?["deletionTimestamp"], "a terminating pod is deleted")
    let podD = try XCTUnwrap(pods.first { name($0) == "d" })
    XCTAssertEqual((podD["metadata"] as? [String: Any])?["namespace"] as? String, "prod")
    XCTAssertEqual(
      ((podD["status"] as? [String: Any])?["conditions"] as? [[String: String]])?.first,
      ["type": "Ready", "status": "False"])

    let slices = desired.filter { $0["kind"] as? String == "EndpointSlice" }
    XCTAssertEqual(
      slices.map(name).sorted(), ["elsewhere-lab0", "named-lab0", "numbered-lab0"],
      "a slice per selector Service; none for the selector-less one")
    let named = try XCTUnwrap(slices.first { name($0) == "named-lab0" })
    XCTAssertEqual(addresses(named), ["10.240.1.2"], "b has no port named http")
    let port = try XCTUnwrap((named["ports"] as? [[String: Any]])?.first, "\(named)")
    XCTAssertEqual(port["name"] as? String, "http")
    XCTAssertEqual(port["port"] as? Int, 8080, "the pod's port named http")
    XCTAssertEqual(port["protocol"] as? String, "TCP")
    XCTAssertEqual(
      ((named["metadata"] as? [String: Any])?["labels"] as? [String: String])?[
        "kubernetes.io/service-name"], "named")

    let numbered = try XCTUnwrap(slices.first { name($0) == "numbered-lab0" })
    XCTAssertEqual(addresses(numbered), ["10.240.1.2", "10.240.2.2"])
    let endpointB = try XCTUnwrap(
      (numbered["endpoints"] as? [[String: Any]])?.first {
        ($0["addresses"] as? [String]) == ["10.240.2.2"]
      })
    XCTAssertEqual(endpointB["nodeName"] as? String, "node2")
    XCTAssertEqual(endpointB["zone"] as? String, "zone-b")
    XCTAssertEqual(
      endpointB["targetRef"] as? [String: String],
      ["kind": "Pod", "namespace": "default", "name": "b"],
      "the pod behind the address, as the EndpointSlice controller writes it")
    XCTAssertEqual(
      endpointB["conditions"] as? [String: Bool],
      ["ready": false, "serving": true, "terminating": true], "b is terminating")
    let endpointA = try XCTUnwrap(
      (numbered["endpoints"] as? [[String: Any]])?.first {
        ($0["addresses"] as? [String]) == ["10.240.1.2"]
      })
    XCTAssertEqual(
      endpointA["conditions"] as? [String: Bool],
      ["ready": true, "serving": true, "terminating": false])
    let elsewhere = try XCTUnwrap(slices.first { name($0) == "elsewhere-lab0" })
    XCTAssertEqual(addresses(elsewhere), ["10.240.2.3"], "only the pod of the Service's namespace")
    XCTAssertEqual(
      (elsewhere["endpoints"] as? [[String: Any]])?.first?["conditions"] as? [String: Bool],
      ["ready": false, "serving": false, "terminating": false], "d is not ready")

    XCTAssertEqual(
      try objects(directory.appendingPathComponent("stale.json").path).map(name).sorted(),
      ["old", "removed-lab0"])
  }

  /// `--ip-family dual` and `ipv6` pods: every address in the v1 Pod's `podIPs` (`podIP` the
  /// first), the IPv4 slice with the IPv4 address only, an IPv6-only pod left out of it.
  func testDualStackAndIPv6OnlyPodsInPodsAndSlices() throws {
    for (pod, ips) in [
      ("dual", ["10.240.1.2", "fd00:10:240:1::2"]), ("six", ["fd00:10:240:2::2"]),
    ] {
      try write("node1\n", "lab/pods/\(pod)/node")
      try write("app=web\n", "lab/pods/\(pod)/labels")
      try write("\(ips[0])\n", "lab/pods/\(pod)/ip")
      try write(ips.joined(separator: "\n") + "\n", "lab/pods/\(pod)/ips")
    }
    let (_, desired) = try derive(services: [
      service("web", selector: #""selector": {"app": "web"},"#, targetPort: "80")
    ])
    func status(_ pod: String) -> [String: Any]? {
      desired.first { $0["kind"] as? String == "Pod" && name($0) == pod }?["status"]
        as? [String: Any]
    }
    XCTAssertEqual(status("dual")?["podIP"] as? String, "10.240.1.2")
    XCTAssertEqual(
      (status("dual")?["podIPs"] as? [[String: String]])?.compactMap { $0["ip"] },
      ["10.240.1.2", "fd00:10:240:1::2"])
    XCTAssertEqual(status("six")?["podIP"] as? String, "fd00:10:240:2::2")
    let slices = desired.filter { $0["kind"] as? String == "EndpointSlice" }
    XCTAssertEqual(slices.map(name), ["web-lab0"])
    XCTAssertEqual(slices.first?["addressType"] as? String, "IPv4")
    XCTAssertEqual(slices.first.map(addresses), ["10.240.1.2"])
  }

  /// A Service's slices follow its families, as the controller's (one set per family):
  /// addressType IPv6 from the pods' IPv6 addresses for an IPv6 family, none of a family the
  /// Service lacks (ipFamilies, else its clusterIPs' families, else IPv4).
  func testSlicesPerFamilyOfTheService() throws {
    for (pod, ips) in [
      ("dual", ["10.240.1.2", "fd00:10:240:1::2"]), ("six", ["fd00:10:240:2::2"]),
      ("four", ["10.240.2.3"]),
    ] {
      try write("node1\n", "lab/pods/\(pod)/node")
      try write("app=web\n", "lab/pods/\(pod)/labels")
      try write("\(ips[0])\n", "lab/pods/\(pod)/ip")
      try write(ips.joined(separator: "\n") + "\n", "lab/pods/\(pod)/ips")
    }
    func spec(_ name: String, _ fields: String, selector: String = #"{"app": "web"}"#) -> String {
      """
      {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "\(name)", "namespace": "default"},
       "spec": {\(fields) "selector": \(selector), "ports": [{"port": 80, "targetPort": 8080}]}}
      """
    }
    let services = [
      spec(
        "both",
        #""ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"], "clusterIPs": ["fd00:10:96::a", "10.96.0.10"],"#
      ),
      spec("sixonly", #""clusterIP": "fd00:10:96::b","#),
      spec("fouronly", #""ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack","#),
      spec(
        "nobody", #""ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack","#,
        selector: #"{"app": "none"}"#),
    ]
    let slices = try derive(services: services).desired.filter {
      $0["kind"] as? String == "EndpointSlice"
    }
    var byName: [String: (type: String, addresses: [String])] = [:]
    for slice in slices {
      byName[name(slice)] = (slice["addressType"] as? String ?? "", addresses(slice))
    }
    XCTAssertEqual(
      byName.keys.sorted(),
      [
        "both-ipv6-lab0", "both-lab0", "fouronly-lab0", "nobody-ipv6-lab0", "nobody-lab0",
        "sixonly-ipv6-lab0",
      ])
    XCTAssertEqual(byName["both-lab0"]?.type, "IPv4")
    XCTAssertEqual(byName["both-lab0"]?.addresses, ["10.240.1.2", "10.240.2.3"])
    XCTAssertEqual(byName["both-ipv6-lab0"]?.type, "IPv6")
    XCTAssertEqual(byName["both-ipv6-lab0"]?.addresses, ["fd00:10:240:1::2", "fd00:10:240:2::2"])
    XCTAssertEqual(byName["sixonly-ipv6-lab0"]?.type, "IPv6", "the clusterIP's family")
    XCTAssertEqual(
      byName["sixonly-ipv6-lab0"]?.addresses, ["fd00:10:240:1::2", "fd00:10:240:2::2"])
    XCTAssertEqual(byName["fouronly-lab0"]?.addresses, ["10.240.1.2", "10.240.2.3"])
    XCTAssertEqual(byName["nobody-ipv6-lab0"]?.type, "IPv6")
    XCTAssertEqual(byName["nobody-ipv6-lab0"]?.addresses, [], "an empty slice per family")
    let v6 = try XCTUnwrap(slices.first { name($0) == "both-ipv6-lab0" })
    XCTAssertEqual(
      ((v6["metadata"] as? [String: Any])?["labels"] as? [String: String])?[
        "kubernetes.io/service-name"], "both")
    XCTAssertEqual((v6["ports"] as? [[String: Any]])?.first?["port"] as? Int, 8080)
  }

  /// Runs derive.py over the lab directory, the cluster's `services` and the lab-made
  /// `existing` objects (JSON texts; stale ones go to stale.json): its output, checked to
  /// have succeeded, and the desired objects it wrote.
  func derive(services: [String], existing: [String] = []) throws -> (
    result: CommandOutput, desired: [[String: Any]]
  ) {
    func list(_ items: [String]) -> String {
      #"{"apiVersion": "v1", "kind": "List", "items": ["# + items.joined(separator: ",") + "]}"
    }
    try write(list(services), "services.json")
    try write(list(existing), "existing.json")
    let desiredPath = directory.appendingPathComponent("desired.json").path
    let result = try Shell.run([
      "python3", LabDerivationTests.script, directory.appendingPathComponent("lab").path, "t",
      directory.appendingPathComponent("services.json").path,
      directory.appendingPathComponent("existing.json").path, desiredPath,
      directory.appendingPathComponent("stale.json").path,
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    return (result, try objects(desiredPath))
  }

  func objects(_ path: String) throws -> [[String: Any]] {
    let list = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
    return try XCTUnwrap((list as? [String: Any])?["items"] as? [[String: Any]])
  }

  func name(_ object: [String: Any]) -> String {
    (object["metadata"] as? [String: Any])?["name"] as? String ?? ""
  }

  func addresses(_ slice: [String: Any]) -> [String] {
    ((slice["endpoints"] as? [[String: Any]]) ?? []).flatMap { $0["addresses"] as? [String] ?? [] }
      .sorted()
  }
}
