import Hummingbird
import NIOCore

/// The API's request context: Hummingbird's basic one plus the connection, so that a
/// response announcing `Connection: close` is followed by the close. Hummingbird itself
/// closes only when the request asked for it; after a refused body (413) it would otherwise
/// keep reading the rest of the body and hold the connection until the idle timeout, and a
/// client that writes its whole body before reading would wait that long (issue 16).
struct APIRequestContext: RequestContext {
  var coreContext: CoreRequestContextStorage
  private let channel: any Channel

  init(source: ApplicationRequestContextSource) {
    coreContext = .init(source: source)
    channel = source.channel
  }

  /// Closes the connection as soon as the response being prepared has been written (the
  /// connection state handler's quiesce: it closes after the response's end, flushed).
  /// Unread request bytes are dropped with the socket: the client's next write fails, and
  /// it reads the answer already in its receive queue.
  func closeAfterResponse() {
    channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
  }
}
