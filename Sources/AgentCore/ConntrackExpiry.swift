import DatapathABI

/// When a conntrack entry (jnc_ct4, jnc_ct6) has expired and the agent's sweep may delete
/// it. The maps are plain hashes that never evict (a full map refuses new connections, with
/// a counted drop, instead of dropping established ones), so something must remove the
/// entries of finished connections: this rule, applied every `--conntrack-sweep-interval`.
///
/// The lifetimes are junction_abi.h's (Cilium's), the ones the datapath's SNAT take-over
/// judges ports by (bpf/lib/snat.h `jnc_snat_expired`), so both agree on what is expired.
public struct ConntrackExpiry: Equatable, Sendable {
  /// Nanoseconds a closing TCP entry (JUNCTION_CT_F_CLOSING: a FIN or RST went through)
  /// may stay idle.
  public var closeTimeout: UInt64
  /// Nanoseconds an open TCP entry may stay idle.
  public var tcpLifetime: UInt64
  /// Nanoseconds a UDP (any non-TCP) entry may stay idle.
  public var nonTCPLifetime: UInt64

  public init(closeTimeout: UInt64, tcpLifetime: UInt64, nonTCPLifetime: UInt64) {
    self.closeTimeout = closeTimeout
    self.tcpLifetime = tcpLifetime
    self.nonTCPLifetime = nonTCPLifetime
  }

  private static let second: UInt64 = 1_000_000_000

  /// The datapath's lifetimes (junction_abi.h JUNCTION_CT_*_SECONDS).
  public static let datapath = ConntrackExpiry(
    closeTimeout: UInt64(JUNCTION_CT_CLOSE_TIMEOUT_SECONDS) * second,
    tcpLifetime: UInt64(JUNCTION_CT_TCP_LIFETIME_SECONDS) * second,
    nonTCPLifetime: UInt64(JUNCTION_CT_NONTCP_LIFETIME_SECONDS) * second)

  /// Seconds between sweeps while the agent runs (`--conntrack-sweep-interval`). A sweep
  /// walks both maps (two syscalls per entry); 10 s, the close timeout, frees a closed
  /// connection's entries within 20 s at a cost of well under a second of CPU per sweep
  /// even with a full default-sized map.
  public static let defaultInterval: Double = 10

  /// Whether an entry last seen at `lastSeen` (bpf_ktime_get_ns, CLOCK_MONOTONIC) with
  /// `flags` (JUNCTION_CT_F_*) of protocol `proto` has expired at `now` (the same clock).
  /// An entry seen after `now` (refreshed while the sweep ran) is idle for 0.
  public func isExpired(lastSeen: UInt64, flags: UInt16, proto: UInt8, now: UInt64) -> Bool {
    let idle = now > lastSeen ? now - lastSeen : 0
    if proto != Self.tcp { return idle > nonTCPLifetime }
    if flags & UInt16(JUNCTION_CT_F_CLOSING) != 0 { return idle > closeTimeout }
    return idle > tcpLifetime
  }

  /// IPPROTO_TCP, without importing Glibc into a pure module.
  private static let tcp: UInt8 = 6
}

/// What one conntrack sweep did, per family.
public struct ConntrackSweepResult: Equatable, Sendable {
  public var scanned4 = 0
  public var deleted4 = 0
  public var scanned6 = 0
  public var deleted6 = 0

  public init(scanned4: Int = 0, deleted4: Int = 0, scanned6: Int = 0, deleted6: Int = 0) {
    self.scanned4 = scanned4
    self.deleted4 = deleted4
    self.scanned6 = scanned6
    self.deleted6 = deleted6
  }

  public var deleted: Int { deleted4 + deleted6 }
}
