import AgentMetrics
import Logging

/// /metrics wired to this agent's parts (AgentMetrics has the metrics; this file only says
/// where the agent's own numbers come from).
extension AgentRuntime {
  /// The metrics server for `--prometheus-serve-addr`; nil when it is not given.
  func metricsServer() -> MetricsServer? {
    guard let metricsAddress else { return nil }
    let metrics = AgentMetrics.shared
    metrics.bootstrapSwiftMetrics()
    let range = settings.northSouth.snatPortRange
    let registry = self.registry
    let services = self.services
    let cluster = self.cluster
    let flows = self.flows
    let conntrackSwept = self.conntrackSwept
    return MetricsServer(
      address: metricsAddress, metrics: metrics,
      reader: DatapathReader(
        bpfFS: settings.bpfFS, snatPorts: Int(range.upper) - Int(range.lower) + 1),
      agentSample: {
        var sample = AgentSample()
        let counts = await services.metricCounts()
        sample.services = counts.services
        sample.frontends = counts.frontends
        sample.backends = counts.backends
        sample.endpoints = await registry.count
        sample.flowEventsProcessed = flows.total
        sample.conntrackSwept = conntrackSwept.byFamily
        if let cluster {
          for resource in await cluster.status().resources {
            sample.relists[resource.resource] = resource.relists
          }
        }
        return sample
      }, logger: Logger(label: "metrics"))
  }
}

extension Duration {
  /// The duration in seconds, as Prometheus records durations.
  var metricSeconds: Double {
    let (seconds, attoseconds) = components
    return Double(seconds) + Double(attoseconds) / 1e18
  }
}
