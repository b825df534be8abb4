/// A ClusterIP Service on port 80 → 8080 and its EndpointSlice, as Kubernetes YAML, for
/// the service tests (every endpoint ready).
enum ServiceManifest {
  static func clusterIP(name: String, clusterIP: String, backends: [String]) -> String {
    let endpoints = backends.map { "  - addresses: [\"\($0)\"]\n    conditions: {ready: true}" }
      .joined(separator: "\n")
    return """
      apiVersion: v1
      kind: Service
      metadata: {name: \(name), namespace: default}
      spec:
        type: ClusterIP
        clusterIP: \(clusterIP)
        ports:
        - {name: http, port: 80, protocol: TCP, targetPort: 8080}
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: \(name)-abc
        namespace: default
        labels: {kubernetes.io/service-name: \(name)}
      addressType: IPv4
      ports:
      - {name: http, port: 8080, protocol: TCP}
      endpoints:\(backends.isEmpty ? " []" : "\n" + endpoints)
      """
  }
}
