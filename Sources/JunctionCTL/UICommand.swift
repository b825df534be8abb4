import AgentAPI
import ArgumentParser
import Dispatch
import FoundationEssentials
import Hummingbird
import Logging
import ServiceMap
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

// ui: the service map page. The browser cannot speak to the agent's Unix socket, so this
// command serves the page and, for every refresh, asks the agent for its buffered flows
// (GET /v1/flows, not following) and returns them aggregated (ServiceMap).
//
// The page polls (every ServiceMapPage.refreshMilliseconds) rather than streaming the
// follow answer as server-sent events: the map is an aggregate over everything the agent
// keeps (its last --flow-buffer-size flows), which one non-following answer gives whole,
// so the server holds no state per browser, survives agent restarts without reconnect
// logic, and a headless browser sees a complete picture after one fetch. A flow shows up
// within one refresh; the map does not need the follow stream's 100 ms.

extension JunctionCTL {
  struct UI: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "ui",
      abstract: "Serve the service map page: pods and Services with their flows, live.",
      discussion: """
        Serves a page on http://ADDRESS:PORT/ (default http://127.0.0.1:12000/) with the \
        agent's flows as Hubble UI draws them: pods, Services and other addresses as \
        nodes, and who connected to whom as edges with their flow counts (green: forwarded \
        or translated; red: dropped; orange: some of each), the connection's direction \
        from client to Service to backend. Under it, the newest matching flows as a table. \
        The filters are those of `junctionctl observe` (from-pod, to-pod, pod, namespace, \
        from-ip, to-ip, ip, port, to-port, protocol, verdict, type, to-service, \
        from-service, since) and stay in the page's address, so a filtered map is a link. \
        The page refreshes itself every \(ServiceMap.ServiceMapPage.refreshMilliseconds / 1000) s \
        from GET /api/map?FILTERS (JSON: the graph and the table rows), which this command \
        answers by reading the agent's GET /v1/flows on its socket.

        Only a loopback address is accepted unless --allow-remote is given: the page has \
        no login and shows every flow of the node (pod names, addresses, ports), which the \
        root-only agent socket otherwise keeps to root. To look from another machine, \
        prefer an SSH tunnel (ssh -L 12000:127.0.0.1:12000 NODE).

        Prints the address once it listens (--port 0 picks a free port) and serves until \
        interrupted (SIGINT, SIGTERM).

        Examples:
          junctionctl ui
          junctionctl ui --port 8080
          junctionctl --socket /tmp/node-a/junction.sock ui --port 0
        """)

    @ParentCommand var root: JunctionCTL

    @Option(
      help: ArgumentHelp(
        "The address to listen on: loopback (127.0.0.1, ::1, localhost) unless --allow-remote.",
        valueName: "ip"))
    var address = "127.0.0.1"
    @Option(help: ArgumentHelp("The port to listen on (0: any free one).", valueName: "port"))
    var port = 12000
    @Flag(
      help: "Accept a non-loopback --address: anyone who reaches it sees the node's flows.")
    var allowRemote = false

    func validate() throws {
      guard (0...65535).contains(port) else {
        throw ValidationError("--port \(port) is not a port number (0 to 65535)")
      }
      if !allowRemote && !Self.isLoopback(address) {
        throw ValidationError(
          "--address \(address) is not a loopback address: the page has no login and shows "
            + "every flow of the node; add --allow-remote to serve it there anyway")
      }
    }

    /// 127.0.0.0/8, ::1 and "localhost".
    static func isLoopback(_ address: String) -> Bool {
      if address == "localhost" || address == "::1" || address == "[::1]" { return true }
      let parts = address.split(separator: ".", omittingEmptySubsequences: false)
      return parts.count == 4 && parts[0] == "127"
        && parts.allSatisfy { UInt8($0) != nil }
    }

    func run() throws {
      let socket = Agent.socketPath(
        flag: root.socket, environment: ProcessInfo.processInfo.environment)
      let host = address == "[::1]" ? "::1" : address
      let outcome = Outcome()
      let done = DispatchSemaphore(value: 0)
      // ArgumentParser's synchronous root (main.swift) runs this; the server is async.
      Task {
        do {
          try await Self.serve(host: host, port: port, socket: socket)
        } catch {
          outcome.set("\(error)")
        }
        done.signal()
      }
      done.wait()
      if let failure = outcome.get() {
        try Agent.run(socket: root.socket) { _ in
          throw Agent.Failure("serving on \(address):\(port): \(failure)")
        }
      }
    }

    static func serve(host: String, port: Int, socket: String) async throws {
      let client = AgentClient(socketPath: socket)
      let router = Router()
      router.get("/") { _, _ in
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(
          status: .ok, headers: headers,
          body: ResponseBody(byteBuffer: ByteBuffer(string: ServiceMapPage.html)))
      }
      router.get("/api/map") { request, _ in
        await mapAnswer(query: request.uri.query ?? "", client: client)
      }
      var logger = Logger(label: "junctionctl-ui")
      logger.logLevel = .warning
      let app = Application(
        router: router,
        configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
        onServerRunning: { channel in
          let bound = channel.localAddress?.port ?? port
          let shown = host.contains(":") ? "[\(host)]" : host
          print("Serving the service map on http://\(shown):\(bound)/ (agent socket \(socket))")
          fflush(nil)
        },
        logger: logger)
      try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }

    /// GET /api/map: the snapshot as JSON; 400 for a wrong filter, 502 when the agent does
    /// not answer (the page shows the message and keeps polling).
    static func mapAnswer(query: String, client: AgentClient) async -> Response {
      let request: MapRequest
      do {
        request = try MapRequest.parse(query)
      } catch {
        return json(.badRequest, ["error": error.description])
      }
      do {
        let lines = try await flows(request.agentPath, client: client)
        return json(.ok, MapSnapshot.build(lines, rows: request.rows))
      } catch {
        return json(.badGateway, ["error": "the agent at \(client.socketPath): \(error)"])
      }
    }

    /// The agent's answer, line by line, read on a Dispatch thread: AgentClient blocks
    /// on its socket, which must not hold one of the few threads Swift's tasks run on.
    static func flows(_ path: String, client: AgentClient) async throws -> [FlowsLine] {
      try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
          do {
            var lines: [FlowsLine] = []
            let decoder = JSONDecoder()
            try client.streamLines(path) { line in
              if let decoded = try? decoder.decode(FlowsLine.self, from: Data(line)) {
                lines.append(decoded)
              }
              return true
            }
            continuation.resume(returning: lines)
          } catch {
            continuation.resume(throwing: error)
          }
        }
      }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
      var headers = HTTPFields()
      headers[.contentType] = "application/json"
      headers[.cacheControl] = "no-store"
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
      let bytes = (try? encoder.encode(value)) ?? Data(#"{"error":"cannot encode"}"#.utf8)
      return Response(
        status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
  }
}

/// The server task's failure, handed to the waiting synchronous `run`.
private final class Outcome: Sendable {
  private let failure = Mutex<String?>(nil)

  func set(_ text: String) { failure.withLock { $0 = text } }
  func get() -> String? { failure.withLock { $0 } }
}
