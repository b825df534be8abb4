import CNIKit

/// Field-by-field decoding and validation of Service and EndpointSlice, following the API
/// server's validation (pkg/apis/core/validation ValidateService, discovery validation) for the
/// fields Junction programs. Every check names its field path.
enum ServiceDecoding {
  static func port(_ reader: FieldReader, _ key: String, required: Bool) -> UInt16? {
    guard let value = reader.int(key) else {
      if required && reader.raw(key) == nil { reader.fail(key, "is required") }
      return nil
    }
    guard (1...65535).contains(value) else {
      reader.fail(key, "\(value) is not a valid port (1-65535)")
      return nil
    }
    return UInt16(value)
  }

  static func proto(_ reader: FieldReader) -> L4Protocol {
    guard let text = reader.string("protocol") else { return .tcp }
    guard let proto = L4Protocol(rawValue: text) else {
      reader.fail("protocol", "\"\(text)\" is not a supported protocol (TCP, UDP, SCTP)")
      return .tcp
    }
    return proto
  }

  static func oneOf(_ reader: FieldReader, _ key: String, _ allowed: [String]) -> String? {
    guard let text = reader.string(key) else { return nil }
    guard allowed.contains(text) else {
      reader.fail(
        key,
        "unsupported value \"\(text)\": supported values: "
          + allowed.map { "\"\($0)\"" }.joined(separator: ", "))
      return nil
    }
    return text
  }

  static func address(_ text: String, path: String, sink: IssueSink) -> IPAddress? {
    guard let address = IPAddress(text) else {
      sink.add(path, "\"\(text)\" is not an IP address")
      return nil
    }
    return address
  }

  static func decode(_ root: FieldReader, meta: ObjectMeta) -> Service {
    let sink = root.sink
    var service = Service(meta: meta)
    let spec = root.reader("spec") ?? FieldReader([:], path: "spec", sink: sink)

    if let typeText = oneOf(spec, "type", ServiceType.allCases.map(\.rawValue)) {
      service.type = ServiceType(rawValue: typeText)!
    }
    service.externalName = spec.string("externalName")
    if service.type == .externalName && (service.externalName ?? "").isEmpty {
      spec.fail("externalName", "is required when type is ExternalName")
    }

    // clusterIP / clusterIPs: "None" is headless, "" is "not allocated" (outside a cluster
    // nobody allocates, so such a service simply has no ClusterIP frontend).
    var clusterIPs: [IPAddress] = []
    let clusterIP = spec.string("clusterIP")
    if clusterIP == "None" {
      service.isHeadless = true
    } else if let clusterIP, !clusterIP.isEmpty,
      let parsed = address(clusterIP, path: spec.fieldPath("clusterIP"), sink: sink)
    {
      clusterIPs.append(parsed)
    }
    for (index, item) in spec.strings("clusterIPs").enumerated() {
      if index == 0, let clusterIP, !clusterIP.isEmpty, item.value != clusterIP {
        sink.add(item.path, "\"\(item.value)\" must match spec.clusterIP \"\(clusterIP)\"")
        continue
      }
      if item.value == "None" {
        if index == 0 {
          service.isHeadless = true
        } else {
          sink.add(item.path, "\"None\" may only be the first entry")
        }
        continue
      }
      if let parsed = address(item.value, path: item.path, sink: sink), !clusterIPs.contains(parsed)
      {
        clusterIPs.append(parsed)
      }
    }
    service.clusterIPs =
      service.isHeadless || service.type == .externalName ? [] : clusterIPs
    decodeFamilies(spec, into: &service, givenIPs: clusterIPs)

    service.ports = decodePorts(spec, type: service.type)
    if service.ports.isEmpty && !service.isHeadless && service.type != .externalName {
      spec.fail("ports", "is required (at least one port)")
    }
    service.selector = spec.stringMap("selector")

    let affinity = oneOf(spec, "sessionAffinity", ["None", "ClientIP"]) ?? "None"
    let timeoutReader = spec.reader("sessionAffinityConfig")?.reader("clientIP")
    if affinity == "ClientIP" {
      let timeout = timeoutReader?.int("timeoutSeconds") ?? SessionAffinity.defaultTimeoutSeconds
      if SessionAffinity.timeoutRange.contains(timeout) {
        service.sessionAffinity = .clientIP(timeoutSeconds: timeout)
      } else {
        sink.add(
          "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
          "\(timeout) is out of range (1-86400)")
      }
    }

    // Both families: an IPv6 externalIP or load-balancer address is an IPv6 north-south
    // frontend (served by the Service's IPv6 endpoints), as kube-proxy's IPv6 proxier does.
    for item in spec.strings("externalIPs") {
      if let parsed = address(item.value, path: item.path, sink: sink) {
        service.externalIPs.append(parsed)
      }
    }
    service.externalTrafficPolicy = oneOf(spec, "externalTrafficPolicy", ["Cluster", "Local"])
    service.internalTrafficPolicy = oneOf(spec, "internalTrafficPolicy", ["Cluster", "Local"])
    service.trafficDistribution = oneOf(
      spec, "trafficDistribution", ["PreferClose", "PreferSameZone", "PreferSameNode"])

    for entry in root.reader("status")?.reader("loadBalancer")?.readers("ingress") ?? [] {
      if let ip = entry.string("ip"),
        let parsed = address(ip, path: entry.fieldPath("ip"), sink: sink)
      {
        service.loadBalancerIngress.append(parsed)
      }
    }

    if let text = meta.annotations[LBAlgorithm.annotation] {
      if let algorithm = LBAlgorithm(rawValue: text) {
        service.algorithm = algorithm
      } else {
        sink.add(
          "metadata.annotations[\"\(LBAlgorithm.annotation)\"]",
          "unsupported value \"\(text)\": supported values: \"random\", \"maglev\"")
      }
    }
    return service
  }

