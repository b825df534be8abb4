import AsyncHTTPClient
import CNIKit
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The API over HTTPS with async-http-client: the server's certificate verified against the
/// configured CA (always), the bearer token read from its file for every request (a bound
/// service-account token is rewritten by the kubelet before it expires, so the next request
/// carries the new one) or a client certificate.
public final class HTTPTransport: APITransport, APIWriter {
  public let config: ClusterConfig
  private let client: HTTPClient
  private let readFile: FileReader
  private let isShutDown = Mutex(false)

  public init(config: ClusterConfig, readFile: @escaping FileReader) throws(ClusterConfigError) {
    self.config = config
    self.readFile = readFile
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.certificateVerification = .fullVerification
    do {
      if !config.certificateAuthority.isEmpty {
        tls.trustRoots = .certificates(
          try NIOSSLCertificate.fromPEMBytes(config.certificateAuthority))
      }
      if case .clientCertificate(let certificate, let key) = config.credentials {
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map {
          .certificate($0)
        }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
      }
    } catch {
      throw ClusterConfigError("\(config.source): cannot read the TLS material: \(error)")
    }
    // The read timeout ends a hung watch (a connection that died without a FIN): the server
    // writes at least when it closes the watch at its timeoutSeconds (below 10 min).
    var configuration = HTTPClient.Configuration(
      tlsConfiguration: tls,
      timeout: HTTPClient.Configuration.Timeout(connect: .seconds(3), read: .seconds(660)))
    configuration.httpVersion = .http1Only
    // One long-lived HTTP/1.1 watch per followed collection (ten with the L7 kinds), plus a
    // list or a relist at a time: the default of 8 connections per host would leave the last
    // watches waiting for a connection forever.
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
    client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
  }

  /// A fallback: owners call `shutdown()` (the client must be shut down before it goes, and
  /// not from an event loop thread, where a synchronous shutdown would deadlock).
  deinit {
    if !isShutDown.withLock({ $0 }) { try? client.syncShutdown() }
  }

  public func shutdown() async {
    if isShutDown.withLock({ done in
      defer { done = true }
      return done
    }) {
      return
    }
    try? await client.shutdown()
  }

  public func list(
    _ resource: APIResource, limit: Int, continueToken: String?, resourceVersion: String?
  ) async throws(APIError) -> ListPage {
    let query = resource.listQuery(
      limit: limit, continueToken: continueToken, resourceVersion: resourceVersion)
    let response = try await send(query, deadline: .now() + .seconds(60))
    let body: ByteBuffer
    do {
      body = try await response.body.collect(upTo: 512 << 20)
    } catch {
      throw classify(error)
    }
    let bytes = Array(body.readableBytesView)
    guard response.status == .ok else {
      throw APIError.from(
        statusCode: Int(response.status.code), body: bytes, verb: "list", resource: resource)
    }
    return try ListPage.decode(bytes)
  }

  public func watch(_ resource: APIResource, resourceVersion: String, timeoutSeconds: Int)
    async throws(APIError) -> AsyncThrowingStream<WatchEvent, any Error>
  {
    let query = resource.watchQuery(
      resourceVersion: resourceVersion, timeoutSeconds: timeoutSeconds)
    // The deadline covers the response's head; the body streams until the server ends it.
    let response = try await send(query, deadline: .now() + .seconds(30))
    guard response.status == .ok else {
      let body = (try? await response.body.collect(upTo: 1 << 20)).map {
        Array($0.readableBytesView)
      }
      throw APIError.from(
        statusCode: Int(response.status.code), body: body ?? [], verb: "watch", resource: resource)
    }
    let server = config.server
    return AsyncThrowingStream { continuation in
      let task = Task {
        var splitter = JSONStreamSplitter()
        do {
          for try await chunk in response.body {
            for object in splitter.feed(chunk.readableBytesView) {
              continuation.yield(try WatchEvent.decode(object))
            }
          }
          continuation.finish()
        } catch let error as APIError {
          continuation.finish(throwing: error)
        } catch {
          continuation.finish(
            throwing: APIError.unreachable(server: server, detail: "watch stream broke: \(error)"))
        }
      }
      continuation.onTermination = { _ in task.cancel() }
    }
  }

