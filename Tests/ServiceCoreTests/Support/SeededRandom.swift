/// SplitMix64 from a random seed, for the random runs: a failure prints `seed`, and setting
/// it replays the run.
struct SeededRandom {
  let seed: UInt64
  private var state: UInt64

  init() {
    var system = SystemRandomNumberGenerator()
    seed = UInt64.random(in: 0...UInt64.max, using: &system)
    state = seed
  }

  /// A number in 0..<bound.
  mutating func next(_ bound: Int) -> Int {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return Int((z ^ (z >> 31)) % UInt64(bound))
  }
}
