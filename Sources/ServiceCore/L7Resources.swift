/// The L7 resources (issue 14): what the node's Envoy is configured from. ServiceCore only
/// decodes and validates them; ProxyManager translates them into Envoy resources.

/// `spec.services[]` of a CiliumEnvoyConfig: traffic to this Service goes to `listener`
/// (default: the config's first listener), on `ports` (empty: every port).
public struct EnvoyRedirectedService: Hashable, Sendable {
  public var service: NamespacedName
  public var listener: String?
  public var ports: [UInt16]

  public init(service: NamespacedName, listener: String? = nil, ports: [UInt16] = []) {
    self.service = service
    self.listener = listener
    self.ports = ports
  }
}

/// `spec.backendServices[]`: only published to Envoy (EDS), never redirected.
public struct EnvoyBackendService: Hashable, Sendable {
  public var service: NamespacedName
  public var ports: [String]

  public init(service: NamespacedName, ports: [String] = []) {
    self.service = service
    self.ports = ports
  }
}

/// CiliumEnvoyConfig (namespaced) or CiliumClusterwideEnvoyConfig, `cilium.io/v2` or
/// `v2alpha1`: the spec is the same.
public struct EnvoyConfigResource: Hashable, Sendable {
  public var meta: ObjectMeta
  public var clusterwide: Bool
  public var apiVersion: String
  public var services: [EnvoyRedirectedService]
  public var backendServices: [EnvoyBackendService]
  /// Envoy v3 resources (`google.protobuf.Any` as JSON: each a map with `@type`), as written.
  public var resources: [YAMLValue]

  public init(
    meta: ObjectMeta, clusterwide: Bool = false, apiVersion: String = "cilium.io/v2",
    services: [EnvoyRedirectedService] = [], backendServices: [EnvoyBackendService] = [],
    resources: [YAMLValue] = []
  ) {
    self.meta = meta
    self.clusterwide = clusterwide
    self.apiVersion = apiVersion
    self.services = services
    self.backendServices = backendServices
    self.resources = resources
  }

  public var kind: ResourceKind { clusterwide ? .ciliumClusterwideEnvoyConfig : .ciliumEnvoyConfig }
  /// Cilium qualifies names with the config's namespace; a clusterwide one has none ("").
  public var qualifier: String { "\(meta.namespace)/\(meta.name)" }
}

/// A backend of an Ingress rule or its default backend: a Service port by number or name.
public struct IngressBackend: Hashable, Sendable {
  public var service: String
  public var port: IntOrString

  public init(service: String, port: IntOrString) {
    self.service = service
    self.port = port
  }
}

public enum IngressPathType: String, Hashable, Sendable, CaseIterable {
  case exact = "Exact"
  case prefix = "Prefix"
  case implementationSpecific = "ImplementationSpecific"
}

public struct IngressPath: Hashable, Sendable {
  public var path: String
  public var pathType: IngressPathType
  public var backend: IngressBackend

  public init(path: String, pathType: IngressPathType, backend: IngressBackend) {
    self.path = path
    self.pathType = pathType
    self.backend = backend
  }
}

public struct IngressRule: Hashable, Sendable {
  /// nil: every host.
  public var host: String?
  public var paths: [IngressPath]

  public init(host: String? = nil, paths: [IngressPath]) {
    self.host = host
    self.paths = paths
  }
}

public struct IngressTLS: Hashable, Sendable {
  public var hosts: [String]
  public var secretName: String

  public init(hosts: [String], secretName: String) {
    self.hosts = hosts
    self.secretName = secretName
  }
}

/// `networking.k8s.io/v1` Ingress; only those of class `junction` or `cilium` are served.
public struct IngressResource: Hashable, Sendable {
  public static let classes: Set<String> = ["junction", "cilium"]
  public static let legacyClassAnnotation = "kubernetes.io/ingress.class"

  public var meta: ObjectMeta
  public var ingressClassName: String?
  public var defaultBackend: IngressBackend?
  public var rules: [IngressRule]
  public var tls: [IngressTLS]
  /// `status.loadBalancer.ingress[].ip`: the addresses its generated LoadBalancer Service
  /// serves (no LB allocator outside a cluster: the applied Ingress names them, as a lab does).
  public var loadBalancerIPs: [String] = []

  public init(
    meta: ObjectMeta, ingressClassName: String? = "junction", defaultBackend: IngressBackend? = nil,
    rules: [IngressRule] = [], tls: [IngressTLS] = []
  ) {
    self.meta = meta
    self.ingressClassName = ingressClassName
    self.defaultBackend = defaultBackend
    self.rules = rules
    self.tls = tls
  }

  /// Whether Junction serves it: its class (or the legacy annotation) is ours.
  public var isServed: Bool {
    let name = ingressClassName ?? meta.annotations[Self.legacyClassAnnotation]
    return name.map(Self.classes.contains) ?? false
  }
}

/// A `kubernetes.io/tls` Secret (certificate chain and key, PEM). Other Secret types are
/// skipped by the decoder: Junction has no use for them.
public struct TLSSecret: Hashable, Sendable {
  public static let type = "kubernetes.io/tls"
  public var meta: ObjectMeta
  public var certificatePEM: String
  public var privateKeyPEM: String

  public init(meta: ObjectMeta, certificatePEM: String, privateKeyPEM: String) {
    self.meta = meta
    self.certificatePEM = certificatePEM
    self.privateKeyPEM = privateKeyPEM
  }
}
