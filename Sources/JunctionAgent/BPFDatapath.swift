import AgentAPI
import AgentCore
import BPFKit
import DatapathABI
import FlowPipeline
import Logging
import NetKit
import ServiceCore
import ServiceDatapath

#if canImport(Glibc)
  import Glibc
#endif

/// Loads (or reuses the pinned) datapath under `bpfFS`; throws a one-line reason when it
/// cannot (the agent then exits 1 with it).
///
/// Restart and upgrade keep traffic flowing: maps are pinned by name and libbpf reuses
/// them, so counters (and, later, conntrack and services) survive; the programs are loaded
/// afresh and their pins replaced, and reconcile re-attaches live endpoints in place
/// (tc's replace), so no packet finds a hook without a program.
///
/// With `devices` (the --devices the agent read at start), the north-south programs
/// (netdev.o) are loaded as well and attached to each of them (`NetdevPrograms`).
func makeDatapath(
  bpfFS: String, objectDirectory: String, mapSizes: MapSizes, devices: [NodeDevice] = [],
  tcHook: TrafficControl.Hook = .clsact, logger: Logger
) throws -> any Datapath {
  // libbpf prints to stderr by default, also on normal paths (querying a link without a
  // clsact): keep its words, in the agent's log format.
  // Its debug chatter (every ELF section on load) only at trace level.
  LibBPF.setLogHandler { level, message in
    logger.log(
      level: level == .debug ? .trace : .debug, "libbpf: \(message)",
      metadata: ["libbpf_level": "\(level)"])
  }
  let directory = objectDirectory.hasSuffix("/") ? objectDirectory : objectDirectory + "/"
  let objectPath = directory + "endpoint.o"
  let netdevPath = directory + "netdev.o"
  // Checked before anything is mounted, so a failed start leaves nothing behind.
  for path in [objectPath] + (devices.isEmpty ? [] : [netdevPath]) {
    guard access(path, R_OK) == 0 else {
      throw DatapathStartFailure(
        "the datapath object \(path) is missing (build it with install/build-bpf.sh)")
    }
  }
  try prepareBPFFilesystem(bpfFS, logger: logger)
  // libbpf does not reuse a pinned map of another size (the load fails), and replacing it
  // would drop its state: refuse before touching anything, and say what to do.
  try checkPinnedSizes(bpfFS: bpfFS, mapSizes: mapSizes)
  // ABI 4's LRU conntrack pins (and a jnc_ct6 of another size) would make the load fail:
  // moved aside, copied after it.
  try ConntrackMaps.moveLegacyPinsAside(bpfFS: bpfFS, mapSizes: mapSizes, logger: logger)
  do {
    let object = try BPFObject.loadSized(
      path: objectPath, bpfFS: bpfFS, mapSizes: mapSizes, logger: logger)
    let conntrack = ConntrackMaps(
      conntrack4: try object.map(named: JUNCTION_MAP_CT4),
      conntrack6: try object.map(named: JUNCTION_MAP_CT6), bpfFS: bpfFS)
    // Before any new program is attached (netdev's below, the endpoints' at reconcile): an
    // established connection's first packet through them finds its entry.
    if conntrack.hasLegacyPins { conntrack.copyLegacyEntries(logger: logger) }
    let from = try object.pinnedProgram(named: JUNCTION_PROG_FROM_ENDPOINT, bpfFS: bpfFS)
    let to = try object.pinnedProgram(named: JUNCTION_PROG_TO_ENDPOINT, bpfFS: bpfFS)
    let fromPin = bpfFS + "/" + JUNCTION_PROG_FROM_ENDPOINT
    let toPin = bpfFS + "/" + JUNCTION_PROG_TO_ENDPOINT
    let counters = try object.map(named: JUNCTION_MAP_ENDPOINT_COUNTERS)
    let drops = try object.map(named: JUNCTION_MAP_DROPS)
    let services = try ServicePrograms(object)
    let reader = LBMapReader(
      services: services.services, backends: services.backends, reverseNAT: services.reverseNAT,
      maglev: services.maglev, affinity: try object.map(named: JUNCTION_MAP_LB4_AFFINITY),
      conntrack: conntrack.conntrack4, nodeConfig: try NodeConfigMap(object),
      services6: services.services6, backends6: services.backends6,
      reverseNAT6: services.reverseNAT6,
      affinity6: try object.map(named: JUNCTION_MAP_LB6_AFFINITY),
      conntrack6: conntrack.conntrack6)
    let netdev =
      devices.isEmpty
      ? nil
      : try NetdevPrograms.load(
        objectPath: netdevPath, bpfFS: bpfFS, mapSizes: mapSizes, devices: devices,
        hook: tcHook, logger: logger)
    logger.info(
      "datapath loaded",
      metadata: [
        "object": "\(objectPath)", "bpf_fs": "\(bpfFS)", "from_endpoint": "\(from.id)",
        "to_endpoint": "\(to.id)", "counters_map": "\(counters.id)", "tc_hook": "\(tcHook)",
        "map_sizes":
          "\(reader.maps().map { "\($0.name)=\($0.maxEntries)" }.joined(separator: ","))",
      ])
    return BPFDatapath(
      object: object, fromEndpoint: from, toEndpoint: to, counters: counters, drops: drops,
      services: services,
      reader: reader, fromEndpointPin: fromPin, toEndpointPin: toPin, netdev: netdev,
      conntrack: conntrack, tcHook: tcHook, logger: logger)
  } catch let failure as DatapathStartFailure {
    throw failure
  } catch {
    throw DatapathStartFailure(
      "cannot load the datapath from \(objectPath): \(error)"
        + capabilityHint(for: error, needed: Capability.datapath, doing: "loading the datapath"))
  }
}

