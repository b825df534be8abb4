import AgentAPI
import AgentCore
import FlowPipeline
import Logging
import ServiceCore

/// What the agent needs from the BPF datapath, and nothing BPF-specific: the pins the CNI
/// plugin attaches from, per-endpoint counters, and attach state. `makeDatapath` (in
/// BPFDatapath.swift) builds the real one over BPFKit; everything else in the agent sees
/// only this protocol.
protocol Datapath: Sendable {
  /// True when the programs and maps are loaded and pinned.
  var isLoaded: Bool { get }
  /// Absolute pin path of the from-endpoint program (tc ingress on the host veth).
  var fromEndpointPin: String { get }
  /// Absolute pin path of the to-endpoint program (tc egress on the host veth).
  var toEndpointPin: String { get }
  /// The hook the endpoint programs attach to ("clsact" or "tcx"), as the plugin is told.
  var tcHookName: String { get }
  /// The endpoint's packet and byte counters; nil when unknown or not loaded.
  func counters(hostIfindex: Int) -> EndpointCounters?
  /// Whether both endpoint programs are attached on the interface now.
  func isAttached(hostIfindex: Int) -> Bool
  /// Attaches the endpoint programs on the interface again if they are missing (idempotent).
  func reattach(hostIfindex: Int) throws
  /// Drops per-endpoint datapath state (counters) of a deregistered endpoint.
  func forget(hostIfindex: Int)
  /// Deletes the conntrack and affinity entries of a deregistered endpoint's addresses
  /// (`FlowPurge`), best effort; returns how many went.
  @discardableResult
  func forgetFlows(ips: [String]) -> Int
  /// The host ifindexes the counter map holds entries for (registered or not).
  func counterKeys() throws -> [Int]
  /// Deletes the expired conntrack entries (`ConntrackExpiry`; the maps never evict).
  func sweepConntrack() -> ConntrackSweepResult
  /// After every endpoint has the new programs: the last copy from ABI 4's LRU conntrack
  /// maps, whose pins then go (`ConntrackMaps`); nothing when there were none.
  func finishConntrackMigration()
  /// Writes the service maps for `diff`, in its order (no frontend resolves to nothing).
  func programServices(_ diff: DesiredStateDiff) throws
  /// The service maps as the kernel holds them now (GET /v1/bpf/lb).
  func dumpLoadBalancer() throws -> LBMapDump
  /// The drop counters (jnc_drops) summed over the CPUs, unnamed (GET /v1/bpf/drops).
  func dropCounters() throws -> [DatapathNames.RawDrop]
  /// Writes the flow event level into jnc_mon_cfg.
  func setMonitorLevel(_ level: FlowSettings.Level) throws
  /// Flow events the datapath's ring could not take (jnc_ev_lost, summed over the CPUs).
  func flowEventsLost() -> UInt64
  /// The reader of the flow event ring feeding `buffer`; nil without a datapath.
  func makeFlowConsumer(buffer: FlowBuffer, logger: Logger) throws -> FlowConsumer?
  /// Writes the NodePort and SNAT port ranges into jnc_node_cfg (its other fields kept).
  func configureNorthSouth(_ settings: NorthSouthSettings) throws
}

/// A datapath with nothing loaded: the API and the state work, counters and attach state
/// are absent. Used until the BPF datapath is wired in, and where BPF is unavailable.
struct UnloadedDatapath: Datapath {
  let bpfFS: String

  var isLoaded: Bool { false }
  var fromEndpointPin: String { "\(bpfFS)/from-endpoint" }
  var toEndpointPin: String { "\(bpfFS)/to-endpoint" }
  func counters(hostIfindex: Int) -> EndpointCounters? { nil }
  func isAttached(hostIfindex: Int) -> Bool { false }
  func reattach(hostIfindex: Int) throws {}
  func forget(hostIfindex: Int) {}
  func forgetFlows(ips: [String]) -> Int { 0 }
  func counterKeys() throws -> [Int] { [] }
  func sweepConntrack() -> ConntrackSweepResult { ConntrackSweepResult() }
  func finishConntrackMigration() {}
  func programServices(_ diff: DesiredStateDiff) throws {}
  func dumpLoadBalancer() throws -> LBMapDump { .empty }
  func dropCounters() throws -> [DatapathNames.RawDrop] { [] }
  func setMonitorLevel(_ level: FlowSettings.Level) throws {}
  func flowEventsLost() -> UInt64 { 0 }
  func makeFlowConsumer(buffer: FlowBuffer, logger: Logger) throws -> FlowConsumer? { nil }
  func configureNorthSouth(_ settings: NorthSouthSettings) throws {}
}

extension Datapath {
  var tcHookName: String { "clsact" }
}
