import AgentAPI
import AgentCore
import AgentMetrics
import BPFKit
import FlowPipeline
import FoundationEssentials
import Hummingbird
import Logging
import ProxyManager
import ServiceCore

#if canImport(Glibc)
  import Glibc
#endif

/// The HTTP API under /v1 (docs/openapi.yaml). Routing is `APIRoute.resolve` (AgentCore);
/// this type turns routes into registry calls and JSON responses. Every non-2xx answer has
/// an `APIErrorBody`; a request that fails validation changes nothing.
struct APIResponder: HTTPResponder {
  typealias Context = APIRequestContext

  let registry: EndpointRegistry
  let services: ServiceManager
  /// The Kubernetes API the Services come from; nil standalone.
  let cluster: ClusterFollower?
  let config: AgentConfig
  let datapath: any Datapath
  let flows: FlowBuffer
  let shutdown: ShutdownFlag
  let logger: Logger
  /// `--envoy`: the node's Envoy; nil when the agent runs without one.
  var proxy: ProxyManager? = nil
  /// `--socket-lb`: the cgroup2 directory its programs are attached to; nil without.
  var socketLBRoot: String? = nil

  func respond(to request: Request, context: Context) async throws -> Response {
    let started = ContinuousClock.now
    let route = APIRoute.resolve(method: request.method.rawValue, path: request.uri.path)
    var request = request
    var bodyRead = false
    let response = try await answer(route, &request, bodyRead: &bodyRead)
    // A body nobody read is dropped (bounded) so that a client still sending it is not
    // left blocked before it reads the answer.
    if !bodyRead { try await discard(request.body) }
    if response.headers[.connection] == "close" { context.closeAfterResponse() }
    AgentMetrics.shared.observeAPIRequest(
      route: route, method: request.method.rawValue, code: response.status.code,
      seconds: (ContinuousClock.now - started).metricSeconds)
    logger.debug(
      "request",
      metadata: [
        "method": "\(request.method.rawValue)", "path": "\(request.uri.path)",
        "status": "\(response.status.code)",
        "ms": "\((ContinuousClock.now - started).milliseconds)",
      ])
    return response
  }

  private func answer(_ route: APIRoute, _ request: inout Request, bodyRead: inout Bool)
    async throws
    -> Response
  {
    if shutdown.isSet {
      if route == .health {
        // The health document still tells who is answering; the status says why it is 503.
        return try json(
          .serviceUnavailable, ShuttingDownHealth(health: await health(), error: Self.shuttingDown))
      }
      return error(.serviceUnavailable, Self.shuttingDown)
    }
    switch route {
    case .health:
      return try json(.ok, await health())
    case .config:
      return try json(.ok, config)
    case .listEndpoints:
      return try json(.ok, await registry.list())
    case .getEndpoint(let id):
      guard let endpoint = await registry.get(id) else { return notFound(id) }
      return try json(.ok, endpoint)
    case .putEndpoint(let id):
      bodyRead = true
      return try await put(id, &request)
    case .deleteEndpoint(let id):
      do {
        return try await registry.delete(id, issuedAt: Self.issuedAt(request))
          ? Response(status: .noContent) : notFound(id)
      } catch {
        return failure(error, doing: "remove endpoint \(id)")
      }
    case .changeResources(let delete):
      bodyRead = true
      return try await changeResources(delete: delete, &request)
    case .listServices:
      // Written directly, not through JSONEncoder (ServiceStatusJSON.swift), and the
      // listing's buffers handed back to the system afterwards: at 10,000 Services the
      // body alone is ≈ 10 MB.
      defer { FreedMemory.release() }
      return jsonBytes(.ok, await services.listJSON())
    case .listRedirectPolicies:
      return try json(.ok, await services.redirectPolicies())
    case .loadBalancerMaps:
      // Written directly (LBMapDumpJSON.swift) and its buffers handed back afterwards: at
      // 10,000 Services × 10 the body is ≈ 26 MB.
      defer { FreedMemory.release() }
      do {
        return jsonBytes(.ok, try datapath.dumpLoadBalancer().jsonBytes)
      } catch {
        return self.error(.internalServerError, "cannot read the service maps: \(error)")
      }
    case .dropCounters:
      do {
        return try json(.ok, DatapathNames.dropDump(try datapath.dropCounters()))
      } catch {
        return self.error(.internalServerError, "cannot read the drop counters: \(error)")
      }
    case .envoyConfigs:
      return try json(.ok, proxy?.list() ?? EnvoyListResponse(pid: nil, starts: 0, configs: []))
    case .flows:
      return await flowLines(query: request.uri.query ?? "")
    case .badEndpointID(let message):
      return error(.badRequest, message)
    case .methodNotAllowed(let allowed):
      var response = error(
        .methodNotAllowed,
        "method \(request.method.rawValue) is not allowed on \(NameRules.printable(request.uri.path)); "
          + "use \(allowed.joined(separator: ", "))"
      )
      response.headers[.allow] = allowed.joined(separator: ", ")
      return response
    case .notFound(let path):
      return error(
        .notFound, "no such API path: \(NameRules.printable(path)) (see docs/openapi.yaml)")
    }
  }

