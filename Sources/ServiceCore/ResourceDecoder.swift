import CNIKit

/// An object of a kind Junction does not model: reported, then left alone (not an error, so a
/// whole `kubectl get all -o yaml` dump can be applied and only what matters is taken).
public struct SkippedObject: Hashable, Sendable, CustomStringConvertible {
  public var kind: String
  public var apiVersion: String
  public var name: String
  /// Where it was: "document 2" or "document 2, items[3]".
  public var location: String

  public var description: String {
    "\(location): skipped \(kind) \(name.isEmpty ? "(unnamed)" : name) (\(apiVersion)): unknown kind"
  }
}

/// Everything wrong with one object. Each message starts with the object and then the field
/// path: `Service default/web: spec.ports[1].port: 70000 is not a valid port (1-65535)`.
public struct ResourceProblem: Error, Hashable, Sendable, CustomStringConvertible {
  /// "Service default/web", or just the kind (or "document 3") when the object has no name.
  public var object: String
  public var location: String
  public var issues: [FieldIssue]

  public var messages: [String] { issues.map { "\(object): \($0)" } }
  public var description: String { messages.joined(separator: "\n") }
}

/// The result of reading a YAML stream: valid objects in input order, skipped unknown kinds,
/// notes (valid but partly unused input, e.g. an IPv6 EndpointSlice), and problems.
public struct DecodedResources: Sendable {
  public var resources: [Resource] = []
  /// Each resource's document as written, parallel to `resources` (what the agent persists),
  /// as its JSON rather than a tree (see `StoredDocument`).
  public var documents: [StoredDocument] = []
  public var skipped: [SkippedObject] = []
  public var notes: [String] = []
  public var problems: [ResourceProblem] = []
}

/// YAML text → Kubernetes resources. Accepts what `kubectl get -o yaml` prints and what people
/// write by hand: one object, several separated by `---`, or a `kind: List` (also the typed
/// `ServiceList`, `EndpointSliceList`, ...) with `items`. Fields Junction does not read
/// (status, managedFields, resourceVersion, ...) are ignored; fields it reads are type-checked
/// and validated as the API server would, so what would not get into a cluster does not get
/// into a node either.
public enum ResourceDecoder {
  public static func decode(yaml: String) -> DecodedResources {
    // Each document is decoded as soon as it is read and its tree dropped: a 13 MB apply
    // never holds the trees of all its documents at once (bench/results/agent-memory.md).
    var streamed = DecodedResources()
    var count = 0
    let complete = YAMLEventReader.forEachDocument(yaml) { document in
      count += 1
      decodeTop(document, location: "document \(count)", into: &streamed)
    }
    if complete { return streamed }
    // What the event reader does not model: the whole stream again, through Yams.
    streamed = DecodedResources()
    do {
      var documents = try YAMLValue.documentsWithYams(yaml)
      return decode(releasing: &documents)
    } catch {
      var result = DecodedResources()
      result.problems.append(
        ResourceProblem(
          object: "input", location: "input",
          issues: [FieldIssue(path: "", message: error.description)]))
      return result
    }
  }

  /// Already-parsed documents.
  public static func decode(documents: [YAMLValue]) -> DecodedResources {
    var documents = documents
    return decode(releasing: &documents)
  }

  /// The agent's stored documents, each read back into a tree only while it is decoded.
  public static func decode(stored: [StoredDocument]) -> DecodedResources {
    var result = DecodedResources()
    for (index, document) in stored.enumerated() {
      let location = "document \(index + 1)"
      do {
        decodeTop(try document.value, location: location, into: &result)
      } catch {
        result.problems.append(
          ResourceProblem(
            object: location, location: location,
            issues: [FieldIssue(path: "", message: "unreadable stored document: \(error)")]))
      }
    }
    return result
  }

