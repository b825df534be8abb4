/// Which entries of the per-endpoint counter map (jnc_ep_counters, keyed by the host
/// veth's ifindex) belong to nobody and can go.
///
/// The endpoint programs create an entry for every packet they see on a veth, registered
/// or not: packets of a pod whose ADD failed or was killed, or that crossed the veth after
/// its endpoint was forgotten, leave entries nothing else removes. The map is bounded
/// (per-CPU, 16,384 entries); once it is full, new pods' counters stay at zero silently.
/// The agent sweeps at start (after reconciling) and every `interval` seconds.
public enum CounterSweep {
  /// Seconds between sweeps while the agent runs. A sweep is one walk of the map's keys and
  /// one link dump; a minute keeps even a node churning a pod a second far from the map's
  /// bound, at no measurable cost. (`--counter-sweep-interval`, hidden, for tests.)
  public static let interval: Double = 60

  /// The keys to delete: those of no registered endpoint whose ifindex no link on the node
  /// has. A link that exists but is not registered (yet) keeps its entry: an ADD between
  /// attaching the programs and registering must not lose its first packets; its entry
  /// goes at the first sweep after the link does. Each stale key once, in map order.
  public static func staleKeys(
    counterKeys: [Int], registeredIfindexes: Set<Int>, linkIndexes: Set<Int>
  ) -> [Int] {
    var seen = Set<Int>()
    return counterKeys.filter { key in
      !registeredIfindexes.contains(key) && !linkIndexes.contains(key) && seen.insert(key).inserted
    }
  }
}
