import Foundation

/// The manifests of seed 001 (Cilium's sidecar-less mesh article), from
/// `install/lab-examples/service-mesh`, the files the integration tests and benchmarks apply.
enum SeedManifests {
  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("install/lab-examples/service-mesh")

  static let envoyConfig = read("envoy-lb-listener.yaml")
  static let ingress = read("cilium-ingress.yaml")

  private static func read(_ name: String) -> String {
    let url = directory.appendingPathComponent(name)
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
      fatalError("the seed manifest \(url.path) is missing")
    }
    return text
  }
}