  /// Decodes `documents`, dropping each tree once it is decoded (emptying the array): a big
  /// input's trees are freed while its resources and stored documents are made, rather than
  /// all held until the end (the apply's peak memory, bench/results/agent-memory.md).
  private static func decode(releasing documents: inout [YAMLValue]) -> DecodedResources {
    var result = DecodedResources()
    for index in documents.indices {
      let document = documents[index]
      documents[index] = .null
      decodeTop(document, location: "document \(index + 1)", into: &result)
    }
    documents = []
    return result
  }

  private static func decodeTop(
    _ document: YAMLValue, location: String, into result: inout DecodedResources
  ) {
    guard case .map(let map) = document else {
      result.problems.append(
        ResourceProblem(
          object: location, location: location,
          issues: [FieldIssue(path: "", message: "must be a map, got \(document.typeName)")]))
      return
    }
    let kind = map["kind"]?.stringValue ?? ""
    if kind == "List" || (kind.hasSuffix("List") && map["items"] != nil) {
      let sink = IssueSink()
      let reader = FieldReader(map, path: "", sink: sink)
      let items = reader.list("items")
      if !sink.issues.isEmpty {
        result.problems.append(
          ResourceProblem(object: kind, location: location, issues: sink.issues))
      }
      for (index, item) in items.enumerated() {
        // Items of a List carry their own kind and apiVersion (kubectl prints them).
        decodeObject(item.value, location: "\(location), items[\(index)]", into: &result)
      }
      return
    }
    decodeObject(document, location: location, into: &result)
  }

