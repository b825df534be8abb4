import AgentCore
import BPFKit
import CLibbpf
import DatapathABI
import Logging

#if canImport(Glibc)
  import Glibc
#endif

/// The conntrack maps (jnc_ct4, jnc_ct6) over their lifetime in the agent: the upgrade from
/// ABI 4's LRU maps, and the sweep of expired entries (the maps never evict).
///
/// Upgrade: libbpf reuses a pinned map only when its type matches, so an agent start that
/// finds ABI 4's LRU pins would fail to load. Before the load, each such pin is moved aside
/// to `<pin>_abi4` (the running programs keep using the map: a pin is only a name); the load
/// creates and pins the hash map; `copy` fills it from the old one before the new programs
/// are attached anywhere, so established connections keep their backend and translation;
/// and `finish`, once every endpoint has the new programs, copies what the old programs
/// added meanwhile and removes the old pins (the old map goes with its last program).
/// A start that fails in between leaves `<pin>_abi4` for the next one.
struct ConntrackMaps: @unchecked Sendable {
  let conntrack4: BPFMap
  let conntrack6: BPFMap
  let bpfFS: String

  /// No dot: bpffs refuses names with one (EPERM).
  static let legacySuffix = "_abi4"

  /// The conntrack map names, as pinned under the agent's bpffs.
  static let names = [JUNCTION_MAP_CT4, JUNCTION_MAP_CT6]

  /// Before the datapath object is loaded: moves each conntrack pin that is not a plain
  /// hash (ABI 4's LRU), or not of the size `mapSizes` asks, to `<pin>_abi4`; returns the
  /// names moved. A size differs only for jnc_ct6 (jnc_ct4's is checked first, and a
  /// changed one refused): agents before --conntrack-max sized both left it at the
  /// header's size, and its connections must survive the upgrade as ABI 4's do.
  static func moveLegacyPinsAside(bpfFS: String, mapSizes: MapSizes, logger: Logger) throws
    -> [String]
  {
    var moved: [String] = []
    for name in names {
      let pin = bpfFS + "/" + name
      guard access(pin, F_OK) == 0 else { continue }
      let pinned: BPFMap
      do {
        pinned = try BPFMap.openPinned(at: pin)
      } catch {
        throw DatapathStartFailure("cannot read the pinned map \(pin): \(error)")
      }
      if pinned.type == BPF_MAP_TYPE_HASH.rawValue
        && pinned.maxEntries == (mapSizes.maxEntries(of: name) ?? pinned.maxEntries)
      {
        continue
      }
      guard rename(pin, pin + legacySuffix) == 0 else {
        throw DatapathStartFailure(
          "cannot move the old conntrack map \(pin) aside: \(String(cString: strerror(errno)))")
      }
      logger.notice(
        "conntrack map of an earlier ABI (LRU) or size moved aside for migration",
        metadata: ["pin": "\(pin)", "to": "\(pin + legacySuffix)"])
      moved.append(name)
    }
    return moved
  }

  /// Whether a `<pin>_abi4` is waiting to be copied (a migration started, not finished).
  var hasLegacyPins: Bool {
    Self.names.contains { access(bpfFS + "/" + $0 + Self.legacySuffix, F_OK) == 0 }
  }

  /// Copies every entry of the old maps that the new ones lack (never overwriting: an entry
  /// the new programs wrote is newer). Returns (copied, failed: refused, e.g. map full).
  @discardableResult
  func copyLegacyEntries(logger: Logger) -> (copied: Int, failed: Int) {
    var copied = 0
    var failed = 0
    for (name, map) in [(JUNCTION_MAP_CT4, conntrack4), (JUNCTION_MAP_CT6, conntrack6)] {
      let pin = bpfFS + "/" + name + Self.legacySuffix
      guard access(pin, F_OK) == 0, let old = try? BPFMap.openPinned(at: pin) else { continue }
      let result =
        name == JUNCTION_MAP_CT4
        ? Self.copy(from: old, to: map, key: junction_ct4_key.self, value: junction_ct4_entry.self)
        : Self.copy(from: old, to: map, key: junction_ct6_key.self, value: junction_ct6_entry.self)
      copied += result.copied
      failed += result.failed
      logger.info(
        "conntrack entries copied from the old map",
        metadata: [
          "map": "\(name)", "copied": "\(result.copied)", "failed": "\(result.failed)",
        ])
    }
    return (copied, failed)
  }

  /// The last copy, then the old pins removed.
  func finishMigration(logger: Logger) {
    guard hasLegacyPins else { return }
    copyLegacyEntries(logger: logger)
    for name in Self.names {
      let pin = bpfFS + "/" + name + Self.legacySuffix
      if access(pin, F_OK) == 0 { unlink(pin) }
    }
    logger.notice("conntrack migration finished: the old LRU maps' pins removed")
  }

  private static func copy<Key: BitwiseCopyable, Value: BitwiseCopyable>(
    from old: BPFMap, to new: BPFMap, key: Key.Type, value: Value.Type
  ) -> (copied: Int, failed: Int) {
    var copied = 0
    var failed = 0
    for key in (try? old.keys(as: Key.self)) ?? [] {
      guard let entry = try? old.lookup(key, as: Value.self) else { continue }
      if (try? new.lookup(key, as: Value.self)) != nil { continue }
      do {
        try new.update(key, entry, mode: .createOnly)
        copied += 1
      } catch {
        failed += 1
      }
    }
    return (copied, failed)
  }

  // MARK: - Sweep

  /// CLOCK_MONOTONIC in nanoseconds: bpf_ktime_get_ns's clock, the one last_seen is on.
  static func monotonicNow() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }

  /// Deletes every expired entry of both maps (`ConntrackExpiry`). An entry is read again
  /// just before its delete, so one refreshed by a packet meanwhile is kept (a packet
  /// between that read and the delete still loses it: the kernel has no conditional
  /// delete; the connection's next packet then makes a new entry, as after a restart).
  func sweep(expiry: ConntrackExpiry = .datapath, now: UInt64 = monotonicNow())
    -> ConntrackSweepResult
  {
    var result = ConntrackSweepResult()
    for key in (try? conntrack4.keys(as: junction_ct4_key.self)) ?? [] {
      result.scanned4 += 1
      guard let entry = try? conntrack4.lookup(key, as: junction_ct4_entry.self),
        expiry.isExpired(
          lastSeen: entry.last_seen, flags: entry.flags, proto: key.proto, now: now)
      else { continue }
      if (try? conntrack4.delete(key)) == true { result.deleted4 += 1 }
    }
    for key in (try? conntrack6.keys(as: junction_ct6_key.self)) ?? [] {
      result.scanned6 += 1
      guard let entry = try? conntrack6.lookup(key, as: junction_ct6_entry.self),
        expiry.isExpired(
          lastSeen: entry.last_seen, flags: entry.flags, proto: key.proto, now: now)
      else { continue }
      if (try? conntrack6.delete(key)) == true { result.deleted6 += 1 }
    }
    return result
  }
}
