import ServiceCore

/// One Service's backends as Junction balances them (from the ServiceTable's desired state):
/// per Service port, the ready backends' addresses and target ports.
public struct ServiceBackendSet: Sendable, Hashable {
  public struct Port: Sendable, Hashable {
    public var name: String
    public var port: UInt16
    public var backends: [Backend]
    public init(name: String = "", port: UInt16, backends: [Backend]) {
      self.name = name
      self.port = port
      self.backends = backends
    }
  }
  public struct Backend: Sendable, Hashable {
    public var address: String
    public var port: UInt16
    public init(address: String, port: UInt16) {
      self.address = address
      self.port = port
    }
  }
  public var service: NamespacedName
  public var ports: [Port]

  public init(service: NamespacedName, ports: [Port]) {
    self.service = service
    self.ports = ports
  }
}

/// Junction's backends → ClusterLoadAssignments named as Cilium names them
/// (envoy_l7lb_backend_syncer.go): `ns/svc:<port number>`, `ns/svc:<port name>`, and `ns/svc`
/// with the backends of every port.
public enum ServiceEndpoints {
  public static func assignments(_ sets: [ServiceBackendSet]) -> [String: YAMLValue] {
    var result: [String: YAMLValue] = [:]
    for set in sets {
      var all: [ServiceBackendSet.Backend] = []
      for port in set.ports {
        let assignment = assignment(port.backends)
        result["\(set.service):\(port.port)"] = assignment
        if !port.name.isEmpty { result["\(set.service):\(port.name)"] = assignment }
        for backend in port.backends where !all.contains(backend) { all.append(backend) }
      }
      result["\(set.service)"] = assignment(all)
    }
    return result
  }

  static func assignment(_ backends: [ServiceBackendSet.Backend]) -> YAMLValue {
    let endpoints = backends.map { backend -> YAMLValue in
      .map([
        "endpoint": .map([
          "address": .map([
            "socket_address": .map([
              "address": .string(backend.address), "port_value": .int(Int(backend.port)),
            ])
          ])
        ])
      ])
    }
    return .map(["endpoints": .list([.map(["lb_endpoints": .list(endpoints)])])])
  }

  /// From the frontends the service side plans (ServiceTable's desired state): each Service's
  /// TCP ClusterIP frontends, their active backends (so Envoy follows Junction's own view of
  /// readiness and terminating endpoints).
  public static func backendSets(_ frontends: some Collection<ServiceFrontend>)
    -> [ServiceBackendSet]
  {
    var ports: [NamespacedName: [UInt16: ServiceBackendSet.Port]] = [:]
    for frontend in frontends where frontend.type == .clusterIP && frontend.key.proto == .tcp {
      var port =
        ports[frontend.service]?[frontend.key.port]
        ?? ServiceBackendSet.Port(name: frontend.portName, port: frontend.key.port, backends: [])
      for backend in frontend.backends where backend.state == .active {
        let entry = ServiceBackendSet.Backend(
          address: backend.key.address.description, port: backend.key.port)
        if !port.backends.contains(entry) { port.backends.append(entry) }
      }
      ports[frontend.service, default: [:]][frontend.key.port] = port
    }
    return ports.keys.sorted().map { name in
      ServiceBackendSet(
        service: name, ports: ports[name]!.keys.sorted().map { ports[name]![$0]! })
    }
  }
}
