import AgentCore
import DatapathABI

/// What one scrape reads from the datapath's maps (pins under --bpf-fs), before it becomes
/// metric values. Counters are the kernel's absolute values (summed over the CPUs).
public struct DatapathSample: Equatable, Sendable {
  public var drops: [DatapathNames.RawDrop] = []
  /// jnc_ep_counters summed over every endpoint: packets the pods sent (from-endpoint) and
  /// received (to-endpoint).
  public var forwarded = ForwardedCounters()
  public var conntrack = MapUsage()
  public var affinity = MapUsage()
  /// North-south connections holding a SNAT source port (REPLY entries with
  /// JUNCTION_CT_F_SNAT); `max` is the size of --snat-port-range.
  public var snat = MapUsage()
  /// jnc_ev_lost: flow events the datapath's ring could not take.
  public var flowEventsLost: UInt64 = 0

  public init() {}
}

public struct ForwardedCounters: Equatable, Sendable {
  public var fromEndpointPackets: UInt64 = 0
  public var fromEndpointBytes: UInt64 = 0
  public var toEndpointPackets: UInt64 = 0
  public var toEndpointBytes: UInt64 = 0

  public init() {}
}

public struct MapUsage: Equatable, Sendable {
  public var entries: Int
  public var max: Int

  public init(entries: Int = 0, max: Int = 0) {
    self.entries = entries
    self.max = max
  }

  /// entries ÷ max, Cilium's bpf_map_pressure; 0 for a map of no size (not loaded).
  public var pressure: Double { max > 0 ? Double(entries) / Double(max) : 0 }
}

/// What the agent itself knows at scrape time (no map reads).
public struct AgentSample: Equatable, Sendable {
  /// Distinct Services (namespace/name), their frontends, and distinct backends.
  public var services = 0
  public var frontends = 0
  public var backends = 0
  public var endpoints = 0
  /// Flows the agent's consumer took from the ring (FlowBuffer.total).
  public var flowEventsProcessed: UInt64 = 0
  /// Relists per followed resource (healthz `cluster.resources[].relists`); empty standalone.
  public var relists: [String: Int] = [:]
  /// Expired conntrack entries the agent's sweep deleted since it started, by family
  /// ("ipv4", "ipv6").
  public var conntrackSwept: [String: UInt64] = [:]

  public init() {}
}

/// One labelled series of a counter, as read (an absolute value).
public struct CounterReading: Hashable, Sendable {
  public var labels: [String]
  public var value: UInt64

  public init(labels: [String], value: UInt64) {
    self.labels = labels
    self.value = value
  }
}

public enum MetricsModel {
  /// Drop counters as series labelled [reason, direction] (the words of `junctionctl bpf
  /// drops`): packets and bytes. A key met twice by a restarted map walk counts once.
  public static func drops(_ raw: [DatapathNames.RawDrop]) -> (
    packets: [CounterReading], bytes: [CounterReading]
  ) {
    let dump = DatapathNames.dropDump(raw)
    return (
      dump.drops.map { CounterReading(labels: [$0.reason, $0.direction], value: $0.packets) },
      dump.drops.map { CounterReading(labels: [$0.reason, $0.direction], value: $0.bytes) }
    )
  }

  /// Forwarded packets and bytes labelled [direction], Cilium's EGRESS/INGRESS seen from
  /// the pod: egress = from-endpoint, ingress = to-endpoint.
  public static func forwarded(_ counters: ForwardedCounters) -> (
    packets: [CounterReading], bytes: [CounterReading]
  ) {
    (
      [
        CounterReading(labels: ["egress"], value: counters.fromEndpointPackets),
        CounterReading(labels: ["ingress"], value: counters.toEndpointPackets),
      ],
      [
        CounterReading(labels: ["egress"], value: counters.fromEndpointBytes),
        CounterReading(labels: ["ingress"], value: counters.toEndpointBytes),
      ]
    )
  }

  /// The route label of an API request: the path's template, never an endpoint id (which
  /// would make one series per pod).
  public static func routeLabel(_ route: APIRoute) -> String {
    switch route {
    case .health: "/v1/healthz"
    case .config: "/v1/config"
    case .listEndpoints: "/v1/endpoints"
    case .getEndpoint, .putEndpoint, .deleteEndpoint: "/v1/endpoints/{id}"
    case .changeResources(let delete): delete ? "/v1/resources/delete" : "/v1/resources/apply"
    case .listServices: "/v1/services"
    case .listRedirectPolicies: "/v1/lrp"
    case .loadBalancerMaps: "/v1/bpf/lb"
    case .dropCounters: "/v1/bpf/drops"
    case .flows: "/v1/flows"
    case .envoyConfigs: "/v1/envoy/configs"
    case .badEndpointID: "/v1/endpoints/{id}"
    case .methodNotAllowed: "method-not-allowed"
    case .notFound: "not-found"
    }
  }

  /// SNAT source ports in use: REPLY entries of the conntrack map marked SNAT (one per
  /// north-south connection through SNAT, keyed by the port it left with).
  public static func isSNATPort(direction: UInt8, flags: UInt16) -> Bool {
    direction == UInt8(JUNCTION_CT_REPLY.rawValue) && flags & UInt16(JUNCTION_CT_F_SNAT) != 0
  }
}

/// Turns absolute counter readings into increments of a Prometheus counter, which can only
/// go up: the first reading of a series is its whole value, later ones the growth since the
/// reading before. A reading below the last one (the map was recreated, its counts reset)
/// counts from zero again, as Prometheus' rate() treats a counter reset.
public struct CounterDeltas: Sendable {
  private var last: [[String]: UInt64] = [:]

  public init() {}

  public mutating func increments(_ readings: [CounterReading]) -> [(
    labels: [String], by: UInt64
  )] {
    readings.map { reading in
      let previous = last[reading.labels] ?? 0
      last[reading.labels] = reading.value
      return (reading.labels, reading.value >= previous ? reading.value - previous : reading.value)
    }
  }
}

/// `--prometheus-serve-addr`: "HOST:PORT", or ":PORT" for every address (Cilium's ":9962").
public struct MetricsAddress: Equatable, Sendable, CustomStringConvertible {
  public var host: String
  public var port: Int

  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  public var description: String { "\(host):\(port)" }

  /// The address, or why not (one line).
  public static func parse(_ text: String) -> Result<MetricsAddress, AddressProblem> {
    guard let colon = text.lastIndex(of: ":") else {
      return .failure(AddressProblem("\"\(text)\" is not HOST:PORT (e.g. :9962, 127.0.0.1:9962)"))
    }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
      return .failure(AddressProblem("the port of \"\(text)\" must be 1 to 65535"))
    }
    return .success(MetricsAddress(host: host.isEmpty ? "0.0.0.0" : host, port: port))
  }

  public struct AddressProblem: Error, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
  }
}