/// Fails with one line when a map the agent sizes is pinned under `bpfFS` with another
/// max_entries than `mapSizes` asks; leaves the pins alone either way.
private func checkPinnedSizes(bpfFS: String, mapSizes: MapSizes) throws {
  for (flag, name, wanted) in mapSizes.byMap {
    let pin = bpfFS + "/" + name
    guard access(pin, F_OK) == 0 else { continue }
    let pinned: Int
    do {
      pinned = try BPFMap.openPinned(at: pin).maxEntries
    } catch {
      throw DatapathStartFailure("cannot read the pinned map \(pin): \(error)")
    }
    if pinned != wanted {
      throw DatapathStartFailure(
        "\(name) is pinned with \(pinned) entries, \(flag) asks \(wanted): "
          + "remove \(pin) (drops its state) or keep the size")
    }
  }
}

/// `--tc-hook` against this kernel: auto takes tcx where the kernel has it; tcx asked for on
/// a kernel without it fails the start rather than quietly falling back.
func resolveTCHook(_ choice: TCHookChoice, kernelHasTCX: () -> Bool = TrafficControl.kernelHasTCX)
  throws(DatapathStartFailure) -> TrafficControl.Hook
{
  switch choice {
  case .clsact: return .clsact
  case .auto: return kernelHasTCX() ? .tcx : .clsact
  case .tcx:
    guard kernelHasTCX() else {
      throw DatapathStartFailure(
        "--tc-hook tcx: this kernel has no tcx hook (Linux 6.6 or later); use clsact or auto")
    }
    return .tcx
  }
}

struct DatapathStartFailure: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Uses the bpffs at `path` when there is one (or `path` lies inside one, like
/// /sys/fs/bpf/junction), and mounts one there otherwise.
private func prepareBPFFilesystem(_ path: String, logger: Logger) throws {
  var prefix = ""
  for component in path.split(separator: "/") {
    prefix += "/" + component
    if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
      throw DatapathStartFailure("cannot create \(prefix): \(String(cString: strerror(errno)))")
    }
  }
  if BPFFilesystem.isMounted(at: path) { return }
  do {
    try BPFFilesystem.mount(at: path)
    logger.info("mounted a bpffs", metadata: ["path": "\(path)"])
  } catch {
    throw DatapathStartFailure(
      "no bpffs at \(path) and cannot mount one: \(error)"
        + capabilityHint(for: error, needed: [.sysAdmin], doing: "mounting a bpffs"))
  }
}

