import CNIKit

/// L4 protocols a Service port may name. Kubernetes' default is TCP.
public enum L4Protocol: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
  case tcp = "TCP"
  case udp = "UDP"
  case sctp = "SCTP"

  public static func < (lhs: L4Protocol, rhs: L4Protocol) -> Bool {
    allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
  }
}

/// A namespaced object's identity, "default/web".
public struct NamespacedName: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
  public var namespace: String
  public var name: String

  public init(namespace: String, name: String) {
    self.namespace = namespace
    self.name = name
  }

  public var description: String { "\(namespace)/\(name)" }

  public static func < (lhs: NamespacedName, rhs: NamespacedName) -> Bool {
    (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
  }
}

/// The metadata fields Junction reads. `namespace` is "default" when the manifest has none,
/// as `kubectl apply` does without `-n`; cluster-scoped kinds (Node) have "".
public struct ObjectMeta: Hashable, Sendable {
  public var name: String
  public var namespace: String
  public var uid: String?
  public var labels: [String: String]
  public var annotations: [String: String]

  public init(
    name: String, namespace: String = "default", uid: String? = nil,
    labels: [String: String] = [:], annotations: [String: String] = [:]
  ) {
    self.name = name
    self.namespace = namespace
    self.uid = uid
    self.labels = labels
    self.annotations = annotations
  }

  public var namespacedName: NamespacedName { NamespacedName(namespace: namespace, name: name) }
}

/// `targetPort`: a number, or the name of a container port.
public enum IntOrString: Hashable, Sendable, CustomStringConvertible {
  case int(Int)
  case string(String)

  public var description: String {
    switch self {
    case .int(let number): String(number)
    case .string(let name): name
    }
  }
}

public enum ServiceType: String, Hashable, Sendable, CaseIterable {
  case clusterIP = "ClusterIP"
  case nodePort = "NodePort"
  case loadBalancer = "LoadBalancer"
  case externalName = "ExternalName"
}

/// How a Service picks a backend for a new connection. Set per Service with the annotation
/// `service.junction.io/lb-algorithm: maglev|random` (Cilium's `service.cilium.io/lb-algorithm`
/// under our group); default `random`, as in Cilium and kube-proxy's nftables `numgen random`.
public enum LBAlgorithm: String, Hashable, Sendable, Codable, CaseIterable {
  case random
  case maglev

  public static let annotation = "service.junction.io/lb-algorithm"
}

/// `sessionAffinity` with its `sessionAffinityConfig.clientIP.timeoutSeconds`
/// (default 10800 = 3 h, allowed 1...86400, as Kubernetes validates).
public enum SessionAffinity: Hashable, Sendable {
  case none
  case clientIP(timeoutSeconds: Int)

  public static let defaultTimeoutSeconds = 10800
  public static let timeoutRange = 1...86400

  public var timeoutSeconds: Int? {
    if case .clientIP(let timeout) = self { return timeout }
    return nil
  }
}

/// `spec.ipFamilies` entries.
public enum IPFamily: String, Hashable, Sendable, CaseIterable {
  case ipv4 = "IPv4"
  case ipv6 = "IPv6"

  public init(of address: IPAddress) { self = address.isIPv4 ? .ipv4 : .ipv6 }
}

/// `spec.ipFamilyPolicy`. Unset means SingleStack (Kubernetes' default).
public enum IPFamilyPolicy: String, Hashable, Sendable, CaseIterable {
  case singleStack = "SingleStack"
  case preferDualStack = "PreferDualStack"
  case requireDualStack = "RequireDualStack"
}

public struct ServicePort: Hashable, Sendable {
  /// "" when the service has a single unnamed port.
  public var name: String
  public var proto: L4Protocol
  public var port: UInt16
  /// Defaults to `port` when omitted, as Kubernetes defaults it.
  public var targetPort: IntOrString
  public var nodePort: UInt16?

  public init(
    name: String = "", proto: L4Protocol = .tcp, port: UInt16, targetPort: IntOrString? = nil,
    nodePort: UInt16? = nil
  ) {
    self.name = name
    self.proto = proto
    self.port = port
    self.targetPort = targetPort ?? .int(Int(port))
    self.nodePort = nodePort
  }
}

