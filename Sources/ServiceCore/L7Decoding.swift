import CNIKit
import FoundationEssentials

/// Field checks for the L7 kinds, in the style of the Service decoder: every problem with
/// its path, nothing half-accepted.
enum L7Decoding {
  static let envoyConfigVersions: Set<String> = ["cilium.io/v2", "cilium.io/v2alpha1"]

  static func envoyConfig(
    _ root: FieldReader, meta: ObjectMeta, clusterwide: Bool, apiVersion: String
  ) -> EnvoyConfigResource {
    var config = EnvoyConfigResource(meta: meta, clusterwide: clusterwide, apiVersion: apiVersion)
    guard let spec = root.reader("spec") else {
      root.fail("spec", "is required")
      return config
    }
    // A CEC's services live in its own namespace (Cilium forces it); a clusterwide one
    // names them, default "default".
    func serviceName(_ entry: FieldReader) -> NamespacedName? {
      guard let name = entry.string("name"), !name.isEmpty else {
        entry.fail("name", "is required")
        return nil
      }
      if let problem = KubernetesNames.dns1035Label(name) {
        entry.fail("name", "\"\(name)\" is not a valid Service name: \(problem)")
      }
      var namespace = clusterwide ? "default" : meta.namespace
      if let given = entry.string("namespace"), !given.isEmpty {
        if !clusterwide && given != meta.namespace {
          entry.fail(
            "namespace",
            "\"\(given)\" differs from the CiliumEnvoyConfig's namespace \"\(meta.namespace)\" (a namespaced config only redirects its own Services; use a CiliumClusterwideEnvoyConfig)"
          )
        } else if let problem = KubernetesNames.dns1123Label(given) {
          entry.fail("namespace", "\"\(given)\" is not valid: \(problem)")
        }
        namespace = given
      }
      return NamespacedName(namespace: namespace, name: name)
    }
    for entry in spec.readers("services") {
      guard let name = serviceName(entry) else { continue }
      var ports: [UInt16] = []
      for item in entry.list("ports") {
        guard case .int(let number) = item.value, (1...65535).contains(number) else {
          entry.sink.add(item.path, "\(item.value.shortDescription) is not a valid port (1-65535)")
          continue
        }
        ports.append(UInt16(number))
      }
      let listener = entry.string("listener")
      config.services.append(
        EnvoyRedirectedService(
          service: name, listener: listener?.isEmpty == true ? nil : listener, ports: ports))
    }
    for entry in spec.readers("backendServices") {
      guard let name = serviceName(entry) else { continue }
      config.backendServices.append(
        EnvoyBackendService(service: name, ports: entry.strings("number").map(\.value)))
    }
    var names: Set<String> = []
    for item in spec.list("resources") {
      guard case .map(let map) = item.value else {
        spec.sink.add(
          item.path, "must be a map (an Envoy resource with \"@type\"), got \(item.value.typeName)")
        continue
      }
      let entry = FieldReader(map, path: item.path, sink: spec.sink)
      guard let type = entry.string("@type"), !type.isEmpty else {
        entry.fail(
          "@type", "is required (e.g. type.googleapis.com/envoy.config.listener.v3.Listener)")
        continue
      }
      if !type.hasPrefix("type.googleapis.com/") {
        entry.fail("@type", "\"\(type)\" must start with type.googleapis.com/")
      }
      guard let name = entry.string("name"), !name.isEmpty else {
        // ClusterLoadAssignment names itself with cluster_name.
        if entry.string("cluster_name") == nil { entry.fail("name", "is required") }
        config.resources.append(item.value)
        continue
      }
      let key = "\(type) \(name)"
      if !names.insert(key).inserted {
        entry.fail("name", "\"\(name)\" appears twice for \(type)")
      }
      config.resources.append(item.value)
    }
    if config.resources.isEmpty && spec.list("resources").isEmpty {
      spec.fail("resources", "is required (at least one Envoy Listener)")
    }
    if spec.raw("nodeSelector") != nil {
      _ = spec.reader("nodeSelector")
    }
    return config
  }

