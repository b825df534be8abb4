import DatapathABI

/// How a node forwards north-south connections (NodePort, ExternalIPs, LoadBalancer) to a
/// backend on another node (`--lb-mode`), as Cilium's `loadBalancer.mode`.
public enum LBMode: String, Equatable, Sendable, CaseIterable {
  /// The node's address and a source port from the SNAT range: replies come back through it.
  case snat
  /// Direct server return: the frontend travels in an IPv4 option; the backend's node answers
  /// the client itself, with the frontend as source.
  case dsr
  /// DSR for TCP, SNAT for UDP (DSR tags only the SYN of TCP; UDP would carry the option in
  /// every datagram, eating into the MTU).
  case hybrid

  /// Whether remote backends of a frontend with this protocol are reached by DSR.
  public func usesDSR(tcp: Bool) -> Bool {
    switch self {
    case .snat: false
    case .dsr: true
    case .hybrid: tcp
    }
  }
}

/// An inclusive port range, "30000-32767".
public struct PortRange: Equatable, Sendable, CustomStringConvertible {
  public var lower: UInt16
  public var upper: UInt16

  public init(_ lower: UInt16, _ upper: UInt16) {
    self.lower = lower
    self.upper = upper
  }

  /// Kubernetes' default --service-node-port-range (the ABI header's defaults).
  public static let defaultNodePorts = PortRange(
    UInt16(JUNCTION_NODEPORT_MIN_DEFAULT), UInt16(JUNCTION_NODEPORT_MAX_DEFAULT))
  /// Cilium's NodePort SNAT ports (NODEPORT_PORT_MIN_NAT..MAX_NAT), which the datapath also
  /// uses before the agent writes its range.
  public static let defaultSNATPorts = PortRange(
    UInt16(JUNCTION_SNAT_PORT_MIN_DEFAULT), UInt16(JUNCTION_SNAT_PORT_MAX_DEFAULT))

  /// "LOW-HIGH" with 1 ≤ LOW ≤ HIGH ≤ 65535, else nil.
  public static func parse(_ text: String) -> PortRange? {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 2, let lower = UInt16(parts[0]), let upper = UInt16(parts[1]),
      lower >= 1, lower <= upper
    else { return nil }
    return PortRange(lower, upper)
  }

  public func contains(_ port: UInt16) -> Bool { port >= lower && port <= upper }

  public var description: String { "\(lower)-\(upper)" }
}

/// The agent's north-south and socket load-balancing settings.
public struct NorthSouthSettings: Equatable, Sendable {
  public var lbMode: LBMode
  public var nodePortRange: PortRange
  public var snatPortRange: PortRange
  /// Socket LB (cgroup v2 connect, sendmsg, recvmsg and getpeername, IPv4 and IPv6) for the
  /// node's own processes.
  public var socketLB: Bool
  /// With socketLB: only the node's own processes, not its pods (--socket-lb-hostns-only).
  public var socketLBHostNamespaceOnly = false
  /// The cgroup v2 directory the socket programs attach to; a cgroup2 is mounted there when
  /// none is.
  public var cgroupRoot: String

  public static let defaultCgroupRoot = "/run/junction/cgroupv2"

  public init(
    lbMode: LBMode = .snat, nodePortRange: PortRange = .defaultNodePorts,
    snatPortRange: PortRange = .defaultSNATPorts, socketLB: Bool = false,
    cgroupRoot: String = defaultCgroupRoot
  ) {
    self.lbMode = lbMode
    self.nodePortRange = nodePortRange
    self.snatPortRange = snatPortRange
    self.socketLB = socketLB
    self.cgroupRoot = cgroupRoot
  }

  /// The first problem, or nil.
  public var problem: String? {
    if cgroupRoot.isEmpty || !cgroupRoot.hasPrefix("/") {
      return "--cgroup-root must be an absolute path"
    }
    if snatPortRange.lower < 1024 {
      return "--snat-port-range \(snatPortRange) must not include ports below 1024"
    }
    if nodePortRange.lower <= snatPortRange.upper && snatPortRange.lower <= nodePortRange.upper {
      return "--snat-port-range \(snatPortRange) overlaps --node-port-range \(nodePortRange)"
    }
    return nil
  }
}
