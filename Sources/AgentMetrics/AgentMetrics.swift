import AgentCore
import CoreMetrics
import Prometheus
import Synchronization

/// The agent's Prometheus metrics: their names and help texts (README "Metrics"), the
/// histograms the agent records into as things happen, and the datapath and agent values
/// set from a sample at each scrape.
///
/// Names follow Cilium's with a `junction_` prefix; network programming latency keeps
/// kube-proxy's name so that its dashboards work unchanged.
public final class AgentMetrics: Sendable {
  /// The agent's one set, which its hooks (API, service programming, the Kubernetes
  /// follower) record into whether or not /metrics is served: recording is a few atomic
  /// adds, and nothing else reads it then.
  public static let shared = AgentMetrics()

  public let registry: PrometheusCollectorRegistry
  private let scrape = Mutex(ScrapeState())

  private struct ScrapeState {
    var drops = CounterDeltas()
    var dropBytes = CounterDeltas()
    var forwarded = CounterDeltas()
    var forwardedBytes = CounterDeltas()
    var flowsProcessed = CounterDeltas()
    var flowsLost = CounterDeltas()
    var relists = CounterDeltas()
    var conntrackSwept = CounterDeltas()
  }

  public init() {
    registry = PrometheusCollectorRegistry()
    // The families that may have no series yet are still described from the start.
    _ = registry.makeCounter(
      descriptor: Self.descriptor(Name.flowEventsProcessed, Help.flowEventsProcessed), labels: [])
  }

  // MARK: - Names

  public enum Name {
    public static let dropCount = "junction_drop_count_total"
    public static let dropBytes = "junction_drop_bytes_total"
    public static let forwardCount = "junction_forward_count_total"
    public static let forwardBytes = "junction_forward_bytes_total"
    public static let services = "junction_services"
    public static let serviceFrontends = "junction_service_frontends"
    public static let serviceBackends = "junction_service_backends"
    public static let endpoints = "junction_endpoints"
    public static let mapPressure = "junction_bpf_map_pressure"
    public static let snatPortsInUse = "junction_snat_ports_in_use"
    public static let flowEventsProcessed = "junction_flow_events_processed_total"
    public static let flowEventsLost = "junction_flow_events_lost_total"
    public static let apiDuration = "junction_agent_api_process_time_seconds"
    public static let datapathProgramming = "junction_datapath_programming_duration_seconds"
    public static let networkProgramming = "kubeproxy_network_programming_duration_seconds"
    public static let watchEvents = "junction_k8s_watch_events_total"
    public static let relists = "junction_k8s_relists_total"
    public static let conntrackSwept = "junction_conntrack_swept_total"
  }

  enum Help {
    static let dropCount = "Packets the datapath dropped, by reason and trace point."
    static let dropBytes = "Bytes of the packets the datapath dropped, by reason and trace point."
    static let forwardCount =
      "Packets the endpoint programs passed: egress = sent by a pod, ingress = to a pod."
    static let forwardBytes =
      "Bytes the endpoint programs passed: egress = sent by a pod, ingress = to a pod."
    static let services = "Services (namespace/name) the node serves."
    static let serviceFrontends = "Service frontends (address, port, protocol) programmed."
    static let serviceBackends = "Distinct service backends programmed."
    static let endpoints = "Endpoints (pods) registered with the agent."
    static let mapPressure =
      "Fill ratio of a datapath map: entries / size (snat: ports in use / --snat-port-range)."
    static let snatPortsInUse = "North-south connections holding a SNAT source port."
    static let flowEventsProcessed = "Flow events the agent read from the datapath's ring."
    static let flowEventsLost = "Flow events lost, by where (datapath_ring: the ring was full)."
    static let conntrackSwept =
      "Expired conntrack entries the agent deleted (the maps never evict), by family."
    static let apiDuration = "Time to answer an agent API request, by method, path and code."
    static let datapathProgramming = "Time to write one service change into the datapath maps."
    static let networkProgramming =
      "Time from a Service or EndpointSlice change in the API (its trigger time, else its "
      + "arrival) to the datapath programmed."
    static let watchEvents = "Change events received from Kubernetes watches, by resource."
    static let relists = "Full lists (initial and after a broken watch), by resource."
  }