  /// `ipFamilies`, `ipFamilyPolicy` and their agreement with `clusterIPs`, as the API
  /// server's ValidateService (validateIPFamilies, validateServiceClusterIPsRelatedFields):
  /// at most two distinct families; two families or two IPs need a dual-stack policy; IPs
  /// one per family, in `ipFamilies` order; neither field on an ExternalName Service.
  static func decodeFamilies(
    _ spec: FieldReader, into service: inout Service, givenIPs: [IPAddress]
  ) {
    let sink = spec.sink
    var families: [IPFamily] = []
    for item in spec.strings("ipFamilies") {
      guard let family = IPFamily(rawValue: item.value) else {
        sink.add(
          item.path, "unsupported value \"\(item.value)\": supported values: \"IPv4\", \"IPv6\"")
        continue
      }
      if families.contains(family) {
        sink.add(item.path, "duplicate family \"\(item.value)\"")
        continue
      }
      families.append(family)
    }
    if spec.strings("ipFamilies").count > 2 {
      spec.fail("ipFamilies", "may contain at most 2 entries")
    }
    let policy = oneOf(spec, "ipFamilyPolicy", IPFamilyPolicy.allCases.map(\.rawValue))
      .flatMap(IPFamilyPolicy.init(rawValue:))
    if service.type == .externalName {
      if !families.isEmpty { spec.fail("ipFamilies", "must not be set for ExternalName services") }
      if policy != nil { spec.fail("ipFamilyPolicy", "must not be set for ExternalName services") }
      return
    }
    if givenIPs.count > 2 {
      spec.fail("clusterIPs", "may contain at most 2 entries (one per family)")
    } else if givenIPs.count == 2 && givenIPs[0].isIPv4 == givenIPs[1].isIPv4 {
      spec.fail("clusterIPs", "may specify no more than one IP for each IP family")
    }
    let singleStack = policy == nil || policy == .singleStack
    if singleStack && families.count > 1 {
      spec.fail(
        "ipFamilyPolicy",
        "must be RequireDualStack or PreferDualStack when multiple 'ipFamilies' are specified")
    }
    if singleStack && givenIPs.count > 1 {
      spec.fail(
        "ipFamilyPolicy",
        "must be RequireDualStack or PreferDualStack when multiple 'clusterIPs' are specified")
    }
    for (index, address) in givenIPs.enumerated() where index < families.count {
      if IPFamily(of: address) != families[index] {
        sink.add(
          "spec.ipFamilies[\(index)]",
          "\"\(families[index].rawValue)\" must be the family of spec.clusterIPs[\(index)] (\"\(address)\")"
        )
      }
    }
    service.ipFamilyPolicy = policy
    // What the API server defaults: the given families, then those of the given IPs.
    for address in givenIPs where !families.contains(IPFamily(of: address)) {
      families.append(IPFamily(of: address))
    }
    service.ipFamilies = families
  }

