// Manifests as `kubectl get -o yaml` prints them (managedFields trimmed), and hand-written ones.
enum Fixtures {
  static let webService = """
    apiVersion: v1
    kind: Service
    metadata:
      annotations:
        kubectl.kubernetes.io/last-applied-configuration: |
          {"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"name":"web","namespace":"default"}}
        service.junction.io/lb-algorithm: maglev
      creationTimestamp: "2025-03-02T10:15:30Z"
      labels:
        app: web
      name: web
      namespace: default
      resourceVersion: "48213"
      uid: 3f6c2a8e-7d1b-4f4e-9c55-0b8a1e2d9f10
    spec:
      clusterIP: 10.96.12.34
      clusterIPs:
      - 10.96.12.34
      internalTrafficPolicy: Cluster
      ipFamilies:
      - IPv4
      ipFamilyPolicy: SingleStack
      ports:
      - name: http
        port: 80
        protocol: TCP
        targetPort: http
      - name: metrics
        port: 9090
        protocol: TCP
        targetPort: 9100
      selector:
        app: web
      sessionAffinity: ClientIP
      sessionAffinityConfig:
        clientIP:
          timeoutSeconds: 600
      type: ClusterIP
    status:
      loadBalancer: {}
    """

  static let webSlice = """
    addressType: IPv4
    apiVersion: discovery.k8s.io/v1
    endpoints:
    - addresses:
      - 10.244.1.7
      conditions:
        ready: true
        serving: true
        terminating: false
      nodeName: node-a
      targetRef:
        kind: Pod
        name: web-5d9c7b8f4-abcde
        namespace: default
        uid: 11111111-2222-3333-4444-555555555555
      zone: zone-1
    - addresses:
      - 10.244.2.9
      conditions:
        ready: false
        serving: true
        terminating: true
      nodeName: node-b
      targetRef:
        kind: Pod
        name: web-5d9c7b8f4-fghij
        namespace: default
      zone: zone-2
    - addresses:
      - 10.244.1.3
      conditions: {}
      nodeName: node-a
    - addresses:
      - 10.244.3.4
      conditions:
        ready: false
        serving: false
        terminating: false
      nodeName: node-c
    kind: EndpointSlice
    metadata:
      annotations:
        endpoints.kubernetes.io/last-change-trigger-time: "2025-03-02T10:16:01Z"
      creationTimestamp: "2025-03-02T10:15:30Z"
      generateName: web-
      generation: 7
      labels:
        endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
        kubernetes.io/service-name: web
      name: web-x7k2p
      namespace: default
      ownerReferences:
      - apiVersion: v1
        blockOwnerDeletion: true
        controller: true
        kind: Service
        name: web
        uid: 3f6c2a8e-7d1b-4f4e-9c55-0b8a1e2d9f10
      resourceVersion: "48290"
      uid: 9a8b7c6d-1111-2222-3333-444455556666
    ports:
    - name: metrics
      port: 9100
      protocol: TCP
    - name: http
      port: 8080
      protocol: TCP
    """

  /// `kubectl get svc,endpointslices -o yaml`.
  static var list: String {
    func indent(_ text: String) -> String {
      text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map {
        $0.offset == 0 ? "- " + $0.element : "  " + $0.element
      }.joined(separator: "\n")
    }
    return """
      apiVersion: v1
      items:
      \(indent(webService))
      \(indent(webSlice))
      kind: List
      metadata:
        resourceVersion: ""
      """
  }

  static let multiDocument = """
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      replicas: 3
    ---
    \(webService)
    ---
    # a comment-only document is dropped
    ---
    \(webSlice)
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: settings
    data:
      key: value
    """

  /// A minimal hand-written service + slice pair.
  static func service(
    name: String = "api", clusterIP: String = "10.96.0.20", port: Int = 80, extra: String = ""
  ) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata:
      name: \(name)
    spec:
      clusterIP: \(clusterIP)
      ports:
      - port: \(port)
        targetPort: 8080
    \(extra)
    """
  }

  static func slice(service: String = "api", endpoints: [(String, Bool, Bool, Bool)]) -> String {
    var text = """
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: \(service)-1
        labels:
          kubernetes.io/service-name: \(service)
      addressType: IPv4
      ports:
      - port: 8080
      endpoints:

      """
    for (address, ready, serving, terminating) in endpoints {
      text += """
        - addresses: ["\(address)"]
          conditions: {ready: \(ready), serving: \(serving), terminating: \(terminating)}

        """
    }
    return text
  }
}