  public func create(_ resource: APIResource, namespace: String, object: JSONValue)
    async throws(APIError) -> CreateOutcome
  {
    let (code, body) = try await write(
      .POST, resource.objectPath(namespace: namespace, name: nil), object,
      contentType: "application/json")
    switch code {
    case 200, 201, 202: return .created
    case 409: return .alreadyExists
    default:
      throw APIError.from(statusCode: code, body: body, verb: "create", resource: resource)
    }
  }

  public func mergePatch(
    _ resource: APIResource, namespace: String, name: String, patch: JSONValue, status: Bool
  ) async throws(APIError) {
    let (code, body) = try await write(
      .PATCH, resource.objectPath(namespace: namespace, name: name, status: status), patch,
      contentType: "application/merge-patch+json")
    guard code == 200 else {
      var target = resource
      if status { target.plural += "/status" }
      // 404 here is the object (deleted meanwhile), not a resource that is not installed.
      if code == 404 {
        throw APIError.status(code: 404, detail: "\(resource.kind) \(namespace)/\(name) not found")
      }
      throw APIError.from(statusCode: code, body: body, verb: "patch", resource: target)
    }
  }

  /// One write: its status code and body (the body is small: one object or a Status).
  private func write(
    _ method: HTTPMethod, _ path: String, _ object: JSONValue, contentType: String
  ) async throws(APIError) -> (Int, [UInt8]) {
    let response = try await send(
      path, deadline: .now() + .seconds(30), method: method,
      body: (object.serialized(), contentType))
    do {
      let body = try await response.body.collect(upTo: 4 << 20)
      return (Int(response.status.code), Array(body.readableBytesView))
    } catch {
      throw classify(error)
    }
  }

  private func send(
    _ pathAndQuery: String, deadline: NIODeadline, method: HTTPMethod = .GET,
    body: (bytes: [UInt8], contentType: String)? = nil
  ) async throws(APIError) -> HTTPClientResponse {
    var request = HTTPClientRequest(url: config.server + pathAndQuery)
    request.method = method
    if let body {
      request.headers.add(name: "Content-Type", value: body.contentType)
      request.body = .bytes(body.bytes)
    }
    request.headers.add(name: "Accept", value: "application/json")
    request.headers.add(name: "User-Agent", value: "junction-agent")
    if let token = try bearerToken() {
      request.headers.add(name: "Authorization", value: "Bearer \(token)")
    }
    do {
      return try await client.execute(request, deadline: deadline)
    } catch {
      throw classify(error)
    }
  }

  /// The token as the file holds it now (read on every request: a few bytes, and requests
  /// are rare — list pages and watch starts).
  func bearerToken() throws(APIError) -> String? {
    switch config.credentials {
    case .token(let token): return token
    case .tokenFile(let path):
      do {
        let text = String(decoding: try readFile(path), as: UTF8.self)
        return String(
          text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
      } catch {
        throw .unauthorized(detail: "cannot read the token file \(path): \(error)")
      }
    case .none, .clientCertificate: return nil
    }
  }

  func classify(_ error: any Error) -> APIError {
    if let error = error as? APIError { return error }
    let text = String(describing: error)
    if error is NIOSSLError || text.contains("CERTIFICATE_VERIFY_FAILED")
      || text.contains("certificate verify failed") || text.contains("handshakeFailed")
    {
      return .untrustedCertificate(server: config.server, detail: Self.shortened(text))
    }
    return .unreachable(server: config.server, detail: Self.shortened(text))
  }

  static func shortened(_ text: String) -> String {
    let line = text.split(whereSeparator: \.isNewline).joined(separator: " ")
    return line.count > 200 ? String(line.prefix(200)) + "…" : line
  }
}