/// `v1/Service`, the fields the service manager acts on.
public struct Service: Hashable, Sendable {
  public var meta: ObjectMeta
  public var type: ServiceType
  /// The cluster IPs (clusterIPs, else clusterIP), at most one per family, primary first:
  /// each is a ClusterIP frontend of its family. Empty when headless, ExternalName, or when no
  /// address was given (no allocator outside a cluster).
  public var clusterIPs: [IPAddress]
  /// `spec.ipFamilies` as given, else the families of `clusterIPs` (what the API server
  /// would have defaulted). Informational: the frontends follow `clusterIPs`.
  public var ipFamilies: [IPFamily]
  /// `spec.ipFamilyPolicy`; nil when unset (SingleStack).
  public var ipFamilyPolicy: IPFamilyPolicy?
  /// `clusterIP: None`: DNS-only, no frontend.
  public var isHeadless: Bool
  public var ports: [ServicePort]
  public var selector: [String: String]
  public var sessionAffinity: SessionAffinity
  public var externalIPs: [IPAddress]
  /// `status.loadBalancer.ingress[].ip` (entries with only a hostname are ignored).
  public var loadBalancerIngress: [IPAddress]
  /// Kept for the topology issue; not acted on yet.
  public var externalTrafficPolicy: String?
  public var internalTrafficPolicy: String?
  public var trafficDistribution: String?
  public var algorithm: LBAlgorithm
  public var externalName: String?

  public init(
    meta: ObjectMeta, type: ServiceType = .clusterIP, clusterIPs: [IPAddress] = [],
    isHeadless: Bool = false, ports: [ServicePort] = [], selector: [String: String] = [:],
    sessionAffinity: SessionAffinity = .none, externalIPs: [IPAddress] = [],
    loadBalancerIngress: [IPAddress] = [], externalTrafficPolicy: String? = nil,
    internalTrafficPolicy: String? = nil, trafficDistribution: String? = nil,
    algorithm: LBAlgorithm = .random, externalName: String? = nil, ipFamilies: [IPFamily]? = nil,
    ipFamilyPolicy: IPFamilyPolicy? = nil
  ) {
    self.meta = meta
    self.type = type
    self.clusterIPs = clusterIPs
    self.ipFamilies = ipFamilies ?? clusterIPs.map(IPFamily.init(of:))
    self.ipFamilyPolicy = ipFamilyPolicy
    self.isHeadless = isHeadless
    self.ports = ports
    self.selector = selector
    self.sessionAffinity = sessionAffinity
    self.externalIPs = externalIPs
    self.loadBalancerIngress = loadBalancerIngress
    self.externalTrafficPolicy = externalTrafficPolicy
    self.internalTrafficPolicy = internalTrafficPolicy
    self.trafficDistribution = trafficDistribution
    self.algorithm = algorithm
    self.externalName = externalName
  }
}

public enum EndpointAddressType: String, Hashable, Sendable, CaseIterable {
  case ipv4 = "IPv4"
  case ipv6 = "IPv6"
  case fqdn = "FQDN"
}

public struct EndpointPort: Hashable, Sendable {
  /// Equals the Service port's name (that is how kube-proxy pairs them); "" for unnamed.
  public var name: String
  /// nil is allowed by the API ("all ports"); such a port resolves nothing by itself.
  public var port: UInt16?
  public var proto: L4Protocol

  public init(name: String = "", port: UInt16?, proto: L4Protocol = .tcp) {
    self.name = name
    self.port = port
    self.proto = proto
  }
}

/// An endpoint's `targetRef`: the object behind its addresses (kind "Pod" from the
/// EndpointSlice controller). Only what names a flow's address is kept.
public struct EndpointTarget: Hashable, Sendable {
  public var kind: String
  public var namespace: String
  public var name: String

  public init(kind: String, namespace: String, name: String) {
    self.kind = kind
    self.namespace = namespace
    self.name = name
  }
}

