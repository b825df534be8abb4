import CNIKit

/// Decoding and validation of the spec, with every problem as a field issue.
enum RedirectPolicyDecoding {
  static func decode(_ root: FieldReader, meta: ObjectMeta) -> LocalRedirectSpec? {
    guard let spec = root.reader("spec") else {
      root.fail("spec", "is required")
      return nil
    }
    let frontendReader = spec.reader("redirectFrontend")
    var frontend: RedirectFrontend?
    if let frontendReader {
      let serviceMatcher = frontendReader.reader("serviceMatcher")
      let addressMatcher = frontendReader.reader("addressMatcher")
      switch (serviceMatcher, addressMatcher) {
      case (nil, nil):
        spec.fail("redirectFrontend", "one of serviceMatcher or addressMatcher is required")
      case (.some, .some):
        spec.fail("redirectFrontend", "serviceMatcher and addressMatcher are mutually exclusive")
      case (let matcher?, nil):
        frontend = decodeServiceMatcher(matcher, meta: meta)
      case (nil, let matcher?):
        frontend = decodeAddressMatcher(matcher)
      }
    } else {
      spec.fail("redirectFrontend", "is required")
    }

    var selector: LabelSelector?
    var backendPorts: [RedirectPort] = []
    if let backend = spec.reader("redirectBackend") {
      if let selectorReader = backend.reader("localEndpointSelector") {
        selector = decodeSelector(selectorReader)
      } else {
        backend.fail("localEndpointSelector", "is required")
      }
      backendPorts = decodePorts(backend, required: true)
    } else {
      spec.fail("redirectBackend", "is required")
    }
    let skip = spec.bool("skipRedirectFromBackend") ?? false
    guard let frontend, let selector else { return nil }
    return LocalRedirectSpec(
      frontend: frontend, selector: selector, backendPorts: backendPorts,
      skipRedirectFromBackend: skip)
  }

  static func decodeServiceMatcher(_ matcher: FieldReader, meta: ObjectMeta) -> RedirectFrontend? {
    let name = matcher.string("serviceName") ?? ""
    if name.isEmpty {
      matcher.fail("serviceName", "is required")
    } else if let problem = KubernetesNames.dns1035Label(name) {
      matcher.fail("serviceName", "\"\(name)\" is not valid: \(problem)")
    }
    let namespace = matcher.string("namespace") ?? meta.namespace
    // As Cilium: a policy redirects only Services of its own namespace.
    if namespace != meta.namespace {
      matcher.fail(
        "namespace",
        "\"\(namespace)\" must be the policy's own namespace \"\(meta.namespace)\"")
    }
    let ports = decodePorts(matcher, required: false)
    guard !name.isEmpty else { return nil }
    return .service(NamespacedName(namespace: namespace, name: name), ports: ports)
  }

  static func decodeAddressMatcher(_ matcher: FieldReader) -> RedirectFrontend? {
    var address: IPAddress?
    if let text = matcher.string("ip") {
      // Either family: an IPv6 address is redirected to the pods' IPv6 addresses.
      if let parsed = IPAddress(text) {
        address = parsed
      } else {
        matcher.fail("ip", "\"\(text)\" is not an IP address")
      }
    } else {
      matcher.fail("ip", "is required")
    }
    let ports = decodePorts(matcher, required: true)
    guard let address else { return nil }
    return .address(address, ports: ports)
  }

  /// `toPorts`: port (a number, or a string of digits as Cilium writes it), name, protocol
  /// (TCP or UDP; TCP when omitted). With several ports each needs a distinct name, which is
  /// what pairs frontend and backend ports.
  static func decodePorts(_ reader: FieldReader, required: Bool) -> [RedirectPort] {
    let entries = reader.readers("toPorts")
    if entries.isEmpty && required { reader.fail("toPorts", "at least one port is required") }
    var ports: [RedirectPort] = []
    var names: Set<String> = []
    for entry in entries {
      var number: UInt16?
      switch entry.raw("port") {
      case nil:
        entry.fail("port", "is required")
      case .int(let value)?:
        number = (1...65535).contains(value) ? UInt16(value) : nil
        if number == nil { entry.fail("port", "\(value) is out of range (1-65535)") }
      case .string(let text)?:
        number = UInt16(text).flatMap { $0 == 0 ? nil : $0 }
        if number == nil { entry.fail("port", "\"\(text)\" is not a port number (1-65535)") }
      case let other?:
        entry.fail("port", "must be a port number, got \(other.typeName)")
      }
      let name = entry.string("name") ?? ""
      if !name.isEmpty {
        if let problem = KubernetesNames.dns1123Label(name) {
          entry.fail("name", "\"\(name)\" is not valid: \(problem)")
        } else if !names.insert(name).inserted {
          entry.fail("name", "\"\(name)\" is used by another port")
        }
      } else if entries.count > 1 {
        entry.fail("name", "is required when toPorts has more than one port")
      }
      var proto = L4Protocol.tcp
      if let text = entry.string("protocol") {
        if let parsed = L4Protocol(rawValue: text), parsed != .sctp {
          proto = parsed
        } else {
          entry.fail(
            "protocol", "unsupported value \"\(text)\": supported values: \"TCP\", \"UDP\"")
        }
      }
      if let number { ports.append(RedirectPort(name: name, port: number, proto: proto)) }
    }
    return ports
  }

  static func decodeSelector(_ reader: FieldReader) -> LabelSelector {
    var selector = LabelSelector(matchLabels: reader.stringMap("matchLabels"))
    for entry in reader.readers("matchExpressions") {
      let key = entry.string("key") ?? ""
      if key.isEmpty { entry.fail("key", "is required") }
      let opText = entry.string("operator") ?? ""
      let values = entry.strings("values").map(\.value)
      guard let op = LabelRequirement.Operator(rawValue: opText) else {
        entry.fail(
          "operator",
          opText.isEmpty
            ? "is required"
            : "unsupported value \"\(opText)\": supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
        )
        continue
      }
      switch op {
      case .in, .notIn:
        if values.isEmpty { entry.fail("values", "must be non-empty for operator \(opText)") }
      case .exists, .doesNotExist:
        if !values.isEmpty { entry.fail("values", "must be empty for operator \(opText)") }
      }
      if !key.isEmpty {
        selector.matchExpressions.append(LabelRequirement(key: key, op: op, values: values))
      }
    }
    return selector
  }
}