  static func decodeObject(
    _ value: YAMLValue, location: String, into result: inout DecodedResources
  ) {
    let sink = IssueSink()
    guard case .map(let map) = value else {
      result.problems.append(
        ResourceProblem(
          object: location, location: location,
          issues: [FieldIssue(path: "", message: "must be a map, got \(value.typeName)")]))
      return
    }
    let root = FieldReader(map, path: "", sink: sink)
    let kindText = root.string("kind") ?? ""
    let apiVersion = root.string("apiVersion") ?? ""
    let rawName = root.reader("metadata")?.string("name") ?? ""
    if kindText.isEmpty { root.fail("kind", "is required") }
    if apiVersion.isEmpty { root.fail("apiVersion", "is required") }

    guard let kind = ResourceKind(rawValue: kindText) else {
      if sink.issues.isEmpty {
        result.skipped.append(
          SkippedObject(kind: kindText, apiVersion: apiVersion, name: rawName, location: location))
      } else {
        let label = kindText.isEmpty ? location : kindText
        result.problems.append(
          ResourceProblem(object: label, location: location, issues: sink.issues))
      }
      return
    }
    // A known kind under another apiVersion is a different schema (apps/v1 has no Service,
    // discovery.k8s.io/v1beta1 slices lack fields v1 made required): refuse, do not guess.
    if !apiVersion.isEmpty && !kind.apiVersions.contains(apiVersion) {
      root.fail(
        "apiVersion",
        "\"\(apiVersion)\" is not supported for kind \(kind.rawValue) (expected \"\(kind.apiVersion)\")"
      )
    }
    let meta = decodeMeta(root, kind: kind)
    let object =
      meta.name.isEmpty
      ? kind.rawValue
      : ResourceKey(kind: kind, namespace: meta.namespace, name: meta.name).description
    var notes: [String] = []
    let resource: Resource
    switch kind {
    case .service:
      resource = .service(ServiceDecoding.decode(root, meta: meta))
    case .endpointSlice:
      let slice = ServiceDecoding.decodeSlice(root, meta: meta)
      if slice.addressType == .fqdn {
        notes.append(
          "\(object): addressType FQDN is not programmed (deprecated; names, not addresses); its endpoints are ignored"
        )
      }
      resource = .endpointSlice(slice)
    case .node:
      resource = .node(KubeNode(name: meta.name, labels: meta.labels))
    case .pod:
      resource = .pod(decodePod(root, meta: meta))
    case .localRedirectPolicy, .ciliumLocalRedirectPolicy:
      resource = .redirectPolicy(
        RedirectPolicy(
          meta: meta, apiVersion: apiVersion, kind: kind.rawValue, spec: root.raw("spec") ?? .null,
          redirect: RedirectPolicyDecoding.decode(root, meta: meta)))
    case .ciliumEnvoyConfig, .ciliumClusterwideEnvoyConfig:
      resource = .envoyConfig(
        L7Decoding.envoyConfig(
          root, meta: meta, clusterwide: kind == .ciliumClusterwideEnvoyConfig,
          apiVersion: apiVersion))
    case .ingress:
      let ingress = L7Decoding.ingress(root, meta: meta)
      if !ingress.isServed {
        notes.append(
          "\(object): ingressClassName \(ingress.ingressClassName.map { "\"\($0)\"" } ?? "(none)") is not junction or cilium; kept but not served"
        )
      }
      resource = .ingress(ingress)
    case .secret:
      // Only TLS Secrets matter (Ingress certificates); a dump's other Secrets are skipped.
      guard let secret = L7Decoding.tlsSecret(root, meta: meta) else {
        result.skipped.append(
          SkippedObject(kind: kindText, apiVersion: apiVersion, name: rawName, location: location))
        return
      }
      resource = .tlsSecret(secret)
    }
    if sink.issues.isEmpty {
      result.resources.append(resource)
      result.documents.append(StoredDocument(value))
      result.notes.append(contentsOf: notes.map { "\(location): \($0)" })
    } else {
      result.problems.append(
        ResourceProblem(object: object, location: location, issues: sink.issues))
    }
  }

  static func decodeMeta(_ root: FieldReader, kind: ResourceKind) -> ObjectMeta {
    guard let metadata = root.reader("metadata") else {
      root.fail("metadata.name", "is required")
      return ObjectMeta(name: "", namespace: kind.isNamespaced ? "default" : "")
    }
    let name = metadata.string("name") ?? ""
    if name.isEmpty {
      metadata.fail("name", "is required")
    } else {
      // Service names become DNS labels under the cluster domain, hence RFC 1035; other
      // kinds are RFC 1123 subdomains, as the API server validates them.
      let problem =
        kind == .service
        ? KubernetesNames.dns1035Label(name) : KubernetesNames.dns1123Subdomain(name)
      if let problem { metadata.fail("name", "\"\(name)\" is not valid: \(problem)") }
    }
    var namespace = ""
    if kind.isNamespaced {
      namespace = metadata.string("namespace") ?? ""
      if namespace.isEmpty {
        namespace = "default"
      } else if let problem = KubernetesNames.dns1123Label(namespace) {
        metadata.fail("namespace", "\"\(namespace)\" is not valid: \(problem)")
      }
    }
    return ObjectMeta(
      name: name, namespace: namespace, uid: metadata.string("uid"),
      labels: metadata.stringMap("labels"), annotations: metadata.stringMap("annotations"))
  }

  static func decodePod(_ root: FieldReader, meta: ObjectMeta) -> Pod {
    let nodeName = root.reader("spec")?.string("nodeName")
    let status = root.reader("status")
    var addresses: [IPAddress] = []
    func add(_ text: String, _ path: String) {
      guard let address = IPAddress(text) else {
        root.sink.add(path, "\"\(text)\" is not an IP address")
        return
      }
      if !addresses.contains(address) { addresses.append(address) }
    }
    if let podIP = status?.string("podIP") { add(podIP, "status.podIP") }
    for entry in status?.readers("podIPs") ?? [] {
      if let ip = entry.string("ip") { add(ip, entry.fieldPath("ip")) }
    }
    let ready = (status?.readers("conditions") ?? []).contains {
      $0.string("type") == "Ready" && $0.string("status") == "True"
    }
    return Pod(meta: meta, nodeName: nodeName, podIPs: addresses, ready: ready)
  }
}
