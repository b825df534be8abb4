import AgentAPI
import CNIKit

/// What the agent knows to name a flow's addresses, as of one moment: its endpoints (pods on
/// this node) and the Pods it follows, by address, with their labels, and its Service
/// frontends by rev-NAT id and by "ip:port/PROTO". Built by the agent from the endpoint
/// registry, the Pods (Kubernetes API, or applied standalone) and the service table; pure
/// lookups here.
public struct FlowDirectory: Sendable {
  public struct Pod: Equatable, Sendable {
    public var namespace: String
    public var name: String
    /// "key=value", sorted.
    public var labels: [String]

    public init(namespace: String, name: String, labels: [String] = []) {
      self.namespace = namespace
      self.name = name
      self.labels = labels
    }
  }

  /// A Pod object as the agent holds it: its addresses and labels.
  public struct KnownPod: Sendable {
    public var namespace: String
    public var name: String
    public var ips: [String]
    public var labels: [String: String]

    public init(namespace: String, name: String, ips: [String], labels: [String: String]) {
      self.namespace = namespace
      self.name = name
      self.ips = ips
      self.labels = labels
    }
  }

  /// A Service backend known from an EndpointSlice's `targetRef` (kind Pod): its
  /// addresses and the pod's namespace and name. Names backends on other nodes, which the
  /// agent holds no endpoint or Pod object for.
  public struct KnownBackend: Equatable, Sendable {
    public var namespace: String
    public var name: String
    public var ips: [String]

    public init(namespace: String, name: String, ips: [String]) {
      self.namespace = namespace
      self.name = name
      self.ips = ips
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
  /// (endpoints without a pod name are left out), with the labels of the Pod object of that
  /// namespace and name when `pods` has it; a Pod's own IPs name it as well (a pod the
  /// agent follows or was given without an endpoint here); each service status's id and
  /// frontend ("10.96.0.10:80/TCP") name its Service ("namespace/name"). Last, a Service
  /// backend's addresses name its pod (`backends`, from the slices' targetRefs) where
  /// neither an endpoint here nor a Pod object did: a pod on another node.
  public init(
    endpoints: [Endpoint], services: [ServiceStatus], pods known: [KnownPod] = [],
    backends: [KnownBackend] = []
  ) {
    var labelsByName: [String: [String]] = [:]
    var pods: [String: Pod] = [:]
    for backend in backends {
      for ip in backend.ips {
        pods[Self.canonical(ip)] = Pod(namespace: backend.namespace, name: backend.name)
      }
    }
    for pod in known {
      let labels = pod.labels.map { "\($0.key)=\($0.value)" }.sorted()
      labelsByName["\(pod.namespace)/\(pod.name)"] = labels
      for ip in pod.ips {
        pods[Self.canonical(ip)] = Pod(namespace: pod.namespace, name: pod.name, labels: labels)
      }
    }
    for endpoint in endpoints {
      guard let namespace = endpoint.spec.podNamespace, let name = endpoint.spec.podName else {
        continue
      }
      for ip in endpoint.spec.ips {
        let address = ip.split(separator: "/").first.map(String.init) ?? ip
        pods[Self.canonical(address)] = Pod(
          namespace: namespace, name: name, labels: labelsByName["\(namespace)/\(name)"] ?? [])
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

  /// An IPv6 address as flows print it (RFC 5952, FlowIPv6's description), so that
  /// "fd00:0:0::5" from an object names the pod of a flow's "fd00::5"; IPv4 as given.
  static func canonical(_ ip: String) -> String {
    guard ip.contains(":"), let address = IPAddress(ip) else { return ip }
    return address.description
  }
}
