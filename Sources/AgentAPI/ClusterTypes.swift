/// Where the agent's Services come from when it follows the Kubernetes API, and how that is
/// going (`cluster` in GET /v1/healthz; absent standalone).
public struct ClusterStatus: Codable, Equatable, Sendable {
  /// The API server's URL.
  public var server: String
  /// "in-cluster" or "kubeconfig FILE (context C)".
  public var source: String
  /// Every followed resource has listed once, and the stored state was replaced by it.
  public var synced: Bool
  /// RFC 3339 time of that first full sync.
  public var syncedAt: String?
  /// RFC 3339 time since when requests fail (the agent keeps the last-known state meanwhile).
  public var unreachableSince: String?
  /// The latest failure, one line ("403 Forbidden: RBAC does not allow watch on ...").
  public var lastError: String?
  public var resources: [ClusterResourceStatus]
  /// Objects the API sent that could not be read (each logged by namespace/name) and skipped.
  public var skippedObjects: Int
  /// Writes to the service maps for API changes since the agent started, one per frontend or
  /// backend written or deleted (a relist that finds nothing changed makes none).
  public var mapWrites: Int
  /// From an EndpointSlice's `endpoints.kubernetes.io/last-change-trigger-time` (or the
  /// event's arrival) to the map write.
  public var programmingLatency: LatencySummary
  /// Set when the API server's address is a Service frontend this agent translates (a
  /// ClusterIP, external or load-balancer IP): one line saying so. The agent keeps working,
  /// but a restart without the API can cut it off from the server (Cilium issue #34653).
  public var serverWarning: String?
  /// The highest `metadata.resourceVersion` among the objects received (compared as
  /// integers, as etcd's revisions are), when every change received is in the datapath; nil
  /// while some wait to be applied, and before the first sync. The lab waits on it (and on
  /// each resource's object count) to know an agent has caught up with its writes.
  public var appliedResourceVersion: String?

  public init(
    server: String, source: String, synced: Bool, syncedAt: String?, unreachableSince: String?,
    lastError: String?, resources: [ClusterResourceStatus], skippedObjects: Int, mapWrites: Int,
    programmingLatency: LatencySummary, serverWarning: String? = nil,
    appliedResourceVersion: String? = nil
  ) {
    self.serverWarning = serverWarning
    self.appliedResourceVersion = appliedResourceVersion
    self.server = server
    self.source = source
    self.synced = synced
    self.syncedAt = syncedAt
    self.unreachableSince = unreachableSince
    self.lastError = lastError
    self.resources = resources
    self.skippedObjects = skippedObjects
    self.mapWrites = mapWrites
    self.programmingLatency = programmingLatency
  }
}

public struct ClusterResourceStatus: Codable, Equatable, Sendable {
  /// As RBAC names it: "services", "endpointslices.discovery.k8s.io".
  public var resource: String
  /// "synced", "waiting" (not listed yet) or "not-installed" (a CRD answering 404).
  public var state: String
  public var objects: Int
  /// Seconds since the last change event, nil before the first.
  public var lastEventAgeSeconds: Double?
  public var relists: Int
  public var errors: Int
  public var malformed: Int
  public var lastError: String?

  public init(
    resource: String, state: String, objects: Int, lastEventAgeSeconds: Double?, relists: Int,
    errors: Int, malformed: Int, lastError: String?
  ) {
    self.resource = resource
    self.state = state
    self.objects = objects
    self.lastEventAgeSeconds = lastEventAgeSeconds
    self.relists = relists
    self.errors = errors
    self.malformed = malformed
    self.lastError = lastError
  }
}

public struct LatencySummary: Codable, Equatable, Sendable {
  /// Changes measured (the percentiles are over the latest 1,000).
  public var count: Int
  public var p50Milliseconds: Double?
  public var p99Milliseconds: Double?

  public init(count: Int, p50Milliseconds: Double?, p99Milliseconds: Double?) {
    self.count = count
    self.p50Milliseconds = p50Milliseconds
    self.p99Milliseconds = p99Milliseconds
  }
}
