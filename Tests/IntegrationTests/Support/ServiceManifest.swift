/// A Service and its EndpointSlice, as Kubernetes YAML, for the service tests: one port
/// (→ 8080), every endpoint ready unless named terminating.
enum ServiceManifest {
  /// A CiliumLocalRedirectPolicy sending Service `service` to this node's pods labelled
  /// role=droid, on `toPorts` (a YAML flow list); `skipRedirectFromBackend` nil leaves it out.
  static func droidsRedirectPolicy(
    service: String = "droids", toPorts: String = #"[{port: "80", protocol: TCP}]"#,
    skipRedirectFromBackend: Bool? = nil
  ) -> String {
    """
    apiVersion: cilium.io/v2
    kind: CiliumLocalRedirectPolicy
    metadata: {name: \(service), namespace: default}
    spec:
      redirectFrontend:
        serviceMatcher: {serviceName: \(service), namespace: default}
      redirectBackend:
        localEndpointSelector: {matchLabels: {role: droid}}
        toPorts: \(toPorts)
    """ + (skipRedirectFromBackend.map { "\n  skipRedirectFromBackend: \($0)" } ?? "")
  }

  /// TCP and UDP on 8080, named as the tests' services name their ports.
  static let tcpAndUDP8080 =
    #"[{port: "8080", name: tcp, protocol: TCP}, {port: "8080", name: udp, protocol: UDP}]"#

  /// A ClusterIP Service on port 80 → 8080 (port name "http").
  static func clusterIP(name: String, clusterIP: String, backends: [String]) -> String {
    service(name: name, clusterIP: clusterIP, backends: backends)
  }

  /// Service `name` on `port`/`proto` → 8080: a NodePort Service when `nodePort` is given,
  /// else ClusterIP. `terminating` backends get {ready: false, serving: true, terminating:
  /// true}; `annotations` go on the Service, `affinityTimeout` asks for ClientIP affinity.
  static func service(
    name: String, clusterIP: String, backends: [String], port: Int = 80,
    protocol proto: String = "TCP", portName: String = "http", nodePort: UInt16? = nil,
    terminating: Set<String> = [], annotations: [String: String] = [:],
    affinityTimeout: Int? = nil
  ) -> String {
    let endpoints = backends.map { address -> String in
      let conditions =
        terminating.contains(address)
        ? "{ready: false, serving: true, terminating: true}" : "{ready: true}"
      return "  - addresses: [\"\(address)\"]\n    conditions: \(conditions)"
    }.joined(separator: "\n")
    let annotationLines = annotations.sorted { $0.key < $1.key }
      .map { "    \($0.key): \"\($0.value)\"" }.joined(separator: "\n")
    let metadata =
      annotations.isEmpty
      ? "metadata: {name: \(name), namespace: default}"
      : "metadata:\n  name: \(name)\n  namespace: default\n  annotations:\n\(annotationLines)"
    let affinity =
      affinityTimeout.map {
        "\n  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP: {timeoutSeconds: \($0)}"
      } ?? ""
    let nodePortField = nodePort.map { ", nodePort: \($0)" } ?? ""
    return """
      apiVersion: v1
      kind: Service
      \(metadata)
      spec:
        type: \(nodePort == nil ? "ClusterIP" : "NodePort")
        clusterIP: \(clusterIP)\(affinity)
        ports:
        - {name: \(portName), port: \(port), protocol: \(proto), targetPort: 8080\(nodePortField)}
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: \(name)-abc
        namespace: default
        labels: {kubernetes.io/service-name: \(name)}
      addressType: IPv4
      ports:
      - {name: \(portName), port: 8080, protocol: \(proto)}
      endpoints:\(backends.isEmpty ? " []" : "\n" + endpoints)
      """
  }

  /// An IPv6-only (SingleStack) ClusterIP Service `name` at `vip`:80, TCP and UDP (port
  /// names "tcp" and "udp") → 8080, and its IPv6 EndpointSlice over `backends`.
  static func ipv6TCPAndUDP(name: String, vip: String, backends: [String]) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: \(name), namespace: default}
    spec:
      type: ClusterIP
      clusterIP: \(vip)
      clusterIPs: [\(vip)]
      ipFamilies: [IPv6]
      ipFamilyPolicy: SingleStack
      ports:
      - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
      - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: \(name)-v6
      namespace: default
      labels: {kubernetes.io/service-name: \(name)}
    addressType: IPv6
    ports:
    - {name: tcp, port: 8080, protocol: TCP}
    - {name: udp, port: 8080, protocol: UDP}
    endpoints:
    \(backends.map { "- {addresses: [\"\($0)\"], conditions: {ready: true}}" }.joined(separator: "\n"))
    """
  }
}