/// One endpoint with its conditions already defaulted the way the API documents them:
/// `ready` nil → true; `serving` nil → the value of `ready`; `terminating` nil → false.
public struct Endpoint: Hashable, Sendable {
  public var addresses: [IPAddress]
  public var ready: Bool
  public var serving: Bool
  public var terminating: Bool
  public var nodeName: String?
  public var zone: String?
  public var hintZones: [String]
  public var hintNodes: [String]
  /// Its `targetRef` (namespace defaulted to the slice's), nil without one.
  public var target: EndpointTarget?

  public init(
    addresses: [IPAddress], ready: Bool = true, serving: Bool? = nil, terminating: Bool = false,
    nodeName: String? = nil, zone: String? = nil, hintZones: [String] = [],
    hintNodes: [String] = [], target: EndpointTarget? = nil
  ) {
    self.addresses = addresses
    self.ready = ready
    self.serving = serving ?? ready
    self.terminating = terminating
    self.nodeName = nodeName
    self.zone = zone
    self.hintZones = hintZones
    self.hintNodes = hintNodes
    self.target = target
  }
}

/// `discovery.k8s.io/v1/EndpointSlice`.
public struct EndpointSlice: Hashable, Sendable {
  public static let serviceNameLabel = "kubernetes.io/service-name"

  public var meta: ObjectMeta
  public var addressType: EndpointAddressType
  public var ports: [EndpointPort]
  /// Kept packed (see `PackedEndpoints` why): each read unpacks them, so read once and keep
  /// the array while using it; each write packs them all again.
  public var endpoints: [Endpoint] {
    get { packedEndpoints.endpoints }
    set { packedEndpoints = PackedEndpoints(newValue) }
  }
  private var packedEndpoints: PackedEndpoints

  public init(
    meta: ObjectMeta, addressType: EndpointAddressType = .ipv4, ports: [EndpointPort] = [],
    endpoints: [Endpoint] = []
  ) {
    self.meta = meta
    self.addressType = addressType
    self.ports = ports
    packedEndpoints = PackedEndpoints(endpoints)
  }

  /// The Service this slice belongs to (same namespace), from its label.
  public var serviceName: NamespacedName? {
    meta.labels[Self.serviceNameLabel].map { NamespacedName(namespace: meta.namespace, name: $0) }
  }
}

/// `v1/Node`: name and labels (the zone label feeds topology later).
public struct KubeNode: Hashable, Sendable {
  public var name: String
  public var labels: [String: String]

  public init(name: String, labels: [String: String] = [:]) {
    self.name = name
    self.labels = labels
  }
}

/// `v1/Pod`: what LRP and the CNI's pod labels need.
public struct Pod: Hashable, Sendable {
  public var meta: ObjectMeta
  public var nodeName: String?
  public var podIPs: [IPAddress]
  /// The `Ready` condition is "True".
  public var ready: Bool

  public init(
    meta: ObjectMeta, nodeName: String? = nil, podIPs: [IPAddress] = [], ready: Bool = false
  ) {
    self.meta = meta
    self.nodeName = nodeName
    self.podIPs = podIPs
    self.ready = ready
  }
}

/// A LocalRedirectPolicy, ours (`junction.io/v1alpha1`) or Cilium's (`cilium.io/v2`
/// `CiliumLocalRedirectPolicy`, the same spec): the raw spec as written, and its meaning
/// (`redirect`, see `LocalRedirectSpec`; nil only for objects built in code without one).
public struct RedirectPolicy: Hashable, Sendable {
  public var meta: ObjectMeta
  public var apiVersion: String
  public var kind: String
  public var spec: YAMLValue
  public var redirect: LocalRedirectSpec?

  public init(
    meta: ObjectMeta, apiVersion: String, kind: String, spec: YAMLValue,
    redirect: LocalRedirectSpec? = nil
  ) {
    self.meta = meta
    self.apiVersion = apiVersion
    self.kind = kind
    self.spec = spec
    self.redirect = redirect
  }
}

/// The kinds Junction understands, with the one apiVersion each must carry.
public enum ResourceKind: String, Hashable, Sendable, CaseIterable, Comparable {
  case service = "Service"
  case endpointSlice = "EndpointSlice"
  case node = "Node"
  case pod = "Pod"
  case localRedirectPolicy = "LocalRedirectPolicy"
  case ciliumLocalRedirectPolicy = "CiliumLocalRedirectPolicy"
  // The L7 kinds (issue 14), served by the node's Envoy.
  case ciliumEnvoyConfig = "CiliumEnvoyConfig"
  case ciliumClusterwideEnvoyConfig = "CiliumClusterwideEnvoyConfig"
  case ingress = "Ingress"
  case secret = "Secret"

