import CNIKit

/// The requests an informer makes; `HTTPTransport` sends them, tests give canned answers.
public protocol APITransport: Sendable {
  func list(
    _ resource: APIResource, limit: Int, continueToken: String?, resourceVersion: String?
  ) async throws(APIError) -> ListPage

  /// The events of one WATCH until the server ends it. The stream finishes cleanly on the
  /// server's EOF and throws an `APIError` when the connection breaks.
  func watch(_ resource: APIResource, resourceVersion: String, timeoutSeconds: Int)
    async throws(APIError) -> AsyncThrowingStream<WatchEvent, any Error>
}
