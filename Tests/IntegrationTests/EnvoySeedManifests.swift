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

  /// The Services echo-same-node and echo-other-node in cilium-test (port 8080, ClusterIPs
  /// 10.96.<subnet>.x and 10.96.<subnet + 1>.x, x from the PID so parallel runs differ), each
  /// with one EndpointSlice whose backend is 127.0.0.1:`backendPort`: what the seed's
  /// CiliumEnvoyConfig balances over, for an agent on the host.
  static func echoServices(backendPort: UInt16, subnet: Int) -> String {
    var text = ""
    for (index, name) in ["echo-same-node", "echo-other-node"].enumerated() {
      text += """
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: cilium-test}
        spec:
          clusterIP: 10.96.\(subnet + index).\(getpid() % 200 + 1)
          ports: [{name: http, port: 8080, targetPort: \(backendPort)}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: \(name)-1
          namespace: cilium-test
          labels: {kubernetes.io/service-name: \(name)}
        addressType: IPv4
        ports: [{name: http, port: \(backendPort), protocol: TCP}]
        endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
        ---

        """
    }
    return text
  }

  private static func read(_ name: String) -> String {
    let url = directory.appendingPathComponent(name)
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
      fatalError("the seed manifest \(url.path) is missing")
    }
    return text
  }
}
