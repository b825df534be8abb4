import FoundationEssentials

#if canImport(Glibc)
  import Glibc
#endif

/// A small blocking HTTP/1.1 client for the agent's Unix socket.
///
/// Hand-written on purpose: the CNI plugin runs once per pod and must start in a few
/// milliseconds, on one thread (it switches network namespaces); an event-loop client would
/// cost more to start than the whole request. One request per connection, Content-Length
/// bodies only — exactly what the agent serves.
public struct AgentClient: Sendable {
  public let socketPath: String
  /// Connect + send + receive must finish within this many seconds.
  public let timeout: Double

  public init(socketPath: String, timeout: Double = 10) {
    self.socketPath = socketPath
    self.timeout = timeout
  }

  public struct Response: Sendable {
    public var status: Int
    public var body: [UInt8]

    public var isSuccess: Bool { (200..<300).contains(status) }

    /// The agent's `{"error": ...}` text, or the raw body.
    public var errorMessage: String {
      if let decoded = try? JSONDecoder().decode(APIErrorBody.self, from: Data(body)) {
        return decoded.error
      }
      return String(decoding: body.prefix(300), as: UTF8.self)
    }
  }

  public enum Failure: Error, CustomStringConvertible, Equatable {
    /// Nothing listens at the path (no file, or connection refused).
    case notRunning(String)
    case permissionDenied(String)
    case timedOut(String)
    case io(String)
    case badResponse(String)
    /// The agent closed the connection before a complete response head (it died, or was
    /// killed, after reading the request): whether the request was carried out is unknown.
    case closedWithoutAnswer(bytes: Int)
    /// A 4xx/5xx with the agent's message.
    case api(status: Int, message: String)

    /// True when the request was not carried out, or may not have been, for a reason that
    /// a later attempt (by the agent at its next start, or by the caller) can get past:
    /// nothing listens, no answer in time, the connection broke or was closed without an
    /// answer, or a 5xx (503 while the agent shuts down, a state write that failed).
    /// False when the agent understood and refused (4xx), when the caller may not talk to
    /// it, or when what answered does not speak its HTTP.
    public var isRetryable: Bool {
      switch self {
      case .notRunning, .timedOut, .io, .closedWithoutAnswer: true
      case .api(let status, _): (500..<600).contains(status)
      case .permissionDenied, .badResponse: false
      }
    }

    public var description: String {
      switch self {
      case .notRunning(let path): "the Junction agent is not running at \(path)"
      case .permissionDenied(let path):
        "permission denied on \(path) (the agent's socket is root-only)"
      case .timedOut(let what): "the Junction agent did not answer in time (\(what))"
      case .io(let what): "talking to the Junction agent: \(what)"
      case .badResponse(let what): "the Junction agent sent a response that is not HTTP: \(what)"
      case .closedWithoutAnswer(let bytes):
        "the Junction agent closed the connection without answering (after \(bytes) bytes); "
          + "it may have stopped while handling the request"
      case .api(let status, let message): "the Junction agent answered \(status): \(message)"
      }
    }
  }

  // MARK: - Typed calls

  public func health() throws(Failure) -> Health {
    try decode(try expectSuccess(request("GET", "/v1/healthz")))
  }
  public func config() throws(Failure) -> AgentConfig {
    try decode(try expectSuccess(request("GET", "/v1/config")))
  }
  public func endpoints() throws(Failure) -> [Endpoint] {
    try decode(try expectSuccess(request("GET", "/v1/endpoints")))
  }

  /// nil when the agent does not know the id.
  public func endpoint(_ id: String) throws(Failure) -> Endpoint? {
    let response = try request("GET", "/v1/endpoints/\(id)")
    if response.status == 404 { return nil }
    return try decode(try expectSuccess(response))
  }

  /// Creates or replaces the endpoint. Only the status is checked: the plugin, its one
  /// caller, has no use for the agent's copy of the record, and decoding it is a first use
  /// of Codable's runtime machinery that costs a short-lived process about a millisecond.
  ///
  /// `issuedAt` (`IssuedAt.now()`, the plugin's) lets the agent refuse this request when it
  /// gets to it after a newer one of the same endpoint (see `IssuedAt`).
  public func putEndpoint(_ spec: EndpointSpec, issuedAt: UInt64? = nil) throws(Failure) {
    let body: [UInt8]
    do {
      body = Array(try JSONEncoder().encode(spec))
    } catch {
      throw .io("encoding the endpoint: \(error)")
    }
    _ = try expectSuccess(
      request(
        "PUT", "/v1/endpoints/\(spec.id)", body: body, headers: IssuedAt.headers(issuedAt)))
  }

