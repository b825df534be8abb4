/// The per-packet report: one table row per service count, the flatness ratios across
/// counts (largest over smallest) and the verdicts on the goals of issue 4.
extension PerPacketBenchmark {
  static let flatnessGoal = 1.2
  static let firstPacketGoal = 250.0

  func report(_ subjects: [Subject]) -> String {
    struct Row {
      var services: Int
      var firstP50, firstP99, singleP50, singleP99: Double
      var established, miss, nonIP, programming: Double
      /// A single run's cost beyond the program: a missed packet run once, less the same
      /// packet's cost in a long repeated run.
      var harness: Double
      var firstNet: Double { firstP50 - harness }
    }
    let rows = subjects.map { subject -> Row in
      let first = subject.firstPacket.sorted()
      let single = subject.establishedSingle.sorted()
      let missSingle = Double(percentile(subject.missSingle.sorted(), 50))
      return Row(
        services: subject.services,
        firstP50: Double(percentile(first, 50)), firstP99: Double(percentile(first, 99)),
        singleP50: Double(percentile(single, 50)), singleP99: Double(percentile(single, 99)),
        established: median(subject.established), miss: median(subject.miss),
        nonIP: median(subject.nonIP), programming: subject.programmingMilliseconds,
        harness: max(0, missSingle - median(subject.miss)))
    }
    func ratio(_ value: (Row) -> Double) -> Double {
      let values = rows.map(value)
      return values.max()! / max(values.min()!, 1)
    }
    var text = """
      | services | first packet p50 (ns) | first packet p99 (ns) | single-run harness (ns) | first packet p50, net (ns) | established, repeat=1 p50 / p99 (ns) | established, repeat=\(repeatCount) (ns) | no service (ns) | non-IP (ns) | map writes to program them (ms) |
      |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|

      """
    for row in rows {
      text += "| \(row.services) | \(Int(row.firstP50)) | \(Int(row.firstP99)) | "
      text += "\(Int(row.harness)) | \(Int(row.firstNet)) | "
      text += "\(Int(row.singleP50)) / \(Int(row.singleP99)) | \(format(row.established)) | "
      text += "\(format(row.miss)) | \(format(row.nonIP)) | \(format(row.programming)) |\n"
    }
    let flatFirst = ratio(\.firstP50)
    let flatFirstP99 = ratio(\.firstP99)
    let flatSingle = ratio(\.singleP50)
    let flatEstablished = ratio(\.established)
    let flatMiss = ratio(\.miss)
    text += "| **largest / smallest** | **\(format(flatFirst, 2))** | \(format(flatFirstP99, 2)) | "
    text += "| **\(format(ratio(\.firstNet), 2))** | "
    text += "\(format(flatSingle, 2)) / \(format(ratio(\.singleP99), 2)) | "
    text += "**\(format(flatEstablished, 2))** | \(format(flatMiss, 2)) | "
    text += "\(format(ratio(\.nonIP), 2)) | |\n\n"

    let worstFirst = rows.map(\.firstP50).max()!
    let flat = flatFirst <= Self.flatnessGoal && flatEstablished <= Self.flatnessGoal
    text += "Goals (issue 4):\n\n"
    text += "- flat, largest / smallest ≤ \(Self.flatnessGoal): first packet p50 "
    text += "\(format(flatFirst, 2)), established \(format(flatEstablished, 2)): "
    text += flat ? "**met**\n" : "**not met**\n"
    text += "- first packet under \(Int(Self.firstPacketGoal)) ns: worst p50 \(Int(worstFirst)) ns "
    text += "(at \(rows.first { $0.firstP50 == worstFirst }!.services) services): "
    text += worstFirst < Self.firstPacketGoal ? "**met**" : "**not met**"
    text += " (p99 worst \(Int(rows.map(\.firstP99).max()!)) ns)\n"
    let worstNet = rows.map(\.firstNet).max()!
    text += "- the same, net of the single-run harness (first packet p50 less what one run of a "
    text += "packet to no service costs beyond its repeated-run time): worst \(Int(worstNet)) ns: "
    text += worstNet < Self.firstPacketGoal ? "**met**\n" : "**not met**\n"
    return text
  }
}