  /// Seconds: 0.5 ms to 10 s.
  static let requestBuckets: [Double] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  ]
  /// kube-proxy's buckets (0.25 s to 5 min), below them finer ones, since the agent
  /// programs in milliseconds.
  static let networkProgrammingBuckets: [Double] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5] + (1...59).map(Double.init)
    + stride(from: 60.0, through: 115, by: 5) + stride(from: 120.0, through: 300, by: 30)

  // MARK: - Recorded as things happen

  public func observeAPIRequest(route: APIRoute, method: String, code: Int, seconds: Double) {
    registry.makeValueHistogram(
      descriptor: Self.descriptor(Name.apiDuration, Help.apiDuration),
      labels: [
        ("method", method), ("path", MetricsModel.routeLabel(route)), ("return_code", "\(code)"),
      ], buckets: Self.requestBuckets
    ).record(seconds)
  }

  public func observeDatapathProgramming(seconds: Double) {
    registry.makeValueHistogram(
      descriptor: Self.descriptor(Name.datapathProgramming, Help.datapathProgramming), labels: [],
      buckets: Self.requestBuckets
    ).record(seconds)
  }

  public func observeNetworkProgramming(seconds: Double) {
    registry.makeValueHistogram(
      descriptor: Self.descriptor(Name.networkProgramming, Help.networkProgramming),
      labels: [("ip_family", "IPv4")], buckets: Self.networkProgrammingBuckets
    ).record(seconds)
  }

  public func countWatchEvents(resource: String, _ count: Int) {
    guard count > 0 else { return }
    registry.makeCounter(
      descriptor: Self.descriptor(Name.watchEvents, Help.watchEvents),
      labels: [("resource", resource)]
    ).increment(by: Int64(count))
  }

  // MARK: - Set at each scrape

  /// Sets the sampled values and renders every metric in Prometheus' text format (0.0.4).
  public func render(agent: AgentSample, datapath: DatapathSample) -> [UInt8] {
    scrape.withLock { state in
      apply(agent: agent, datapath: datapath, &state)
      var buffer: [UInt8] = []
      buffer.reserveCapacity(16 << 10)
      registry.emit(into: &buffer)
      return buffer
    }
  }

  private func apply(agent: AgentSample, datapath: DatapathSample, _ state: inout ScrapeState) {
    let drops = MetricsModel.drops(datapath.drops)
    let labels = ["reason", "direction"]
    add(Name.dropCount, Help.dropCount, labels, state.drops.increments(drops.packets))
    add(Name.dropBytes, Help.dropBytes, labels, state.dropBytes.increments(drops.bytes))
    let forwarded = MetricsModel.forwarded(datapath.forwarded)
    add(
      Name.forwardCount, Help.forwardCount, ["direction"],
      state.forwarded.increments(forwarded.packets))
    add(
      Name.forwardBytes, Help.forwardBytes, ["direction"],
      state.forwardedBytes.increments(forwarded.bytes))
    add(
      Name.flowEventsProcessed, Help.flowEventsProcessed, [],
      state.flowsProcessed.increments([
        CounterReading(labels: [], value: agent.flowEventsProcessed)
      ]))
    add(
      Name.conntrackSwept, Help.conntrackSwept, ["family"],
      state.conntrackSwept.increments(
        agent.conntrackSwept.map { CounterReading(labels: [$0.key], value: $0.value) }))
    add(
      Name.flowEventsLost, Help.flowEventsLost, ["source"],
      state.flowsLost.increments([
        CounterReading(labels: ["datapath_ring"], value: datapath.flowEventsLost)
      ]))
    add(
      Name.relists, Help.relists, ["resource"],
      state.relists.increments(
        agent.relists.map { CounterReading(labels: [$0.key], value: UInt64(max(0, $0.value))) }))

    gauge(Name.services, Help.services, Double(agent.services))
    gauge(Name.serviceFrontends, Help.serviceFrontends, Double(agent.frontends))
    gauge(Name.serviceBackends, Help.serviceBackends, Double(agent.backends))
    gauge(Name.endpoints, Help.endpoints, Double(agent.endpoints))
    gauge(Name.snatPortsInUse, Help.snatPortsInUse, Double(datapath.snat.entries))
    for (map, usage) in [
      ("jnc_ct4", datapath.conntrack), ("jnc_lb4_aff", datapath.affinity), ("snat", datapath.snat),
    ] {
      gauge(Name.mapPressure, Help.mapPressure, usage.pressure, labels: [("map_name", map)])
    }
  }

  private func add(
    _ name: String, _ help: String, _ labelNames: [String],
    _ increments: [(labels: [String], by: UInt64)]
  ) {
    for increment in increments {
      let counter = registry.makeCounter(
        descriptor: Self.descriptor(name, help), labels: Array(zip(labelNames, increment.labels)))
      if increment.by > 0 { counter.increment(by: Int64(clamping: increment.by)) }
    }
  }

  private func gauge(
    _ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []
  ) {
    registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels).set(to: value)
  }

  /// A whole name (no namespace or unit appended) with its help text.
  private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
  }

  /// Routes swift-metrics (e.g. a library's counters) into the same registry, so they are
  /// served on /metrics too. Once per process: the agent calls it when it serves /metrics.
  public func bootstrapSwiftMetrics() {
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
  }
}