  /// True when it existed, false when the agent did not know it (404). `issuedAt`: as for
  /// `putEndpoint`.
  @discardableResult
  public func deleteEndpoint(_ id: String, issuedAt: UInt64? = nil) throws(Failure) -> Bool {
    let response = try request(
      "DELETE", "/v1/endpoints/\(id)", headers: IssuedAt.headers(issuedAt))
    if response.status == 404 { return false }
    _ = try expectSuccess(response)
    return true
  }

  /// Applies (or, with `delete`, removes) the Kubernetes objects in `yaml`. A 400 with the
  /// reasons comes back as a `ResourceChange` whose `errors` are set, not as a failure.
  ///
  /// Waits as long as the agent takes (10,000 Services take seconds, and a time-out here
  /// would only hide a change that still lands): `tick` gets the whole seconds waited, once
  /// a second. The connect and the send keep `timeout`; an agent that dies closes the
  /// connection, which ends the wait with `closedWithoutAnswer`.
  public func changeResources(
    yaml: String, delete: Bool, tick: @escaping (Int) -> Void = { _ in }
  ) throws(Failure) -> ResourceChange {
    let path = delete ? "/v1/resources/delete" : "/v1/resources/apply"
    let response = try request(
      "POST", path, body: Array(yaml.utf8), contentType: "application/yaml",
      wait: .untilAnswered(tick: tick))
    if response.status == 400, let change: ResourceChange = try? decode(response) { return change }
    return try decode(try expectSuccess(response))
  }

  public func services() throws(Failure) -> [ServiceStatus] {
    try decode(try expectSuccess(request("GET", "/v1/services")))
  }

  /// GET /v1/envoy/configs: the CiliumEnvoyConfigs and Ingresses the node's Envoy serves.
  public func envoyConfigs() throws(Failure) -> EnvoyListResponse {
    try decode(try expectSuccess(request("GET", "/v1/envoy/configs")))
  }

  /// GET /v1/lrp: the Local Redirect Policies as this node applies them.
  public func redirectPolicies() throws(Failure) -> [RedirectPolicyStatus] {
    try decode(try expectSuccess(request("GET", "/v1/lrp")))
  }

  /// GET /v1/bpf/lb: the service maps as the datapath holds them.
  public func loadBalancerMaps() throws(Failure) -> LBMapDump {
    try decode(try expectSuccess(request("GET", "/v1/bpf/lb")))
  }

  /// GET /v1/bpf/drops: the drop counters by reason and direction.
  public func dropCounters() throws(Failure) -> DropCounterDump {
    try decode(try expectSuccess(request("GET", "/v1/bpf/drops")))
  }

  /// Connects and hangs up: whether something accepts connections at the socket, at the
  /// cost of one connect (no request, no HTTP).
  public func probe() throws(Failure) {
    close(try connect())
  }

  private func expectSuccess(_ response: Response) throws(Failure) -> Response {
    guard response.isSuccess else {
      throw .api(status: response.status, message: response.errorMessage)
    }
    return response
  }

  private func decode<T: Decodable>(_ response: Response) throws(Failure) -> T {
    do {
      return try JSONDecoder().decode(T.self, from: Data(response.body))
    } catch {
      throw .badResponse("cannot decode \(T.self): \(error)")
    }
  }

  // MARK: - HTTP over the socket

  /// How long `request` waits for the answer once the request is sent.
  public enum Wait {
    /// At most `timeout` between two reads.
    case timeout
    /// Until the agent answers or closes the connection; `tick` is called with the whole
    /// seconds waited, about once a second, while nothing arrives.
    case untilAnswered(tick: (Int) -> Void)
  }

