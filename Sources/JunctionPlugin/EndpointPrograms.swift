import AgentAPI
import BPFKit
import CNIKit
import DatapathABI
import NetKit

/// The agent's pinned endpoint programs, as the plugin attaches them to a pod's host-side
/// veth: from-endpoint on tc ingress (what the pod sends), to-endpoint on tc egress (what
/// it receives). In native mode the clsact qdisc and filters go away with the veth Junction
/// deletes; in chained mode the veth is another plugin's, so DEL and GC `detach`.
struct EndpointPrograms {
  let fromEndpoint: BPFProgram
  let toEndpoint: BPFProgram
  /// The hook the agent named (its --tc-hook); clsact from agents that name none.
  let hook: TrafficControl.Hook

  /// Opens the pins the agent named in its config. Missing pins mean the agent has not
  /// loaded its datapath yet: transient, code 11, and nothing has been created.
  static func open(_ config: AgentConfig) throws(CNIError) -> EndpointPrograms {
    do {
      return EndpointPrograms(
        fromEndpoint: try BPFProgram.openPinned(at: config.fromEndpointProgram),
        toEndpoint: try BPFProgram.openPinned(at: config.toEndpointProgram),
        hook: config.tcHook.flatMap(TrafficControl.Hook.init(rawValue:)) ?? .clsact)
    } catch {
      throw CNIError(
        .tryAgainLater, "the Junction agent's datapath programs are not available",
        details: "\(error); is the agent's bpffs (\(config.bpfFS)) visible to the plugin?")
    }
  }

  /// Idempotent: a second attach replaces Junction's program in place.
  func attach(hostIfindex: Int32) throws(CNIError) {
    do {
      try TrafficControl.attach(
        program: fromEndpoint, ifindex: hostIfindex, direction: .ingress, hook: hook)
      try TrafficControl.attach(
        program: toEndpoint, ifindex: hostIfindex, direction: .egress, hook: hook)
    } catch {
      throw CNIError(.datapathAttachFailed, "attaching the endpoint programs failed: \(error)")
    }
  }

  /// Drops the entry the programs made under `hostIfindex` in the agent's pinned counter
  /// map under `bpfFS`, best effort. Only once the link (and with it the programs) is gone,
  /// so no packet recreates it.
  static func forgetCounters(hostIfindex: Int32, bpfFS: String) {
    let key = junction_endpoint_key(ifindex: UInt32(bitPattern: hostIfindex))
    _ = try? BPFMap.openPinned(at: bpfFS + "/" + JUNCTION_MAP_ENDPOINT_COUNTERS).delete(key)
  }

  /// CHECK: what is wrong with the filters on `hostIfindex`, one sentence each.
  func problems(hostIfindex: Int32, hostName: String) -> [String] {
    var problems: [String] = []
    for (direction, program) in [
      (TrafficControl.Direction.ingress, fromEndpoint), (.egress, toEndpoint),
    ] {
      switch Result(catching: { () throws(BPFError) in
        try TrafficControl.query(ifindex: hostIfindex, direction: direction)
      }) {
      case .success(let id?) where id == program.id:
        continue
      case .success(let id?):
        problems.append(
          "\(hostName) \(direction) runs program \(id), not \(program.name) (\(program.id))")
      case .success(nil):
        problems.append("\(program.name) is not attached to \(hostName) \(direction)")
      case .failure(let error):
        problems.append("cannot query \(hostName) \(direction): \(error)")
      }
    }
    return problems
  }

  /// Removes Junction's two filters from `hostIfindex`, and the clsact qdisc too when that
  /// leaves it empty (no other tool's filter is ever removed). Missing filters, qdisc or
  /// interface are success: DEL and GC run again after partial failures.
  static func detach(hostIfindex: Int32, socket: RouteSocket) throws(CNIError) {
    do {
      for direction in TrafficControl.Direction.allCases {
        try TrafficControl.detach(ifindex: hostIfindex, direction: direction)
      }
    } catch {
      // The link went first (another plugin's DEL, or the pod is gone): nothing to detach.
      if case .success(nil) = Result(catching: { () throws(NetKitError) in
        try socket.link(index: hostIfindex)
      }) {
        return
      }
      throw CNIError(
        .datapathAttachFailed, "detaching the endpoint programs from ifindex \(hostIfindex) failed",
        details: "\(error)")
    }
    do {
      if try socket.clsactFilterCount(index: hostIfindex) == 0 {
        try TrafficControl.removeHook(ifindex: hostIfindex)
      }
    } catch {
      // The programs are off; an empty qdisc left behind is harmless and goes with the link.
    }
  }
}