  static func backend(_ reader: FieldReader) -> IngressBackend? {
    if reader.reader("resource") != nil {
      reader.fail("resource", "is not supported (only service backends)")
      return nil
    }
    guard let service = reader.reader("service") else {
      reader.fail("service", "is required")
      return nil
    }
    guard let name = service.string("name"), !name.isEmpty else {
      service.fail("name", "is required")
      return nil
    }
    guard let port = service.reader("port") else {
      service.fail("port", "is required (number or name)")
      return nil
    }
    if let number = port.int("number") {
      guard (1...65535).contains(number) else {
        port.fail("number", "\(number) is not a valid port (1-65535)")
        return nil
      }
      return IngressBackend(service: name, port: .int(number))
    }
    if let portName = port.string("name"), !portName.isEmpty {
      return IngressBackend(service: name, port: .string(portName))
    }
    service.fail("port", "needs number or name")
    return nil
  }

  static func ingress(_ root: FieldReader, meta: ObjectMeta) -> IngressResource {
    var ingress = IngressResource(meta: meta, ingressClassName: nil)
    guard let spec = root.reader("spec") else {
      root.fail("spec", "is required")
      return ingress
    }
    ingress.ingressClassName = spec.string("ingressClassName")
    if let defaultBackend = spec.reader("defaultBackend") {
      ingress.defaultBackend = backend(defaultBackend)
    }
    for rule in spec.readers("rules") {
      let host = rule.string("host")
      if let host, host.isEmpty || host.contains(":") || host.contains("/") {
        rule.fail("host", "\"\(host)\" is not a host name")
      }
      var paths: [IngressPath] = []
      for path in rule.reader("http")?.readers("paths") ?? [] {
        let text = path.string("path") ?? "/"
        let typeText = path.string("pathType") ?? ""
        guard let type = IngressPathType(rawValue: typeText) else {
          path.fail(
            "pathType",
            typeText.isEmpty
              ? "is required (Exact, Prefix or ImplementationSpecific)"
              : "\"\(typeText)\" is not Exact, Prefix or ImplementationSpecific")
          continue
        }
        if type != .implementationSpecific && !text.hasPrefix("/") {
          path.fail("path", "\"\(text)\" must be absolute (start with /)")
        }
        // ImplementationSpecific is a regex (RE2, as Cilium reads it): Envoy checks it, and its
        // message lands on the Ingress.
        guard let backendReader = path.reader("backend"), let backend = backend(backendReader)
        else {
          if path.raw("backend") == nil { path.fail("backend", "is required") }
          continue
        }
        paths.append(IngressPath(path: text, pathType: type, backend: backend))
      }
      ingress.rules.append(IngressRule(host: host, paths: paths))
    }
    for tls in spec.readers("tls") {
      guard let secret = tls.string("secretName"), !secret.isEmpty else {
        tls.fail("secretName", "is required")
        continue
      }
      ingress.tls.append(IngressTLS(hosts: tls.strings("hosts").map(\.value), secretName: secret))
    }
    for entry in root.reader("status")?.reader("loadBalancer")?.readers("ingress") ?? [] {
      guard let ip = entry.string("ip") else { continue }
      if IPAddress(ip) == nil {
        entry.fail("ip", "\"\(ip)\" is not an IP address")
      } else {
        ingress.loadBalancerIPs.append(ip)
      }
    }
    if ingress.defaultBackend == nil && ingress.rules.isEmpty {
      spec.fail("rules", "an Ingress needs rules or a defaultBackend")
    }
    return ingress
  }

  /// A Secret: nil (skipped) unless it is `kubernetes.io/tls`.
  static func tlsSecret(_ root: FieldReader, meta: ObjectMeta) -> TLSSecret? {
    guard root.string("type") == TLSSecret.type else { return nil }
    func pem(_ key: String) -> String {
      if let text = root.reader("stringData")?.string(key) { return text }
      guard let data = root.reader("data"), let encoded = data.string(key) else {
        root.fail("data", "\"\(key)\" is required for a \(TLSSecret.type) Secret")
        return ""
      }
      guard let bytes = Data(base64Encoded: encoded),
        let text = String(data: bytes, encoding: .utf8)
      else {
        data.fail(key, "is not base64 of PEM text")
        return ""
      }
      if !text.contains("-----BEGIN ") { data.fail(key, "is not PEM (no -----BEGIN line)") }
      return text
    }
    return TLSSecret(meta: meta, certificatePEM: pem("tls.crt"), privateKeyPEM: pem("tls.key"))
  }
}