  /// One request on a fresh connection.
  public func request(
    _ method: String, _ path: String, body: [UInt8] = [], contentType: String = "application/json",
    headers: [(String, String)] = [], wait: Wait = .timeout
  ) throws(Failure) -> Response {
    let fd = try connect()
    defer { close(fd) }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: junction-agent\r\nConnection: close\r\n"
    head += "Accept: application/json\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "PUT" || method == "POST" {
      head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
    }
    head += "\r\n"
    try send(fd, Array(head.utf8) + body)
    return try receive(fd, wait: wait)
  }

  func connect() throws(Failure) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw .io("socket: \(String(cString: strerror(errno)))") }
    var limit = timeval(
      tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))

    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let pathBytes = Array(socketPath.utf8)
    guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      close(fd)
      throw .io("socket path \(socketPath) is too long")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
    }
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    if result != 0 {
      let code = errno
      close(fd)
      switch code {
      case ENOENT, ECONNREFUSED, ENOTDIR: throw .notRunning(socketPath)
      case EACCES, EPERM: throw .permissionDenied(socketPath)
      case EAGAIN, ETIMEDOUT, EINPROGRESS: throw .timedOut("connect")
      default: throw .io("connect \(socketPath): \(String(cString: strerror(code)))")
      }
    }
    return fd
  }

  func send(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
    var offset = 0
    while offset < bytes.count {
      let sent = bytes[offset...].withUnsafeBytes {
        Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
      }
      if sent < 0 {
        if errno == EINTR { continue }
        if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut("send") }
        throw .io("send: \(String(cString: strerror(errno)))")
      }
      offset += sent
    }
  }

  private func receive(_ fd: Int32, wait: Wait) throws(Failure) -> Response {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    var parsed: (status: Int, bodyStart: Int, length: Int?)?
    let started = ContinuousClock.now
    while true {
      if case .untilAnswered(let tick) = wait {
        // poll() first so that recv() never meets SO_RCVTIMEO: it is only called once
        // there is data, or the end of the connection, to read.
        try awaitReadable(fd) { tick(Int((ContinuousClock.now - started).components.seconds)) }
      }
      let count = recv(fd, &buffer, buffer.count, 0)
      if count < 0 {
        if errno == EINTR { continue }
        if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut("receive") }
        throw .io("receive: \(String(cString: strerror(errno)))")
      }
      if count == 0 { break }
      data.append(contentsOf: buffer[..<count])
      if parsed == nil { parsed = try HTTPHead.parse(data) }
      if let parsed, let length = parsed.length, data.count >= parsed.bodyStart + length { break }
    }
    if parsed == nil { parsed = try HTTPHead.parse(data) }
    guard let parsed else { throw .closedWithoutAnswer(bytes: data.count) }
    let end = parsed.length.map { min(data.count, parsed.bodyStart + $0) } ?? data.count
    return Response(status: parsed.status, body: Array(data[parsed.bodyStart..<end]))
  }

  /// Blocks until `fd` can be read (data, end of stream or an error), calling `idle` each
  /// second that passes without.
  private func awaitReadable(_ fd: Int32, idle: () -> Void) throws(Failure) {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while true {
      let ready = poll(&entry, 1, 1000)
      if ready > 0 { return }
      if ready == 0 {
        idle()
        continue
      }
      if errno == EINTR { continue }
      throw .io("poll: \(String(cString: strerror(errno)))")
    }
  }
}

/// Parses an HTTP/1.1 response head: status and Content-Length. nil while incomplete.
enum HTTPHead {
  static func parse(_ data: [UInt8]) throws(AgentClient.Failure) -> (
    status: Int, bodyStart: Int, length: Int?
  )? {
    let separator: [UInt8] = [13, 10, 13, 10]
    guard data.count >= 4,
      let end = (0...(data.count - 4)).first(where: { data[$0..<$0 + 4].elementsEqual(separator) })
    else { return nil }
    let head = String(decoding: data[..<end], as: UTF8.self)
    let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
    let statusParts = lines.first?.split(separator: " ") ?? []
    guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."),
      let status = Int(statusParts[1])
    else {
      throw .badResponse(String(lines.first ?? ""))
    }
    var length: Int?
    for line in lines.dropFirst() {
      let pieces = line.split(separator: ":", maxSplits: 1)
      if pieces.count == 2, pieces[0].lowercased() == "content-length" {
        length = Int(pieces[1].filter { $0 != " " && $0 != "\t" })
      }
    }
    return (status, end + 4, length)
  }
}