/// The report of a run over both families (bench/ipv6.sh): each family's table as above,
/// then IPv6 against IPv4 at each service count and issue 15's goal (IPv6 ≤ 1.1× IPv4 per
/// packet).
extension PerPacketBenchmark {
  static let familyGoal = 1.1

  func familyReport(_ subjects: [Subject]) -> String {
    var text = ""
    for family in families {
      text += "#### \(family == .ipv6 ? "IPv6" : "IPv4")\n\n"
      text += report(subjects.filter { $0.layout.family == family })
      text += "\n"
    }
    guard families.contains(.ipv4), families.contains(.ipv6) else { return text }
    /// One metric of both families: (IPv4, IPv6, IPv6 ÷ IPv4). For the repeated runs the
    /// ratio is the median of the per-round ratios (both copies measured in the same round,
    /// so a slow round cancels); for single runs, the ratio of the p50s.
    struct Pair {
      var ipv4, ipv6, ratio: Double
    }
    func perRound(_ v4: [Double], _ v6: [Double]) -> Pair {
      Pair(ipv4: median(v4), ipv6: median(v6), ratio: median(zip(v6, v4).map { $0 / $1 }))
    }
    func p50(_ v4: [UInt32], _ v6: [UInt32]) -> Pair {
      let a = Double(percentile(v4.sorted(), 50))
      let b = Double(percentile(v6.sorted(), 50))
      return Pair(ipv4: a, ipv6: b, ratio: b / max(a, 1))
    }
    func cell(_ pair: Pair) -> String {
      "\(format(pair.ipv4)) / \(format(pair.ipv6)) / **\(format(pair.ratio, 2))**"
    }
    text += "#### IPv6 against IPv4 (IPv4 ns / IPv6 ns / IPv6 ÷ IPv4)\n\n"
    text += "Repeated runs: the medians over rounds, and the median of the per-round ratios "
    text += "(both copies of a count are measured one after the other in every round, so a slow "
    text += "moment of the shared machine cancels; it can differ from the ratio of the medians). "
    text += "Single runs: the p50s and their ratio.\n\n"
    text += "| services | established, repeat=\(repeatCount) (from_endpoint) | "
    text += "reply, repeat=\(repeatCount) (to_endpoint, reverse NAT) | no service | "
    text += "first packet p50 | established, repeat=1 p50 |\n"
    text += "|---:|---:|---:|---:|---:|---:|\n"
    var worst: [(String, Double)] = []
    for size in sizes {
      guard let v4 = subjects.first(where: { $0.services == size && $0.layout.family == .ipv4 }),
        let v6 = subjects.first(where: { $0.services == size && $0.layout.family == .ipv6 })
      else { continue }
      let pairs = [
        ("established", perRound(v4.established, v6.established)),
        ("reply", perRound(v4.reply, v6.reply)),
        ("no service", perRound(v4.miss, v6.miss)),
        ("first packet", p50(v4.firstPacket, v6.firstPacket)),
        ("established repeat=1", p50(v4.establishedSingle, v6.establishedSingle)),
      ]
      text += "| \(size) | " + pairs.map { cell($0.1) }.joined(separator: " | ") + " |\n"
      worst += pairs.map { ($0.0, $0.1.ratio) }
    }
    text += "\nGoal (issue 15): IPv6 ≤ \(Self.familyGoal)× IPv4 per packet, worst over the service "
    text += "counts:\n\n"
    for name in ["established", "reply", "no service", "first packet", "established repeat=1"] {
      let ratio = worst.filter { $0.0 == name }.map(\.1).max() ?? 0
      text += "- \(name): \(format(ratio, 2)): "
      text += ratio <= Self.familyGoal ? "**met**\n" : "**not met**\n"
    }
    return text
  }
}