  /// The whole body, or a 413 when it is larger than `limit` (what was sent is drained,
  /// bounded, so the client gets to read the answer).
  private enum BodyRead {
    case body([UInt8])
    case refused(Response)
  }

  private func readBody(_ request: inout Request, limit: Int) async throws -> BodyRead {
    if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
      try await discard(request.body)
      return .refused(tooLarge("the body is \(declared) bytes; at most \(limit) are accepted"))
    }
    var body: [UInt8] = []
    var iterator = request.body.makeAsyncIterator()
    while let chunk = try await iterator.next() {
      if body.count + chunk.readableBytes > limit {
        var discarded = body.count + chunk.readableBytes
        while discarded < Self.discardLimit, let more = try await iterator.next() {
          discarded += more.readableBytes
        }
        return .refused(tooLarge("the body is larger than \(limit) bytes"))
      }
      body.append(contentsOf: chunk.readableBytesView)
    }
    return .body(body)
  }

  /// Resource YAML can be large (10,000 services): up to 64 MiB.
  static let maximumResourceBody = 64 << 20

  private func changeResources(delete: Bool, _ request: inout Request) async throws -> Response {
    if let cluster {
      return error(
        .conflict,
        "this agent follows the Kubernetes API at \(cluster.config.server): the cluster is the "
          + "source of Services, so \(delete ? "delete" : "apply") is refused; change the objects "
          + "in the cluster (kubectl) instead")
    }
    // The bytes go as soon as they are text, and the text is handed over (`take`, `consume`)
    // so that it goes once decoded: not up to 64 MiB held while the change is applied.
    var text: String?
    switch try await readBody(&request, limit: Self.maximumResourceBody) {
    case .body(let bytes): text = String(validating: bytes, as: UTF8.self)
    case .refused(let response): return response
    }
    guard let yaml = text.take(), !yaml.isEmpty else {
      // A ResourceChange like every other 400 of apply/delete (its `error` keeps it an
      // APIErrorBody too); a bare APIErrorBody broke the document (schemathesis, issue 16).
      let problem = "the body must be Kubernetes YAML (or JSON), in UTF-8"
      return try json(.badRequest, ResourceChange(errors: [problem], error: problem))
    }
    do {
      let change = try await services.change(yaml: consume yaml, delete: delete)
      return try json(change.errors.isEmpty ? .ok : .badRequest, change)
    } catch {
      return self.error(.internalServerError, "\(error); nothing was changed")
    }
  }

  private func put(_ id: String, _ request: inout Request) async throws -> Response {
    let body: [UInt8]
    switch try await readBody(&request, limit: EndpointRequest.maximumBodySize) {
    case .body(let bytes): body = bytes
    case .refused(let response): return response
    }
    if body.isEmpty { return error(.badRequest, "the body is empty; send an EndpointSpec as JSON") }
    let spec: EndpointSpec
    do {
      spec = try EndpointRequest.decode(body, pathID: id)
    } catch {
      return self.error(.badRequest, error.description)
    }
    let outcome: EndpointTable.PutOutcome
    do {
      outcome = try await registry.put(spec, issuedAt: Self.issuedAt(request))
    } catch {
      return failure(error, doing: "store endpoint \(id)")
    }
    switch outcome {
    case .created(let endpoint):
      var response = try json(.created, endpoint)
      response.headers[.location] = "\(APIRoute.endpointsPrefix)/\(endpoint.id)"
      return response
    case .replaced(let endpoint, _):
      return try json(.ok, endpoint)
    }
  }

  /// GET /v1/flows: NDJSON, one FlowsLine per line. Without follow: the buffered flows that
  /// match (the last `last` of them), then the datapath's lost count when not 0. With
  /// follow: the same, then each new matching flow as it comes, and a lost line whenever
  /// this reader fell behind, until the client goes away or the agent stops. Flows are
  /// named with the endpoints and Services as they are when sent.
  private func flowLines(query text: String) async -> Response {
    let query: FlowQuery
    do {
      query = try FlowQuery.parse(text)
    } catch {
      return self.error(.badRequest, error.description)
    }
    let nodeName = config.nodeName
    let namesVersion = await flowNamesVersion()
    let directory = await flowDirectory()
    var headers = HTTPFields()
    headers[.contentType] = "application/x-ndjson"
    guard query.follow, datapath.isLoaded else {
      let flows = query.select(flows.snapshot(), directory: directory, nodeName: nodeName)
      var lines = flows.map { FlowsLine(flow: $0) }
      let lost = datapath.flowEventsLost()
      if lost > 0 {
        lines.append(FlowsLine(lostEvents: LostEvents(source: "datapath-ring", count: lost)))
      }
      return Response(
        status: .ok, headers: headers,
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: Self.ndjson(lines))))
    }
    let (backlog, stream, id) = flows.follow(queue: Self.followerQueue)
    let first = query.select(backlog, directory: directory, nodeName: nodeName)
    let initial = Self.ndjson(first.map { FlowsLine(flow: $0) })
    let buffer = flows
    let responder = self
    let datapath = self.datapath
    let ringLostAtStart = datapath.flowEventsLost()
    return Response(
      status: .ok, headers: headers,
      body: ResponseBody { writer in
        defer { buffer.stop(follower: id) }
        // An empty write would be an empty chunk, which ends a chunked body.
        if !initial.isEmpty { try await writer.write(ByteBuffer(bytes: initial)) }
        var directory = directory
        var names = namesVersion
        var reported: UInt64 = 0
        var ringReported = ringLostAtStart
        var refreshed = ContinuousClock.now
        for await batch in stream {
          // Names as of at most a second ago: a pod or Service added since is found.
          var lines: [FlowsLine] = []
          if ContinuousClock.now - refreshed > .seconds(1) {
            // Rebuilt only when the endpoints or the Services changed: at 10,000 Services
            // with Pod refs a rebuild is ≈ 300 ms of the agent's CPU.
            let current = await responder.flowNamesVersion()
            if current != names {
              directory = await responder.flowDirectory()
              names = current
            }
            refreshed = .now
            // Events the datapath's ring lost since this reader started (checked with the
            // names, at most once a second: it reads a per-CPU map).
            let ringLost = datapath.flowEventsLost()
            if ringLost > ringReported {
              lines.append(
                FlowsLine(
                  lostEvents: LostEvents(source: "datapath-ring", count: ringLost - ringReported)))
              ringReported = ringLost
            }
          }
          let lost = buffer.lost(follower: id)
          if lost > reported {
            lines.append(
              FlowsLine(lostEvents: LostEvents(source: "follower", count: lost - reported)))
            reported = lost
          }
          lines += query.select(batch, directory: directory, nodeName: nodeName, limited: false)
            .map { FlowsLine(flow: $0) }
          if !lines.isEmpty { try await writer.write(ByteBuffer(bytes: Self.ndjson(lines))) }
        }
        try await writer.finish(nil)
      })
  }

  /// Flows a follower may have waiting before it loses new ones: ~1 s at 60,000 flows/s
  /// (10,000 new connections/s, ~6 flows each), ~4 MiB of records per follower, so a pause
  /// of the reader (a client's scheduling on a busy node, the names refreshed) loses
  /// nothing. 16,384 (~0.27 s) lost 2.9% of the flows at 10,000 connections/s on the 2-CPU
  /// bench VM (bench/results/flow-events.md).
  static let followerQueue = 65536

  /// What the flow names are built from, as versions: equal versions, equal names.
  private func flowNamesVersion() async -> [UInt64] {
    [await registry.version, await services.version]
  }

  /// Names for flows: the endpoints, the Services, the Pods the agent holds (followed
  /// from the Kubernetes API for this node, or applied standalone) for their labels, and
  /// the Services' backends named by their slices' targetRefs (pods on other nodes).
  private func flowDirectory() async -> FlowDirectory {
    let objects = await services.resources.objects.values
    var pods: [FlowDirectory.KnownPod] = []
    var backends: [FlowDirectory.KnownBackend] = []
    for resource in objects {
      switch resource {
      case .pod(let pod):
        pods.append(
          FlowDirectory.KnownPod(
            namespace: pod.meta.namespace, name: pod.meta.name,
            ips: pod.podIPs.map(\.description), labels: pod.meta.labels))
      case .endpointSlice(let slice):
        for endpoint in slice.endpoints {
          guard let target = endpoint.target, target.kind == "Pod" else { continue }
          backends.append(
            FlowDirectory.KnownBackend(
              namespace: target.namespace, name: target.name,
              ips: endpoint.addresses.map(\.description)))
        }
      default: continue
      }
    }
    return FlowDirectory(
      endpoints: await registry.list(), services: await services.list(backends: false), pods: pods,
      backends: backends)
  }

  /// The lines as NDJSON, written directly (FlowNDJSON): JSONEncoder per flow was what held
  /// a follower to ~8,000 flows/s.
  private static func ndjson(_ lines: [FlowsLine]) -> [UInt8] { FlowNDJSON.lines(lines) }

  private func health() async -> Health {
    var health = HealthSummary.make(
      nodeName: config.nodeName, datapathLoaded: datapath.isLoaded, endpoints: await registry.count,
      stateProblem: await registry.stateProblem, shuttingDown: shutdown.isSet,
      datapathProblem: pinsProblem())
    if let root = socketLBRoot {
      // Reported, never degrading: see HealthSummary.socketLBComponent.
      health.components["socketLB"] = HealthSummary.socketLBComponent(
        cgroupRoot: root, stillMounted: CgroupFilesystem.isCgroup2(root))
    }
    if let cluster {
      let status = await cluster.status()
      health.cluster = status
      health.components["kubernetes"] = HealthSummary.clusterComponent(status)
      if health.status == HealthSummary.ok, health.components["kubernetes"] != HealthSummary.ok {
        health.status = HealthSummary.degraded
      }
    }
    return health
  }

  static let shuttingDown = "the agent is shutting down"

  /// The plugin attaches every new pod's programs from their pins: when the bpffs under
  /// them was unmounted or cleared, pods already running keep their programs (tc holds
  /// them) but every ADD fails. Said here, so STATUS and the health check report it
  /// (issue 16: the bpffs vanishing under a running agent).
  private func pinsProblem() -> String? {
    guard datapath.isLoaded else { return nil }
    let pins: [String] = [datapath.fromEndpointPin, datapath.toEndpointPin]
    let missing = pins.filter { access($0, F_OK) != 0 }
    if missing.isEmpty { return nil }
    return "the pinned programs \(missing.joined(separator: ", ")) are missing (the bpffs "
      + "\(config.bpfFS) was unmounted or cleared): new pods cannot be attached; mount it "
      + "again and restart the agent, which pins them anew (running pods keep working)"
  }

  private func failure(_ failure: EndpointRegistry.Failure, doing what: String) -> Response {
    switch failure {
    case .shuttingDown: error(.serviceUnavailable, Self.shuttingDown)
    case .persist(let problem):
      error(.internalServerError, "cannot \(what): \(problem); nothing changed")
    case .superseded:
      error(
        .conflict,
        "cannot \(what): a request for it issued later (\(IssuedAt.header)) was already "
          + "applied; nothing changed")
    }
  }

  /// The plugin's `IssuedAt` reading, when the request carries a well-formed one (a
  /// malformed one is ignored, as an absent one: the request is then applied in the order
  /// it is read, as before the header existed).
  private static func issuedAt(_ request: Request) -> UInt64? {
    let name = IssuedAt.header.lowercased()
    return IssuedAt.parse(request.headers.first { $0.name.canonicalName == name }?.value)
  }

  /// How much of a refused body is read and dropped before answering 413: a body up to
  /// this size is taken whole, so even a client that writes everything before reading (and
  /// over TCP, where closing on unread bytes resets) gets the answer. Beyond it the answer
  /// is sent anyway and the connection closed after it (`APIRequestContext`): the client's
  /// next write fails and it reads the 413.
  static let discardLimit = 16 << 20

  private func discard(_ body: RequestBody) async throws {
    var discarded = 0
    for try await chunk in body {
      discarded += chunk.readableBytes
      if discarded >= Self.discardLimit { return }
    }
  }

  /// 413, with `Connection: close`, which `respond` follows with the close.
  private func tooLarge(_ message: String) -> Response {
    var response = error(.contentTooLarge, message)
    response.headers[.connection] = "close"
    return response
  }

  private func notFound(_ id: String) -> Response {
    error(.notFound, "no endpoint \(id)")
  }

  private func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
    // An error body cannot fail to encode; fall back to an empty object all the same.
    (try? json(status, APIErrorBody(error: message))) ?? Response(status: status)
  }

  private func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var bytes = try encoder.encode(value)
    bytes.append(UInt8(ascii: "\n"))
    return jsonBytes(status, bytes)
  }

  /// A JSON body already encoded, its "\n" included.
  private func jsonBytes(_ status: HTTPResponse.Status, _ bytes: some Sequence<UInt8>) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(
      status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
  }
}

/// /v1/healthz while shutting down: the Health fields and an `error`, so both a Health
/// decoder and an APIErrorBody decoder read it.
struct ShuttingDownHealth: Encodable {
  var health: Health
  var error: String

  func encode(to encoder: any Encoder) throws {
    try health.encode(to: encoder)
    var container = encoder.container(keyedBy: Key.self)
    try container.encode(error, forKey: .error)
  }

  enum Key: String, CodingKey { case error }
}

extension Duration {
  var milliseconds: String {
    let (seconds, attoseconds) = components
    let value = Double(seconds) * 1000 + Double(attoseconds) / 1e15
    return String(Int((value * 100).rounded())).withDecimalPoint(2)
  }
}

extension String {
  /// "12345" with 2 → "123.45".
  fileprivate func withDecimalPoint(_ places: Int) -> String {
    let padded = count <= places ? String(repeating: "0", count: places - count + 1) + self : self
    return "\(padded.dropLast(places)).\(padded.suffix(places))"
  }
}
