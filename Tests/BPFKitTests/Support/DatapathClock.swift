#if canImport(Glibc)
  import Glibc
#endif

/// The datapath's clock: bpf_ktime_get_ns is CLOCK_MONOTONIC, which counts from boot. Tests
/// that make a map entry look old write a past time on that clock.
enum DatapathClock {
  static func now() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }

  /// CLOCK_MONOTONIC `seconds` ago. On a machine booted less than `seconds` ago that time
  /// does not exist yet (subtracting would underflow, and 0 would read as "up-time ago", too
  /// young): wait until the clock has run that far, so the age a test sets is always the
  /// age it asked for. Tests ask for ages of a minute or so, so the wait is bounded by that.
  static func ago(seconds: UInt64) -> UInt64 {
    let age = seconds * 1_000_000_000
    while now() <= age {
      usleep(100_000)
    }
    return now() - age
  }
}
