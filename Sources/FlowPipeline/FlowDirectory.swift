import AgentAPI

/// What the agent knows to name a flow's addresses, as of one moment: its endpoints (pods on
/// this node) by address, and its Service frontends by rev-NAT id and by "ip:port/PROTO".
/// Built by the agent from the endpoint registry and the service table; pure lookups here.
public struct FlowDirectory: Sendable {
  public struct Pod: Equatable, Sendable {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
      self.namespace = namespace
      self.name = name
    }
  }

  public var pods: [String: Pod]
  public var servicesByID: [Int: FlowService]
  public var servicesByFrontend: [String: FlowService]

  public init(
    pods: [String: Pod] = [:], servicesByID: [Int: FlowService] = [:],
    servicesByFrontend: [String: FlowService] = [:]
  ) {
    self.pods = pods
    self.servicesByID = servicesByID
    self.servicesByFrontend = servicesByFrontend
  }

  /// From the API's own views: each endpoint's IPs ("10.0.1.5/24" or bare) name its pod
  /// (endpoints without a pod name are left out); each service status's id and frontend
  /// ("10.96.0.10:80/TCP") name its Service ("namespace/name").
  public init(endpoints: [Endpoint], services: [ServiceStatus]) {
    var pods: [String: Pod] = [:]
    for endpoint in endpoints {
      guard let namespace = endpoint.spec.podNamespace, let name = endpoint.spec.podName else {
        continue
      }
      for ip in endpoint.spec.ips {
        let address = ip.split(separator: "/").first.map(String.init) ?? ip
        pods[address] = Pod(namespace: namespace, name: name)
      }
    }
    var byID: [Int: FlowService] = [:]
    var byFrontend: [String: FlowService] = [:]
    for status in services {
      let parts = status.service.split(separator: "/", maxSplits: 1).map(String.init)
      guard parts.count == 2 else { continue }
      let service = FlowService(namespace: parts[0], name: parts[1])
      byID[status.id] = service
      byFrontend[status.frontend] = service
    }
    self.init(pods: pods, servicesByID: byID, servicesByFrontend: byFrontend)
  }
}
