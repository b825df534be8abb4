import AgentCore
import CNIKit
import ServiceCore

extension NorthSouthPolicy {
  /// The planner's view of `--devices` and `--lb-mode`: NodePorts on every node address (the
  /// devices' IPv4 and global IPv6 addresses) and on 0.0.0.0 when there is one, or when socket LB serves
  /// host processes; DSR for the protocols `LBMode.usesDSR(tcp:)` names.
  init(nodeAddresses: [IPAddress], settings: NorthSouthSettings) {
    self.init(
      nodeAddresses: nodeAddresses, nodePortWildcard: !nodeAddresses.isEmpty || settings.socketLB,
      dsrProtocols: Set(L4Protocol.allCases.filter { settings.lbMode.usesDSR(tcp: $0 == .tcp) }))
  }
}
