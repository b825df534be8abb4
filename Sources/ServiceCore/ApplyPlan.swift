/// The resources a node holds (from `junctionctl apply` standalone, or the API watch), keyed by
/// kind/namespace/name. A value: applying a plan produces a new set, so a rejected plan
/// cannot leave anything half-changed.
public struct ResourceSet: Equatable, Sendable {
  public private(set) var objects: [ResourceKey: Resource] = [:]
  /// The documents the objects came from, which the agent stores (absent for objects built
  /// in code rather than decoded).
  public private(set) var documents: [ResourceKey: StoredDocument] = [:]

  public init(_ resources: [Resource] = []) {
    for resource in resources { objects[resource.key] = resource }
  }

  public mutating func upsert(_ resource: Resource, document: StoredDocument? = nil) {
    objects[resource.key] = resource
    documents[resource.key] = document
  }

  @discardableResult
  public mutating func remove(_ key: ResourceKey) -> Resource? {
    documents[key] = nil
    return objects.removeValue(forKey: key)
  }

  public var count: Int { objects.count }

  private var sorted: [Resource] { objects.keys.sorted().map { objects[$0]! } }

  public var services: [Service] {
    sorted.compactMap { if case .service(let value) = $0 { value } else { nil } }
  }
  public var endpointSlices: [EndpointSlice] {
    sorted.compactMap { if case .endpointSlice(let value) = $0 { value } else { nil } }
  }
  public var nodes: [KubeNode] {
    sorted.compactMap { if case .node(let value) = $0 { value } else { nil } }
  }
  public var pods: [Pod] {
    sorted.compactMap { if case .pod(let value) = $0 { value } else { nil } }
  }
  public var redirectPolicies: [RedirectPolicy] {
    sorted.compactMap { if case .redirectPolicy(let value) = $0 { value } else { nil } }
  }
  public var envoyConfigs: [EnvoyConfigResource] {
    sorted.compactMap { if case .envoyConfig(let value) = $0 { value } else { nil } }
  }
  public var ingresses: [IngressResource] {
    sorted.compactMap { if case .ingress(let value) = $0 { value } else { nil } }
  }
  public var tlsSecrets: [TLSSecret] {
    sorted.compactMap { if case .tlsSecret(let value) = $0 { value } else { nil } }
  }
}

/// Why an apply or delete was refused: every problem in the whole input, so one run shows
/// them all. Nothing was changed.
public struct ApplyRejected: Error, Sendable, CustomStringConvertible {
  public var messages: [String]
  public var description: String { messages.joined(separator: "\n") }
}

/// `junctionctl apply -f` / `delete -f`, all or nothing: the whole input is decoded and
/// validated first; if any object is invalid (or the result would give one frontend to two
/// services) nothing is applied and every problem is reported.
public struct ApplyPlan: Sendable {
  public enum Action: String, Sendable {
    case apply
    case delete
  }

  public let action: Action
  public let decoded: DecodedResources

  /// Takes the text (`consuming`): a caller that hands it over lets up to 64 MiB go as soon
  /// as it is decoded, not after the whole change is applied.
  public init(_ action: Action, yaml: consuming String) {
    self.action = action
    decoded = ResourceDecoder.decode(yaml: yaml)
    _ = consume yaml
  }

  /// Objects to create/replace (apply) or remove (delete), in input order.
  public var resources: [Resource] { decoded.resources }
  /// "document 3: skipped Deployment web (apps/v1): unknown kind", for the user.
  public var skipped: [SkippedObject] { decoded.skipped }
  public var notes: [String] { decoded.notes }
  /// Every problem message; empty when the input is valid.
  public var errors: [String] { decoded.problems.flatMap(\.messages) }
  public var isValid: Bool { decoded.problems.isEmpty }

  /// The plan as edits for `ServiceTable.prepare`, in input order.
  public var edits: [ResourceEdit] {
    zip(resources, decoded.documents).map { resource, document in
      switch action {
      case .apply: .upsert(resource, document: document)
      case .delete: .remove(resource.key)
      }
    }
  }

  /// The set after this plan, or every reason it is refused. Deleting an object that is not
  /// there is not an error (the goal, its absence, holds), as with `--ignore-not-found`.
  /// A frontend conflict that the input introduces refuses the whole input; conflicts
  /// already present before are not this input's fault. (The agent keeps a `ServiceTable`
  /// and prepares the edits against it instead of re-planning the whole set.)
  public func result(applyingTo current: ResourceSet) throws(ApplyRejected) -> ResourceSet {
    var table = ServiceTable(resources: current, ids: LoadBalancerIDs())
    table.commit(try update(for: table))
    return table.resources
  }

  /// The plan worked out against `table`, or every reason it is refused.
  public func update(for table: ServiceTable) throws(ApplyRejected) -> ServiceTable.Update {
    guard isValid else { throw ApplyRejected(messages: errors) }
    return try table.prepare(edits)
  }
}
