import Foundation

/// The manifests of seed 001 (Cilium's sidecar-less mesh article), as the article applies them,
/// from `install/lab-examples/service-mesh` (where the benchmarks and users take them too).
enum SeedEnvoyManifests {
  static let directory = Artifacts.repoRoot.appendingPathComponent(
    "install/lab-examples/service-mesh")

  /// The CiliumEnvoyConfig of the article, over echo-same-node and echo-other-node in cilium-test.
  static let envoyConfig = read("envoy-lb-listener.yaml")

  /// The Ingress of the article: /foo to foo-app, /bar to bar-app.
  static let ingress = read("cilium-ingress.yaml")

  private static func read(_ name: String) -> String {
    let url = directory.appendingPathComponent(name)
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
      fatalError("the seed manifest \(url.path) is missing")
    }
    return text
  }
}
