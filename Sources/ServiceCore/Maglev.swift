/// SipHash-2-4 (Aumasson & Bernstein, 2012), 64-bit output, 128-bit key. Chosen because it is
/// fully specified, has published test vectors, and is keyed: Swift's `Hasher` is seeded at
/// random per process and would give every node (and every restart) a different Maglev table.
public enum SipHash24 {
  public static func hash(_ bytes: some Collection<UInt8>, k0: UInt64, k1: UInt64) -> UInt64 {
    var v0: UInt64 = 0x736f_6d65_7073_6575 ^ k0
    var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ k1
    var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ k0
    var v3: UInt64 = 0x7465_6462_7974_6573 ^ k1

    func rotl(_ value: UInt64, _ count: UInt64) -> UInt64 {
      (value << count) | (value >> (64 - count))
    }
    func round() {
      v0 &+= v1
      v1 = rotl(v1, 13)
      v1 ^= v0
      v0 = rotl(v0, 32)
      v2 &+= v3
      v3 = rotl(v3, 16)
      v3 ^= v2
      v0 &+= v3
      v3 = rotl(v3, 21)
      v3 ^= v0
      v2 &+= v1
      v1 = rotl(v1, 17)
      v1 ^= v2
      v2 = rotl(v2, 32)
    }

    let data = Array(bytes)
    var index = 0
    while index + 8 <= data.count {
      var word: UInt64 = 0
      for byte in 0..<8 { word |= UInt64(data[index + byte]) << (8 * UInt64(byte)) }
      v3 ^= word
      round()
      round()
      v0 ^= word
      index += 8
    }
    var last = UInt64(data.count & 0xff) << 56
    for byte in 0..<(data.count - index) {
      last |= UInt64(data[index + byte]) << (8 * UInt64(byte))
    }
    v3 ^= last
    round()
    round()
    v0 ^= last
    v2 ^= 0xff
    for _ in 0..<4 { round() }
    return v0 ^ v1 ^ v2 ^ v3
  }
}

/// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
/// Load Balancer", NSDI 2016, §3.4): a lookup table of M slots, each naming a backend, filled
/// so every backend gets ⌊M/N⌋ or ⌈M/N⌉ slots and a change of one backend moves about 1/N of
/// the slots. The datapath indexes it with a hash of the connection's 5-tuple (source port
/// zeroed under ClientIP affinity, as Cilium does), so all nodes send the same flow to the
/// same backend without sharing state.
///
/// Every node must compute the same table for the same backends, so everything is fixed:
/// - backend names: "address:port/PROTO" (`BackendKey.description`), never ids (ids are
///   per node);
/// - M = 16381 by default (prime; Cilium's default; ≥ 100·N keeps the per-backend imbalance
///   under 1% for N ≤ 163);
/// - offset = SipHash-2-4(seed.k0, seed.k1; name) mod M,
///   skip = SipHash-2-4(seed.k0 ^ K, seed.k1 ^ K; name) mod (M − 1) + 1, K = 0x9e3779b97f4a7c15;
/// - the seed defaults to `Seed.standard` (the ASCII bytes "junction", "-maglev!"); a
///   cluster may set its own, but it must be the same on every node.
public enum Maglev {
  public static let defaultTableSize = 16381
  /// The primes offered as table sizes (Cilium's list). Any prime > N works; these keep
  /// configuration simple.
  public static let supportedTableSizes = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
  ]

  public struct Seed: Hashable, Sendable {
    public var k0: UInt64
    public var k1: UInt64
    public init(k0: UInt64, k1: UInt64) {
      self.k0 = k0
      self.k1 = k1
    }
    /// "junction" and "-maglev!" read as little-endian 64-bit words.
    public static let standard = Seed(k0: 0x6e6f_6974_636e_756a, k1: 0x2176_656c_6761_6d2d)
  }

  private static let skipKeyTweak: UInt64 = 0x9e37_79b9_7f4a_7c15

  public static func isPrime(_ value: Int) -> Bool {
    guard value >= 2 else { return false }
    var divisor = 2
    while divisor * divisor <= value {
      if value % divisor == 0 { return false }
      divisor += 1
    }
    return true
  }

  /// (offset, skip) of one backend name.
  public static func permutation(_ name: String, size: Int, seed: Seed) -> (offset: Int, skip: Int)
  {
    let bytes = Array(name.utf8)
    let first = SipHash24.hash(bytes, k0: seed.k0, k1: seed.k1)
    let second = SipHash24.hash(bytes, k0: seed.k0 ^ skipKeyTweak, k1: seed.k1 ^ skipKeyTweak)
    return (Int(first % UInt64(size)), Int(second % UInt64(size - 1)) + 1)
  }

  /// The lookup table: `size` entries, each an index into `backends` (distinct names). Empty
  /// when there are no backends. The table is filled over the names in sorted order, so the
  /// same set of names in any order puts the same *name* in every slot.
  public static func table(backends: [String], size: Int = defaultTableSize, seed: Seed = .standard)
    -> [Int]
  {
    precondition(isPrime(size), "Maglev table size must be prime, got \(size)")
    guard !backends.isEmpty else { return [] }
    // Fill over the sorted names so the result depends on the set, not the caller's order.
    let order = backends.indices.sorted { backends[$0] < backends[$1] }
    let permutations = order.map { permutation(backends[$0], size: size, seed: seed) }
    var next = [Int](repeating: 0, count: order.count)
    var entry = [Int](repeating: -1, count: size)
    var filled = 0
    // Round robin: each backend in turn takes its next preferred free slot (paper, Pseudocode 1).
    while true {
      for (rank, backend) in order.enumerated() {
        let (offset, skip) = permutations[rank]
        var slot = (offset + next[rank] * skip) % size
        while entry[slot] >= 0 {
          next[rank] += 1
          slot = (offset + next[rank] * skip) % size
        }
        entry[slot] = backend
        next[rank] += 1
        filled += 1
        if filled == size { return entry }
      }
    }
  }
}