  /// Our own API group, for LocalRedirectPolicy.
  public static let junctionGroupVersion = "junction.io/v1alpha1"

  public var apiVersion: String {
    switch self {
    case .service, .node, .pod: "v1"
    case .endpointSlice: "discovery.k8s.io/v1"
    case .localRedirectPolicy: Self.junctionGroupVersion
    case .ciliumLocalRedirectPolicy: "cilium.io/v2"
    case .ciliumEnvoyConfig, .ciliumClusterwideEnvoyConfig: "cilium.io/v2"
    case .ingress: "networking.k8s.io/v1"
    case .secret: "v1"
    }
  }

  /// Every apiVersion accepted for the kind (the envoy configs have the same spec in v2alpha1).
  public var apiVersions: Set<String> {
    switch self {
    case .ciliumEnvoyConfig, .ciliumClusterwideEnvoyConfig: L7Decoding.envoyConfigVersions
    default: [apiVersion]
    }
  }

  public var isNamespaced: Bool { self != .node && self != .ciliumClusterwideEnvoyConfig }

  public static func < (lhs: ResourceKind, rhs: ResourceKind) -> Bool {
    allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
  }
}

/// Identity of a stored object: kind + namespace + name ("" namespace for Nodes).
public struct ResourceKey: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
  public var kind: ResourceKind
  public var namespace: String
  public var name: String

  public init(kind: ResourceKind, namespace: String, name: String) {
    self.kind = kind
    self.namespace = namespace
    self.name = name
  }

  public var description: String {
    namespace.isEmpty ? "\(kind.rawValue) \(name)" : "\(kind.rawValue) \(namespace)/\(name)"
  }

  public static func < (lhs: ResourceKey, rhs: ResourceKey) -> Bool {
    (lhs.kind, lhs.namespace, lhs.name) < (rhs.kind, rhs.namespace, rhs.name)
  }
}

/// One decoded, valid object.
/// `indirect`: each case's value is boxed, so a `Resource` is one pointer. The node keeps one
/// per object in `ResourceSet`'s dictionary, whose every slot was as wide as the widest case
/// (a `Service`, ≈ 200 bytes; 8 MiB of slots at 10,000 Services with their slices).
public indirect enum Resource: Hashable, Sendable {
  case service(Service)
  case endpointSlice(EndpointSlice)
  case node(KubeNode)
  case pod(Pod)
  case redirectPolicy(RedirectPolicy)
  case envoyConfig(EnvoyConfigResource)
  case ingress(IngressResource)
  case tlsSecret(TLSSecret)

  public var key: ResourceKey {
    switch self {
    case .service(let service):
      ResourceKey(kind: .service, namespace: service.meta.namespace, name: service.meta.name)
    case .endpointSlice(let slice):
      ResourceKey(kind: .endpointSlice, namespace: slice.meta.namespace, name: slice.meta.name)
    case .node(let node): ResourceKey(kind: .node, namespace: "", name: node.name)
    case .pod(let pod): ResourceKey(kind: .pod, namespace: pod.meta.namespace, name: pod.meta.name)
    case .redirectPolicy(let policy):
      ResourceKey(
        kind: policy.kind == ResourceKind.ciliumLocalRedirectPolicy.rawValue
          ? .ciliumLocalRedirectPolicy : .localRedirectPolicy,
        namespace: policy.meta.namespace, name: policy.meta.name)
    case .envoyConfig(let config):
      ResourceKey(kind: config.kind, namespace: config.meta.namespace, name: config.meta.name)
    case .ingress(let ingress):
      ResourceKey(kind: .ingress, namespace: ingress.meta.namespace, name: ingress.meta.name)
    case .tlsSecret(let secret):
      ResourceKey(kind: .secret, namespace: secret.meta.namespace, name: secret.meta.name)
    }
  }
}
