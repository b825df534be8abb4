import CNIKit

/// Why a request to the API server failed, each with the one line the agent logs and
/// `junctionctl status` shows. None of them stops the agent: it keeps what it has and retries.
public enum APIError: Error, Equatable, Sendable, CustomStringConvertible {
  /// No connection (refused, no route, timeout, DNS).
  case unreachable(server: String, detail: String)
  /// The TLS handshake failed: the server's certificate is not signed by the configured CA,
  /// or names another host.
  case untrustedCertificate(server: String, detail: String)
  /// 401: the token (or client certificate) was refused.
  case unauthorized(detail: String)
  /// 403: RBAC does not grant `verb` on `resource`.
  case forbidden(verb: String, resource: String, detail: String)
  /// 404 on a collection: the resource (a CRD) is not installed.
  case notInstalled(resource: String)
  /// 410 Gone / Expired (as a status or an ERROR event): the version is compacted; relist.
  case expired(detail: String)
  /// Any other status.
  case status(code: Int, detail: String)
  /// A response that is not what the API sends.
  case malformed(detail: String)

  public var description: String {
    switch self {
    case .unreachable(let server, let detail):
      "API server \(server) unreachable: \(detail)"
    case .untrustedCertificate(let server, let detail):
      "API server \(server): certificate not trusted (check the CA): \(detail)"
    case .unauthorized(let detail):
      "401 Unauthorized: the API server refused the credentials (token expired or wrong?): \(detail)"
    case .forbidden(let verb, let resource, _):
      "403 Forbidden: RBAC does not allow \(verb) on \(resource) (add it to the agent's ClusterRole)"
    case .notInstalled(let resource):
      "\(resource) is not installed (404); checked again later"
    case .expired(let detail):
      "410 Gone: resource version too old (\(detail)); relisting"
    case .status(let code, let detail):
      "HTTP \(code): \(detail)"
    case .malformed(let detail):
      "malformed response: \(detail)"
    }
  }

  /// A failure the next attempt should start over with a LIST for (not just a re-watch).
  public var needsRelist: Bool {
    switch self {
    case .expired: true
    // 504 "Too large resource version": client-go relists too.
    case .status(let code, _): code == 504
    default: false
    }
  }

  /// The error a non-2xx response means, from its status and its `Status` body.
  public static func from(
    statusCode: Int, body: [UInt8], verb: String, resource: APIResource
  ) -> APIError {
    let status = try? JSONReader.parse(body)
    let message =
      status?["message"]?.stringValue ?? String(decoding: body.prefix(200), as: UTF8.self)
    switch statusCode {
    case 401: return .unauthorized(detail: message)
    case 403: return .forbidden(verb: verb, resource: resource.rbacName, detail: message)
    case 404: return .notInstalled(resource: resource.rbacName)
    case 410: return .expired(detail: message)
    default: return .status(code: statusCode, detail: message)
    }
  }

  /// The error an ERROR watch event carries (a `Status` object).
  public static func fromStatus(_ object: JSONValue?, resource: APIResource) -> APIError {
    // Int(exactly:): a code that is not a whole number in Int's range (an API server or a
    // proxy in between may send anything, e.g. 91e99) is no code at all, not a trap.
    let code =
      object?["code"].flatMap { if case .number(let n) = $0 { Int(exactly: n) } else { nil } }
      ?? 500
    let reason = object?["reason"]?.stringValue
    let message = object?["message"]?.stringValue ?? "watch error"
    if code == 410 || reason == "Expired" || reason == "Gone" { return .expired(detail: message) }
    return from(
      statusCode: code, body: object?.serialized() ?? [], verb: "watch", resource: resource)
  }
}