/// The BPF datapath over BPFKit. Immutable after load; BPF syscalls are thread-safe.
final class BPFDatapath: Datapath, @unchecked Sendable {
  private let object: BPFObject
  private let fromEndpoint: BPFProgram
  private let toEndpoint: BPFProgram
  private let counterMap: BPFMap
  private let dropMap: BPFMap
  private let services: ServicePrograms
  private let reader: LBMapReader
  let fromEndpointPin: String
  let toEndpointPin: String
  /// The north-south programs, when the agent serves --devices.
  let netdev: NetdevPrograms?
  private let conntrack: ConntrackMaps
  private let logger: Logger
  /// Where the endpoint programs go (--tc-hook, resolved); the plugin is told the same.
  let tcHook: TrafficControl.Hook

  init(
    object: BPFObject, fromEndpoint: BPFProgram, toEndpoint: BPFProgram, counters: BPFMap,
    drops: BPFMap, services: ServicePrograms, reader: LBMapReader, fromEndpointPin: String,
    toEndpointPin: String, netdev: NetdevPrograms? = nil, conntrack: ConntrackMaps,
    tcHook: TrafficControl.Hook = .clsact, logger: Logger
  ) {
    self.tcHook = tcHook
    self.conntrack = conntrack
    self.logger = logger
    self.netdev = netdev
    self.reader = reader
    self.services = services
    self.object = object
    self.fromEndpoint = fromEndpoint
    self.toEndpoint = toEndpoint
    self.counterMap = counters
    self.dropMap = drops
    self.fromEndpointPin = fromEndpointPin
    self.toEndpointPin = toEndpointPin
  }

  var isLoaded: Bool { true }
  var tcHookName: String { tcHook.rawValue }

  func counters(hostIfindex: Int) -> EndpointCounters? {
    let key = junction_endpoint_key(ifindex: UInt32(truncatingIfNeeded: hostIfindex))
    guard let sum = try? counterMap.lookupSum(key, as: junction_endpoint_counters.self) else {
      // No entry yet: the endpoint has passed no packet since it was attached.
      return EndpointCounters()
    }
    return EndpointCounters(
      fromPackets: sum.from_packets, fromBytes: sum.from_bytes, toPackets: sum.to_packets,
      toBytes: sum.to_bytes)
  }

  func isAttached(hostIfindex: Int) -> Bool {
    let index = Int32(truncatingIfNeeded: hostIfindex)
    // On this agent's hook: programs on the other one (a start with another --tc-hook) are
    // re-attached, which moves them.
    return (try? TrafficControl.query(ifindex: index, direction: .ingress, on: tcHook))
      == fromEndpoint.id
      && (try? TrafficControl.query(ifindex: index, direction: .egress, on: tcHook))
        == toEndpoint.id
  }

  func reattach(hostIfindex: Int) throws {
    let index = Int32(truncatingIfNeeded: hostIfindex)
    try TrafficControl.attach(
      program: fromEndpoint, ifindex: index, direction: .ingress, hook: tcHook)
    try TrafficControl.attach(program: toEndpoint, ifindex: index, direction: .egress, hook: tcHook)
  }

  func programServices(_ diff: DesiredStateDiff) throws {
    try services.apply(diff)
  }

  func dumpLoadBalancer() throws -> LBMapDump {
    try reader.dump()
  }

