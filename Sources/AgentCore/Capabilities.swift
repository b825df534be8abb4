/// The Linux capabilities the agent's kernel calls need, and which of them a process lacks,
/// so that a refused call (EPERM, EACCES) can say what to grant instead of only "Operation
/// not permitted". The agent runs with exactly these in the DaemonSet (README, "Privilege").
public enum Capability: Int, CaseIterable, Comparable, Sendable {
  /// Netlink writes (tc qdiscs and filters on host veths and --devices) and loading the
  /// networking program types (tc, sk_lookup, cgroup sock_addr).
  case netAdmin = 12
  /// Ptrace access to a process of another owner, or with capabilities the agent lacks.
  case sysPtrace = 19
  /// mount(2) of a bpffs or cgroup2; before Linux 5.8 also what CAP_BPF and CAP_PERFMON are.
  case sysAdmin = 21
  /// The verifier's "privileged" mode (pointer arithmetic without Spectre sanitation, which
  /// the datapath's programs need to be accepted).
  case perfmon = 38
  /// bpf(2): creating maps, loading programs, pinning, BPF links.
  case bpf = 39

  /// As capabilities(7) spells it: "CAP_NET_ADMIN".
  public var name: String {
    switch self {
    case .netAdmin: "CAP_NET_ADMIN"
    case .sysPtrace: "CAP_SYS_PTRACE"
    case .sysAdmin: "CAP_SYS_ADMIN"
    case .perfmon: "CAP_PERFMON"
    case .bpf: "CAP_BPF"
    }
  }

  public static func < (lhs: Capability, rhs: Capability) -> Bool { lhs.rawValue < rhs.rawValue }

  /// What loading and attaching the datapath needs (endpoint.o, netdev.o, proxy_lookup.o,
  /// sock.o; tc and netns/cgroup links).
  public static let datapath: [Capability] = [.bpf, .netAdmin, .perfmon]
}

/// A capability set as the kernel reports it (a CapEff line of /proc/PID/status).
public struct CapabilitySet: Equatable, Sendable {
  public var bits: UInt64

  public init(bits: UInt64) { self.bits = bits }

  /// The effective set from the text of /proc/self/status; nil when it has no CapEff line.
  public init?(procStatus text: String) {
    for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
      let hex = line.dropFirst("CapEff:".count).filter { $0 != " " && $0 != "\t" }
      guard let bits = UInt64(hex, radix: 16) else { return nil }
      self.bits = bits
      return
    }
    return nil
  }

  public func contains(_ capability: Capability) -> Bool {
    bits & (1 << UInt64(capability.rawValue)) != 0
  }

  /// Those of `needed` this set lacks. CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON,
  /// as the kernel's bpf_capable() and perfmon_capable() accept it.
  public func missing(_ needed: [Capability]) -> [Capability] {
    needed.filter { capability in
      if contains(capability) { return false }
      return !([.bpf, .perfmon].contains(capability) && contains(.sysAdmin))
    }.sorted()
  }

  /// A clause to append to the error of a call the kernel refused with `errno` (EPERM or
  /// EACCES; nil for any other errno, or when nothing of `needed` is missing, since the
  /// refusal then has another cause): "; the agent lacks CAP_PERFMON (loading the datapath
  /// needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)".
  public func explainRefusal(errno code: Int32, needed: [Capability], doing what: String)
    -> String?
  {
    // EPERM 1, EACCES 13 (asm-generic/errno-base.h); the verifier answers EACCES.
    guard code == 1 || code == 13 else { return nil }
    let lacking = missing(needed)
    guard !lacking.isEmpty else { return nil }
    return "; the agent lacks \(Self.list(lacking)) (\(what) needs \(Self.list(needed)))"
  }

  /// "CAP_A", "CAP_A and CAP_B", "CAP_A, CAP_B and CAP_C".
  static func list(_ capabilities: [Capability]) -> String {
    let names = capabilities.map(\.name)
    guard names.count > 1 else { return names.first ?? "" }
    return names.dropLast().joined(separator: ", ") + " and " + names[names.count - 1]
  }
}
