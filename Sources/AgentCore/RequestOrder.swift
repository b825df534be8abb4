import AgentAPI

/// The order in which the CNI plugin *issued* its requests for each endpoint, so the agent
/// can refuse one that arrives after a newer one was applied.
///
/// Why: an agent frozen (SIGSTOP, a stalled disk) past the plugin's time-out still has the
/// plugin's requests in its socket's backlog, and answers them when it thaws, in whatever
/// order its tasks run. An ADD that gave up and rolled back, then a DEL that queued its
/// deletion on disk, left two stale requests: if the DEL (or the queue's replay) ran first,
/// the late registration made afterwards stayed for good, an endpoint with no pod (the
/// chained soak found one). The agent's own clock cannot tell, since it reads both late;
/// the plugin's can: every request carries the plugin's CLOCK_BOOTTIME reading
/// (`IssuedAt`), and per endpoint the agent keeps the newest one it applied. A request
/// older than that lost the race to a newer request of the same endpoint and changes
/// nothing. (CLOCK_BOOTTIME, not the wall clock: a node's first NTP sync, which can step
/// the wall clock back, happens while its first pods are created.)
///
/// Only requests that carry the header take part (older plugins, `junctionctl`, tests
/// without it are applied as before). Memory stays bounded: an entry is needed only while a
/// stale request can still be in the backlog, so entries older than `retention` go once
/// the table passes `pruneThreshold`.
public struct RequestOrder: Sendable {
  /// Nanoseconds an endpoint's newest request is remembered (after it was applied).
  public static let retention: UInt64 = 15 * 60 * 1_000_000_000
  public static let pruneThreshold = 4096

  private struct Newest: Sendable {
    var issuedAt: UInt64
    /// When the agent applied it (CLOCK_BOOTTIME), for pruning.
    var appliedAt: UInt64
  }

  private var newest: [String: Newest] = [:]
  private var lastPrune: UInt64 = 0

  public init() {}

  /// Whether a request of `id` issued at `issuedAt` is older than one already applied.
  /// A request without a reading is never stale; equal readings are not either.
  public func isStale(_ id: String, issuedAt: UInt64?) -> Bool {
    guard let issuedAt, let known = newest[id] else { return false }
    return issuedAt < known.issuedAt
  }

  /// Notes that a request of `id` issued at `issuedAt` was applied (or found nothing to
  /// do: a DEL of an unknown endpoint still orders a late ADD behind it).
  public mutating func applied(_ id: String, issuedAt: UInt64?, now: UInt64 = IssuedAt.now()) {
    guard let issuedAt else { return }
    if let known = newest[id], known.issuedAt > issuedAt { return }
    newest[id] = Newest(issuedAt: issuedAt, appliedAt: now)
    // At most once a minute, so a node past the threshold does not filter on every request.
    if newest.count > Self.pruneThreshold, now &- lastPrune > 60 * 1_000_000_000 {
      prune(now: now)
    }
  }

  /// The reading of the newest request applied for `id`, when one is remembered.
  public func newestApplied(_ id: String) -> UInt64? { newest[id]?.issuedAt }

  public var count: Int { newest.count }

  mutating func prune(now: UInt64) {
    lastPrune = now
    newest = newest.filter { now &- $0.value.appliedAt < Self.retention }
  }
}
