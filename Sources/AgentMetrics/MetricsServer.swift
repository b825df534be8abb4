import Dispatch
import Hummingbird
import Logging
import ServiceLifecycle

/// GET /metrics on --prometheus-serve-addr (TCP, plain HTTP, as Cilium's agent on :9962).
/// Each scrape samples the agent (`agentSample`, async: counts the agent holds) and the
/// datapath (`reader`, blocking map reads, done on a queue of its own so that a scrape never
/// holds up the agent's tasks), then renders. Scrapes are served one at a time.
public struct MetricsServer: Service {
  let address: MetricsAddress
  let metrics: AgentMetrics
  let reader: DatapathReader
  let agentSample: @Sendable () async -> AgentSample
  let logger: Logger

  /// The queue the map reads run on: serial, so two scrapes never walk the maps at once.
  private static let readQueue = DispatchQueue(label: "junction.metrics.datapath")

  public init(
    address: MetricsAddress, metrics: AgentMetrics, reader: DatapathReader,
    agentSample: @escaping @Sendable () async -> AgentSample, logger: Logger
  ) {
    self.address = address
    self.metrics = metrics
    self.reader = reader
    self.agentSample = agentSample
    self.logger = logger
  }

  public func run() async throws {
    let router = Router()
    let metrics = self.metrics
    let reader = self.reader
    let agentSample = self.agentSample
    router.get("metrics") { _, _ -> Response in
      let agent = await agentSample()
      let bytes = await withCheckedContinuation { continuation in
        Self.readQueue.async {
          continuation.resume(returning: metrics.render(agent: agent, datapath: reader.read()))
        }
      }
      var headers = HTTPFields()
      headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
      return Response(
        status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
    var serverLogger = logger
    serverLogger.logLevel = max(logger.logLevel, .notice)
    let logger = self.logger
    let address = self.address
    let app = Application(
      router: router,
      configuration: ApplicationConfiguration(
        address: .hostname(address.host, port: address.port), serverName: nil),
      onServerRunning: { _ in
        logger.info("serving metrics", metadata: ["address": "\(address)", "path": "/metrics"])
      },
      logger: serverLogger)
    do {
      try await app.run()
    } catch {
      // Said apart from the API socket's failures (whose "in use" means another agent).
      let reason = "\(error)".replacing("Address already in use", with: "in use")
      throw MetricsServerFailure(description: "cannot serve /metrics on \(address): \(reason)")
    }
  }
}

public struct MetricsServerFailure: Error, CustomStringConvertible {
  public var description: String
}
