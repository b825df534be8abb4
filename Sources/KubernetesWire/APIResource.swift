/// One collection the agent follows: where it lives in the API, which objects of it (label
/// and field selectors, applied by the server), and what its items are (a LIST's items carry
/// no `kind`/`apiVersion`; the informer puts them back from here).
public struct APIResource: Hashable, Sendable, CustomStringConvertible {
  /// "" for the core group.
  public var group: String
  public var version: String
  /// The URL's plural: "services", "endpointslices".
  public var plural: String
  public var kind: String
  public var labelSelector: String?
  public var fieldSelector: String?
  /// A CustomResourceDefinition may not be installed: a 404 is then noted and retried
  /// later, not an error of the agent.
  public var isCustom: Bool

  public init(
    group: String, version: String, plural: String, kind: String, labelSelector: String? = nil,
    fieldSelector: String? = nil, isCustom: Bool = false
  ) {
    self.group = group
    self.version = version
    self.plural = plural
    self.kind = kind
    self.labelSelector = labelSelector
    self.fieldSelector = fieldSelector
    self.isCustom = isCustom
  }

  public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

  /// "services", "endpointslices.discovery.k8s.io": the resource as RBAC rules name it.
  public var rbacName: String { group.isEmpty ? plural : "\(plural).\(group)" }

  public var description: String { rbacName }

  /// The collection's path over all namespaces.
  public var path: String {
    group.isEmpty ? "/api/\(version)/\(plural)" : "/apis/\(group)/\(version)/\(plural)"
  }

  /// A page of a LIST. The first list asks `resourceVersion=0` (the server's watch cache
  /// answers, not etcd); `continue` follows a previous page's token.
  public func listQuery(limit: Int, continueToken: String?, resourceVersion: String?) -> String {
    var items: [(String, String)] = [("limit", String(limit))]
    if let continueToken {
      items.append(("continue", continueToken))
    } else if let resourceVersion {
      items.append(("resourceVersion", resourceVersion))
    }
    return path + "?" + Self.query(items + selectors)
  }

  /// A WATCH from `resourceVersion` (only changes after it), with bookmarks, closed by the
  /// server after `timeoutSeconds`.
  public func watchQuery(resourceVersion: String, timeoutSeconds: Int) -> String {
    let items: [(String, String)] = [
      ("watch", "true"), ("resourceVersion", resourceVersion),
      ("allowWatchBookmarks", "true"), ("timeoutSeconds", String(timeoutSeconds)),
    ]
    return path + "?" + Self.query(items + selectors)
  }

  private var selectors: [(String, String)] {
    var items: [(String, String)] = []
    if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
    if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
    return items
  }

  static func query(_ items: [(String, String)]) -> String {
    items.map { "\($0.0)=\(percentEncoded($0.1))" }.joined(separator: "&")
  }

  /// RFC 3986 query-component encoding: unreserved characters stay, the rest is %XX.
  static func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "_"), UInt8(ascii: "~"):
        out.unicodeScalars.append(Unicode.Scalar(byte))
      default:
        let hex = Array("0123456789ABCDEF")
        out += "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 15)])"
      }
    }
    return out
  }
}

extension APIResource {
  /// kube-proxy's server-side selector for Services and EndpointSlices: no headless ones,
  /// and none that another proxy handles. With `serviceProxyName` (Cilium's
  /// `--k8s-service-proxy-name`), only the ones labelled with that name.
  public static func serviceSelector(serviceProxyName: String?) -> String {
    if let name = serviceProxyName, !name.isEmpty {
      return "!service.kubernetes.io/headless,service.kubernetes.io/service-proxy-name=\(name)"
    }
    return "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name"
  }

  /// What a node agent follows: Services, EndpointSlices, its own Node, the Pods on its
  /// node, both redirect policy CRDs, and the L7 kinds its Envoy serves (Cilium's envoy
  /// config CRDs, Ingresses, and TLS Secrets only: `type=kubernetes.io/tls`).
  public static func followed(nodeName: String, serviceProxyName: String?) -> [APIResource] {
    let selector = serviceSelector(serviceProxyName: serviceProxyName)
    return [
      APIResource(
        group: "", version: "v1", plural: "services", kind: "Service", labelSelector: selector),
      APIResource(
        group: "discovery.k8s.io", version: "v1", plural: "endpointslices", kind: "EndpointSlice",
        labelSelector: selector),
      APIResource(
        group: "", version: "v1", plural: "nodes", kind: "Node",
        fieldSelector: "metadata.name=\(nodeName)"),
      APIResource(
        group: "", version: "v1", plural: "pods", kind: "Pod",
        fieldSelector: "spec.nodeName=\(nodeName)"),
      APIResource(
        group: "junction.io", version: "v1alpha1", plural: "localredirectpolicies",
        kind: "LocalRedirectPolicy", isCustom: true),
      APIResource(
        group: "cilium.io", version: "v2", plural: "ciliumlocalredirectpolicies",
        kind: "CiliumLocalRedirectPolicy", isCustom: true),
      APIResource(
        group: "cilium.io", version: "v2", plural: "ciliumenvoyconfigs",
        kind: "CiliumEnvoyConfig", isCustom: true),
      APIResource(
        group: "cilium.io", version: "v2", plural: "ciliumclusterwideenvoyconfigs",
        kind: "CiliumClusterwideEnvoyConfig", isCustom: true),
      APIResource(
        group: "networking.k8s.io", version: "v1", plural: "ingresses", kind: "Ingress"),
      APIResource(
        group: "", version: "v1", plural: "secrets", kind: "Secret",
        fieldSelector: "type=kubernetes.io/tls"),
    ]
  }
}
