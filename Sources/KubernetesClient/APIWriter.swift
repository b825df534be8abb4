import CNIKit

/// What a create came to: made now, or there already (another node's agent made it first;
/// every agent may try, so 409 AlreadyExists is success, not an error).
public enum CreateOutcome: Equatable, Sendable {
  case created
  case alreadyExists
}

/// The few writes the agent makes (the Ingress side of issue 14): create an object, replace
/// an object's spec by a merge patch, and merge-patch an object's `status` subresource.
/// `HTTPTransport` sends them with the same TLS and credentials as its lists and watches;
/// tests give canned answers.
public protocol APIWriter: Sendable {
  func create(_ resource: APIResource, namespace: String, object: JSONValue)
    async throws(APIError) -> CreateOutcome

  /// A JSON merge patch (RFC 7386) of the object, or of its `status` subresource.
  func mergePatch(
    _ resource: APIResource, namespace: String, name: String, patch: JSONValue, status: Bool
  ) async throws(APIError)
}

extension APIResource {
  /// An object's path (`status` adds the subresource); the collection's path without a name.
  public func objectPath(namespace: String, name: String?, status: Bool = false) -> String {
    let base = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
    var path = namespace.isEmpty ? "\(base)/\(plural)" : "\(base)/namespaces/\(namespace)/\(plural)"
    if let name { path += "/\(name)" }
    if status { path += "/status" }
    return path
  }

  public static let services = APIResource(
    group: "", version: "v1", plural: "services", kind: "Service")
  public static let ingresses = APIResource(
    group: "networking.k8s.io", version: "v1", plural: "ingresses", kind: "Ingress")
}