  func dropCounters() throws -> [DatapathNames.RawDrop] {
    // Walked while the datapath inserts: a key may come twice (DatapathNames.dropDump
    // keeps one), and none is ever deleted, so every lookup finds its entry.
    try dropMap.keys(as: junction_drop_key.self).compactMap { key in
      guard let sum = try dropMap.lookupSum(key, as: junction_drop_counters.self) else {
        return nil
      }
      return DatapathNames.RawDrop(
        reason: key.reason, direction: key.direction, packets: sum.packets, bytes: sum.bytes)
    }
  }

  func setMonitorLevel(_ level: FlowSettings.Level) throws {
    try object.map(named: JUNCTION_MAP_MONITOR_CONFIG).update(
      UInt32(0), junction_monitor_config(level: level.code, pad: 0))
  }

  func flowEventsLost() -> UInt64 {
    let lost = try? object.map(named: JUNCTION_MAP_EVENTS_LOST).lookupSum(
      UInt32(0), as: junction_events_lost.self)
    return lost?.events ?? 0
  }

  func makeFlowConsumer(buffer: FlowBuffer, logger: Logger) throws -> FlowConsumer? {
    try FlowConsumer(
      events: try object.map(named: JUNCTION_MAP_EVENTS), buffer: buffer, logger: logger)
  }

  func configureNorthSouth(_ settings: NorthSouthSettings) throws {
    try reader.nodeConfig.update { config in
      config.nodeport_min = settings.nodePortRange.lower
      config.nodeport_max = settings.nodePortRange.upper
      config.snat_port_min = settings.snatPortRange.lower
      config.snat_port_max = settings.snatPortRange.upper
    }
  }

  func forget(hostIfindex: Int) {
    let key = junction_endpoint_key(ifindex: UInt32(truncatingIfNeeded: hostIfindex))
    _ = try? counterMap.delete(key)
  }

  func forgetFlows(ips: [String]) -> Int {
    let addresses = FlowPurge.addresses(ofCIDRs: ips)
    var removed = forgetFlows6(FlowPurge.addresses6(ofCIDRs: ips))
    if addresses.isEmpty { return removed }
    // A key deleted while walking can make the walk restart and show a key twice: a
    // second delete of it finds nothing and counts nothing.
    for key in (try? reader.conntrack.keys(as: junction_ct4_key.self)) ?? []
    where FlowPurge.isEndpoints(saddr: key.saddr, daddr: key.daddr, addresses: addresses) {
      if (try? reader.conntrack.delete(key)) == true { removed += 1 }
    }
    for key in (try? reader.affinity.keys(as: junction_lb4_affinity_key.self)) ?? []
    where addresses.contains(key.client) {
      if (try? reader.affinity.delete(key)) == true { removed += 1 }
    }
    return removed
  }

  /// forgetFlows for the endpoint's IPv6 addresses: jnc_ct6 and jnc_lb6_aff.
  private func forgetFlows6(_ addresses: Set<[UInt8]>) -> Int {
    if addresses.isEmpty { return 0 }
    func bytes(_ address: (UInt32, UInt32, UInt32, UInt32)) -> [UInt8] {
      withUnsafeBytes(of: address) { Array($0) }
    }
    var removed = 0
    for key in (try? reader.conntrack6.keys(as: junction_ct6_key.self)) ?? []
    where addresses.contains(bytes(key.saddr)) || addresses.contains(bytes(key.daddr)) {
      if (try? reader.conntrack6.delete(key)) == true { removed += 1 }
    }
    for key in (try? reader.affinity6.keys(as: junction_lb6_affinity_key.self)) ?? []
    where addresses.contains(bytes(key.client)) {
      if (try? reader.affinity6.delete(key)) == true { removed += 1 }
    }
    return removed
  }

  func sweepConntrack() -> ConntrackSweepResult {
    conntrack.sweep()
  }

  func finishConntrackMigration() {
    conntrack.finishMigration(logger: logger)
  }

  func counterKeys() throws -> [Int] {
    try counterMap.keys(as: junction_endpoint_key.self).map { Int($0.ifindex) }
  }
}
