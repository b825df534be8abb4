import AgentAPI
import ArgumentParser
import FoundationEssentials

#if canImport(Glibc)
  import Glibc
#endif

/// Reaching the agent, and the CLI's one rule for errors: one line on stderr, exit status 1.
enum Agent {
  static let defaultSocket = "/run/junction/junction.sock"

  /// --socket, else $JUNCTION_SOCKET (when set and not empty), else the default.
  static func socketPath(flag: String?, environment: [String: String]) -> String {
    if let flag, !flag.isEmpty { return flag }
    if let fromEnvironment = environment["JUNCTION_SOCKET"], !fromEnvironment.isEmpty {
      return fromEnvironment
    }
    return defaultSocket
  }

  /// A failure of the CLI's own (not of the client), printed as it is.
  struct Failure: Error {
    var message: String
    init(_ message: String) { self.message = message }
  }

  /// Runs `body` with a client for the chosen socket; any error becomes
  /// "junctionctl: <message>" on stderr and exit status 1.
  static func run(socket flag: String?, _ body: (AgentClient) throws -> Void) throws {
    let client = AgentClient(
      socketPath: socketPath(flag: flag, environment: ProcessInfo.processInfo.environment))
    do {
      try body(client)
    } catch let failure as AgentClient.Failure {
      try fail(failure.description)
    } catch let failure as Failure {
      try fail(failure.message)
    } catch {
      try fail("\(error)")
    }
  }

  /// GET /v1/healthz, keeping the report when the agent answers it with a non-2xx status
  /// (a degraded agent still says what is wrong).
  static func health(_ client: AgentClient) throws(AgentClient.Failure) -> Health {
    let response = try client.request("GET", "/v1/healthz")
    if let health = try? JSONDecoder().decode(Health.self, from: Data(response.body)) {
      return health
    }
    guard response.isSuccess else {
      throw .api(status: response.status, message: response.errorMessage)
    }
    throw .badResponse("cannot decode Health from the answer to GET /v1/healthz")
  }

  private static func fail(_ message: String) throws -> Never {
    let line = "junctionctl: " + message.split(whereSeparator: \.isNewline).joined(separator: " ")
    writeStandardError(line + "\n")
    throw ExitCode.failure
  }

  static func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
      if written < 0 && errno == EINTR { continue }
      if written <= 0 { return }
      bytes = bytes.dropFirst(written)
    }
  }
}