  static func decodePorts(_ spec: FieldReader, type: ServiceType) -> [ServicePort] {
    let readers = spec.readers("ports")
    var ports: [ServicePort] = []
    var names: Set<String> = []
    var numbers: Set<String> = []
    var nodePorts: Set<String> = []
    for reader in readers {
      let name = reader.string("name") ?? ""
      if name.isEmpty {
        // Several ports must be told apart by name: EndpointSlice ports pair with them by it.
        if readers.count > 1 {
          reader.fail("name", "is required when a service has more than one port")
        }
      } else if let problem = KubernetesNames.dns1123Label(name) {
        reader.fail("name", "\"\(name)\" is not valid: \(problem)")
      } else if !names.insert(name).inserted {
        reader.fail("name", "duplicate port name \"\(name)\"")
      }
      let proto = proto(reader)
      let number = port(reader, "port", required: true)
      if let number, !numbers.insert("\(number)/\(proto.rawValue)").inserted {
        reader.sink.add(reader.path, "duplicate port \(number)/\(proto.rawValue)")
      }
      var target: IntOrString?
      switch reader.raw("targetPort") {
      case nil: target = nil
      case .int(let value)?:
        if (1...65535).contains(value) {
          target = .int(value)
        } else {
          reader.fail("targetPort", "\(value) is not a valid port (1-65535)")
        }
      case .string(let text)?:
        if let problem = KubernetesNames.ianaServiceName(text) {
          reader.fail(
            "targetPort", "\"\(text)\" is not a valid port name (IANA_SVC_NAME): \(problem)")
        } else {
          target = .string(text)
        }
      case let other?:
        reader.fail("targetPort", "must be an integer or a string, got \(other.typeName)")
      }
      var nodePort: UInt16?
      if reader.raw("nodePort") != nil {
        if type == .clusterIP || type == .externalName {
          reader.fail("nodePort", "may not be used when type is '\(type.rawValue)'")
        } else if let value = port(reader, "nodePort", required: false) {
          if !nodePorts.insert("\(value)/\(proto.rawValue)").inserted {
            reader.fail("nodePort", "duplicate node port \(value)/\(proto.rawValue)")
          }
          nodePort = value
        }
      }
      if let number {
        ports.append(
          ServicePort(
            name: name, proto: proto, port: number, targetPort: target, nodePort: nodePort))
      }
    }
    return ports
  }

  static func decodeSlice(_ root: FieldReader, meta: ObjectMeta) -> EndpointSlice {
    let sink = root.sink
    var slice = EndpointSlice(meta: meta)
    if let text = oneOf(root, "addressType", EndpointAddressType.allCases.map(\.rawValue)) {
      slice.addressType = EndpointAddressType(rawValue: text)!
    } else if root.raw("addressType") == nil {
      root.fail("addressType", "is required")
    }
    var names: Set<String> = []
    for reader in root.readers("ports") {
      let name = reader.string("name") ?? ""
      if !name.isEmpty, let problem = KubernetesNames.dns1123Label(name) {
        reader.fail("name", "\"\(name)\" is not valid: \(problem)")
      }
      if !names.insert(name).inserted { reader.fail("name", "duplicate port name \"\(name)\"") }
      slice.ports.append(
        EndpointPort(name: name, port: port(reader, "port", required: false), proto: proto(reader)))
    }
    // Gathered here and packed once at the end (setting `slice.endpoints` packs them all).
    let endpointReaders = root.readers("endpoints")
    var endpoints: [Endpoint] = []
    endpoints.reserveCapacity(endpointReaders.count)
    for reader in endpointReaders {
      let texts = reader.strings("addresses")
      if texts.isEmpty && reader.raw("addresses") == nil { reader.fail("addresses", "is required") }
      if texts.count > 100 { reader.fail("addresses", "must have at most 100 addresses") }
      var addresses: [IPAddress] = []
      for item in texts {
        switch slice.addressType {
        case .ipv4, .ipv6:
          let wantV4 = slice.addressType == .ipv4
          if let parsed = IPAddress(item.value), parsed.isIPv4 == wantV4 {
            addresses.append(parsed)
          } else {
            sink.add(item.path, "\"\(item.value)\" is not an \(slice.addressType.rawValue) address")
          }
        case .fqdn: break  // names, not addresses; never programmed
        }
      }
      let conditions = reader.reader("conditions")
      let ready = conditions?.bool("ready")
      let serving = conditions?.bool("serving")
      let terminating = conditions?.bool("terminating")
      let hints = reader.reader("hints")
      // targetRef names the object behind the addresses (a Pod, from the controller): what
      // lets a flow name a backend on another node. Without a name it names nothing.
      let target = reader.reader("targetRef").flatMap { ref in
        ref.string("name").map { name in
          EndpointTarget(
            kind: ref.string("kind") ?? "", namespace: ref.string("namespace") ?? meta.namespace,
            name: name)
        }
      }
      endpoints.append(
        Endpoint(
          addresses: addresses,
          ready: ready ?? true,  // "nil should be interpreted as true" (discovery/v1)
          serving: serving ?? (ready ?? true),  // "if nil, defer to the ready condition"
          terminating: terminating ?? false,
          nodeName: reader.string("nodeName"), zone: reader.string("zone"),
          hintZones: (hints?.readers("forZones") ?? []).compactMap { $0.string("name") },
          hintNodes: (hints?.readers("forNodes") ?? []).compactMap { $0.string("name") },
          target: target))
    }
    slice.endpoints = endpoints
    return slice
  }
}
