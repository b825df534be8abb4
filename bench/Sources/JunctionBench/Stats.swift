import Foundation

/// Nearest-rank percentiles, as bench/timer.py computes them (so with 1,000 samples p99 is
/// the 990th smallest).
func percentile<T: BinaryInteger>(_ sorted: [T], _ p: Double) -> T {
  precondition(!sorted.isEmpty)
  let rank = max(1, Int((p / 100 * Double(sorted.count)).rounded(.up)))
  return sorted[min(rank, sorted.count) - 1]
}

func median(_ values: [Double]) -> Double {
  let sorted = values.sorted()
  let middle = sorted.count / 2
  return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// CLOCK_MONOTONIC in nanoseconds: the wall time of a host-side phase.
func monotonicNanoseconds() -> UInt64 {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Runs `body` and returns its result with the elapsed wall time in milliseconds.
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
  let start = monotonicNanoseconds()
  let result = try body()
  return (result, Double(monotonicNanoseconds() - start) / 1e6)
}

/// SplitMix64: a seeded generator, so a run's choice of services can be repeated.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

func format(_ value: Double, _ digits: Int = 1) -> String {
  String(format: "%.\(digits)f", value)
}
