import Foundation
import XCTest

/// The DaemonSet serves Prometheus metrics as Cilium's agent does: the flag on the agent,
/// the container port, and the pod annotations Prometheus' pod discovery reads, all on the
/// same port.
final class KubernetesMetricsManifestTests: XCTestCase {
  func testTheAgentServesMetricsOnOnePortThatThePodAnnouncesToPrometheus() throws {
    let daemonSet = try XCTUnwrap(
      try KubernetesManifestTests.load("junction.yaml").first {
        $0["kind"] as? String == "DaemonSet"
      })
    let pod = try KubernetesManifestTests.podSpec(daemonSet)
    let agent = try KubernetesManifestTests.container(pod, "agent", initContainer: false)
    let args = agent["args"] as? [String] ?? []
    XCTAssertTrue(args.contains("--prometheus-serve-addr=:9962"), "\(args)")
    let ports = agent["ports"] as? [[String: Any]] ?? []
    XCTAssertTrue(
      ports.contains {
        $0["containerPort"] as? Int == 9962 && $0["name"] as? String == "prometheus"
      },
      "\(ports)")
    let template = try XCTUnwrap(
      (daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])
    let annotations = KubernetesManifestTests.metadata(template)["annotations"] as? [String: Any]
    XCTAssertEqual(annotations?["prometheus.io/scrape"] as? String, "true")
    XCTAssertEqual(annotations?["prometheus.io/port"] as? String, "9962")
  }
}
