import AgentAPI
import AgentCore
import ArgumentParser
import FlowPipeline
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

// observe: the agent's flows (GET /v1/flows), with Hubble's flags and compact lines.

extension JunctionCTL {
  struct Observe: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the datapath's flows: new connections, FIN/RST, drops, translations.",
      discussion: """
        What the agent kept of the datapath's flow events (its last --flow-buffer-size \
        flows, at its --monitor-level), as `hubble observe` shows them. Each line:

          TIME: SOURCE -> DESTINATION TYPE VERDICT (SUMMARY)

        TIME is UTC. A side is namespace/pod:port for a pod of this node, \
        namespace/service:port for a Service address, else ip:port ([ip]:port for IPv6). \
        A connection to a \
        Service shows the backend pod it went to, followed by "(service NS/NAME IP:PORT)": \
        the Service and the address dialled, then how it was reached when it was not the \
        usual way: "SNAT IP:PORT" (north-south, from the node's address and port), "DSR" \
        (north-south, direct server return), "local backend" (north-south to a pod of this \
        node), "local redirect" \
        (a Local Redirect Policy). The arrow is <- for a reply (the client stays \
        on the left) and <> when the datapath does not know. TYPE is the trace point \
        (from-endpoint: leaving a pod; to-endpoint: entering it; from-netdev, to-netdev, \
        sock; to-proxy: handed to the node's L7 proxy) or, for a drop, its reason. VERDICT \
        is FORWARDED, DROPPED, TRANSLATED (socket LB) or REDIRECTED (to-proxy). The summary \
        has the TCP flags.

        Filters combine (all must hold). --pod, --from-pod, --to-pod take \
        [NAMESPACE/]POD-PREFIX (no namespace: "default"; "NS/" any pod of NS); --ip and \
        its kin take an IPv4 or IPv6 address or CIDR; --to-service and --from-service NAMESPACE/NAME. \
        Without --follow the last 20 matching flows are printed (--last N); with --follow \
        new ones are printed as they come (after the last N when --last is given) until \
        interrupted. A reader too slow for the flows gets "EVENTS LOST" lines, as do flows \
        the datapath could not queue.
        -o json prints the lines as the API returns them (GET /v1/flows, NDJSON: \
        {"flow": {...}} per flow, {"lostEvents": {...}} for lost ones).

        Examples:
          junctionctl observe
          junctionctl observe --to-pod default/web -f
          junctionctl observe --verdict DROPPED --last 100
          junctionctl observe --to-service default/web --protocol tcp -o json
        """)

    @ParentCommand var root: JunctionCTL

    @Option(help: ArgumentHelp("Flows from this pod.", valueName: "[ns/]pod"))
    var fromPod: String?
    @Option(help: ArgumentHelp("Flows to this pod.", valueName: "[ns/]pod"))
    var toPod: String?
    @Option(help: ArgumentHelp("Flows from or to this pod.", valueName: "[ns/]pod"))
    var pod: String?
    @Option(
      name: [.short, .long], help: ArgumentHelp("Flows from or to pods of it.", valueName: "ns"))
    var namespace: String?
    @Option(help: ArgumentHelp("Flows from this address or CIDR.", valueName: "ip"))
    var fromIP: String?
    @Option(help: ArgumentHelp("Flows to this address or CIDR.", valueName: "ip"))
    var toIP: String?
    @Option(help: ArgumentHelp("Flows from or to this address or CIDR.", valueName: "ip"))
    var ip: String?
    @Option(help: ArgumentHelp("Flows from or to this port.", valueName: "port"))
    var port: Int?
    @Option(help: ArgumentHelp("Flows to this port (or to a Service on it).", valueName: "port"))
    var toPort: Int?
    @Option(name: .customLong("protocol"), help: ArgumentHelp("tcp or udp.", valueName: "proto"))
    var proto: String?
    @Option(help: ArgumentHelp("FORWARDED, DROPPED or TRANSLATED.", valueName: "verdict"))
    var verdict: String?
    @Option(
      name: [.short, .long],
      help: ArgumentHelp(
        "trace, drop, sock or l7 (HTTP through the node's Envoy).", valueName: "type"))
    var type: String?
    @Option(help: ArgumentHelp("Connections to this Service.", valueName: "ns/name"))
    var toService: String?
    @Option(help: ArgumentHelp("Replies from this Service.", valueName: "ns/name"))
    var fromService: String?
    @Option(
      help: ArgumentHelp("Print the last N matching flows (default 20; 0 with -f).", valueName: "n")
    )
    var last: Int?
    @Option(
      help: ArgumentHelp(
        "Only flows since then: RFC 3339 (2026-12-06T03:08:02Z) or an age (30s, 5m, 2h).",
        valueName: "time"))
    var since: String?
    @Flag(name: [.short, .long], help: "Keep printing new flows until interrupted.")
    var follow = false
    @Option(name: .shortAndLong, help: ArgumentHelp("compact or json.", valueName: "format"))
    var output: Format = .compact

    enum Format: String, ExpressibleByArgument, CaseIterable {
      case compact, json
    }

    func query() throws -> FlowQuery {
      var query = FlowQuery()
      query.filter.fromPod = fromPod
      query.filter.toPod = toPod
      query.filter.pod = pod
      query.filter.namespace = namespace
      query.filter.fromIP = fromIP
      query.filter.toIP = toIP
      query.filter.ip = ip
      query.filter.port = port
      query.filter.toPort = toPort
      query.filter.proto = proto
      query.filter.verdict = verdict
      query.filter.type = type
      query.filter.toService = toService
      query.filter.fromService = fromService
      query.follow = follow
      query.last = last ?? (follow ? 0 : 20)
      if let since {
        guard let time = Self.time(since, now: Self.now()) else {
          throw ValidationError("--since \"\(since)\" is not RFC 3339 UTC or an age like 5m")
        }
        query.since = time
      }
      if let problem = query.filter.problem() { throw ValidationError(problem) }
      return query
    }

    func validate() throws { _ = try query() }

    func run() throws {
      let query = try query()
      // Lines go through stdio's buffer, not flushed one by one (a write per line held a
      // follower back at tens of thousands of flows a second); with -f a flusher empties
      // it every 100 ms, well within the promise of a new flow in 1 s.
      let flusher = follow ? Flusher.start(every: .milliseconds(100)) : nil
      defer { flusher?.stop() }
      let decoder = JSONDecoder()
      try Agent.run(socket: root.socket) { client in
        try client.streamLines("/v1/flows?" + query.queryString) { line in
          if output == .json {
            print(String(decoding: line, as: UTF8.self))
            return true
          }
          guard let text = render(line, decoder: decoder) else { return true }
          print(text)
          return true
        }
      }
      fflush(nil)
    }

    private func render(_ line: [UInt8], decoder: JSONDecoder) -> String? {
      guard let decoded = try? decoder.decode(FlowsLine.self, from: Data(line)) else {
        return nil
      }
      if let flow = decoded.flow { return FlowCompact.line(flow) }
      if let lost = decoded.lostEvents {
        return
          "EVENTS LOST: \(lost.source == "follower" ? "OBSERVER" : "DATAPATH_RING") \(lost.count)"
      }
      return nil
    }

    /// Nanoseconds since the epoch, now.
    static func now() -> Int64 {
      var real = timespec()
      clock_gettime(CLOCK_REALTIME, &real)
      return Int64(real.tv_sec) * 1_000_000_000 + Int64(real.tv_nsec)
    }

    /// RFC 3339 UTC, or an age ("90s", "5m", "2h") before `now`.
    static func time(_ text: String, now: Int64) -> Int64? {
      if let time = Timestamp.parse(text) { return time }
      guard let unit = text.last, let amount = Int64(text.dropLast()), amount >= 0 else {
        return nil
      }
      let seconds: Int64
      switch unit {
      case "s": seconds = amount
      case "m": seconds = amount * 60
      case "h": seconds = amount * 3600
      default: return nil
      }
      return now - seconds * 1_000_000_000
    }
  }
}

/// Flushes stdout every `interval` on another thread until stopped: stdio locks the stream,
/// so lines written on the main thread are never cut.
private final class Flusher: Sendable {
  private let running = Mutex(true)

  static func start(every interval: Duration) -> Flusher {
    let flusher = Flusher()
    // The main thread blocks in recv; the flusher runs on the concurrency pool.
    Task.detached {
      while flusher.running.withLock({ $0 }) {
        try? await Task.sleep(for: interval)
        fflush(nil)
      }
    }
    return flusher
  }

  func stop() { running.withLock { $0 = false } }
}
