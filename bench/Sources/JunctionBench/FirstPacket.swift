import BPFKit
import DatapathABI
import ServiceCore

/// Where a connection's first packet through from_endpoint spends its time (bench/first-packet.sh):
/// several builds of endpoint.o (`--objects name=path,...`: the datapath before and after a
/// change, and builds with -DJNC_BENCH_SKIP that leave one stage out, bpf/lib/stages.h), each
/// loaded with the same IPv4 services, timed in interleaved rounds (the order rotates every
/// round) so drift on a shared machine hits every build alike. Two measures per build:
///   single:   one BPF_PROG_TEST_RUN (repeat=1) of a TCP SYN on a tuple never seen, to a
///             random service: the real first packet, cold caches and harness included;
///   repeated: a SYN run `repeat` times; with JNC_STAGE_ALWAYS_NEW in the build every run
///             takes the first-packet path (the conntrack lookup is made, then ignored), so
///             the kernel's average is the path's cost with warm caches and no harness noise.
/// With `--monitor flows` (the agent's default level) the first packet writes its flow event,
/// and the ring is drained after every run, as the agent's consumer would, so it never fills.
struct FirstPacketBenchmark {
  struct Build {
    let name: String
    let path: String
  }

  let builds: [Build]
  let baseline: String
  let services: Int
  let repeatCount: Int
  let rounds: Int
  let samples: Int
  let monitorLevel: UInt32
  let bpffs: String
  let seed: Int
  static let backends = 3

  init(_ options: Options) throws {
    guard let list = options.string("objects") else {
      throw Options.Invalid(description: "--objects name=path,... is required")
    }
    builds = try list.split(separator: ",").map {
      let parts = $0.split(separator: "=", maxSplits: 1)
      guard parts.count == 2 else {
        throw Options.Invalid(description: "--objects: \($0) is not name=path")
      }
      return Build(name: String(parts[0]), path: String(parts[1]))
    }
    let baseline = options.string("baseline") ?? builds[0].name
    guard builds.map(\.name).contains(baseline) else {
      throw Options.Invalid(description: "--baseline \(baseline) is none of --objects")
    }
    self.baseline = baseline
    services = try options.int("services", default: 1000)
    repeatCount = max(1, try options.int("repeat", default: 5000))
    rounds = max(1, try options.int("rounds", default: 10))
    samples = max(1, try options.int("samples", default: 300))
    bpffs = try options.bpffs()
    seed = try options.int("seed", default: 1)
    switch options.string("monitor") ?? "flows" {
    case "off": monitorLevel = UInt32(JUNCTION_MONITOR_OFF.rawValue)
    case "flows": monitorLevel = UInt32(JUNCTION_MONITOR_FLOWS.rawValue)
    case let other:
      throw Options.Invalid(description: "--monitor: \(other) is neither off nor flows")
    }
    // Every record of a repeated run stays in the ring until the drain after it.
    guard repeatCount * 128 < Int(JUNCTION_EVENTS_RING_SIZE) else {
      throw Options.Invalid(
        description: "--repeat: at most \(Int(JUNCTION_EVENTS_RING_SIZE) / 128)")
    }
  }

  /// One build, loaded with the services, and its samples.
  final class Subject {
    let build: Build
    let layout: ServiceLayout
    let datapath: LoadedDatapath
    let program: BPFProgram
    let ring: BPFRingBuffer
    /// Whether the output must go to one of the service's backends (`runSYN`).
    let checked: Bool
    var connections = 0
    var single: [UInt32] = []
    /// Per round: the median of that round's single runs, and the repeated run's average.
    var singleRounds: [Double] = []
    var repeated: [Double] = []
    var events = 0

    init(_ build: Build, index: Int, bench: FirstPacketBenchmark) throws {
      self.build = build
      // ALWAYS_NEW builds undo their DNAT (bpf/lib/stages.h): only their verdict is checked.
      checked = !build.name.hasPrefix("skip") && !build.name.hasSuffix("-new")
      layout = ServiceLayout(
        services: bench.services, backendsPerService: FirstPacketBenchmark.backends,
        family: .ipv4)
      datapath = try LoadedDatapath(
        objectPath: build.path, bpffs: bench.bpffs, name: "first-packet-\(index)",
        services: bench.services, backendsPerService: FirstPacketBenchmark.backends,
        conntrack: 2 * bench.rounds * bench.samples + 4 * bench.rounds + 16)
      program = try datapath.program(named: JUNCTION_PROG_FROM_ENDPOINT)
      try datapath.maps.apply(DesiredStateDiff(from: DesiredState(), to: layout.desiredState()))
      try datapath.map(named: JUNCTION_MAP_MONITOR_CONFIG).update(
        UInt32(0), junction_monitor_config(level: bench.monitorLevel, pad: 0))
      var counted = 0
      ring = try BPFRingBuffer(map: try datapath.map(named: JUNCTION_MAP_EVENTS)) { _ in
        counted += 1
      }
      countEvents = { counted }
    }

    private var countEvents: () -> Int = { 0 }

    /// A tuple no earlier run used: clients 10.1.0.0/16, source ports 1024...61023.
    func nextClient() -> (address: [UInt8], port: UInt16) {
      defer { connections += 1 }
      return (
        Frames.bytes(0x0A01_0000 + UInt32(connections / 60000) + 1),
        UInt16(1024 + connections % 60000)
      )
    }

    /// A SYN from a new client to `service`, run `count` times; checked and drained.
    func runSYN(service: Int, repeat count: UInt32) throws -> UInt32 {
      let client = nextClient()
      let frame = Frames.tcp(
        source: client.address, destination: layout.vipAddress(service),
        sourcePort: client.port, destinationPort: 80, flags: Frames.syn)
      let result = try ProgramTestRun.run(program: program, packet: frame, repeat: count)
      let destination = Frames.destination(result.output)
      let backends = (0..<FirstPacketBenchmark.backends).map { layout.backendAddress(service, $0) }
      guard result.verdict == .next, !checked || backends.contains(destination) else {
        throw Options.Invalid(
          description: "\(build.name): service \(service): verdict \(result.returnValue), "
            + "destination \(text(destination))")
      }
      try ring.consume()
      events = countEvents()
      return result.duration
    }
  }

  func run() throws {
    var random = SeededGenerator(state: UInt64(seed))
    var subjects: [Subject] = []
    defer { for subject in subjects { subject.datapath.unpin() } }
    for (index, build) in builds.enumerated() {
      standardError("first-packet: loading \(build.name) (\(build.path)) with \(services) services")
      subjects.append(try Subject(build, index: index, bench: self))
    }
    for round in 0..<rounds {
      standardError("first-packet: round \(round + 1) of \(rounds)")
      // Every build gets the same services in the same order within a round.
      let picks = (0..<samples).map { _ in Int.random(in: 0..<services, using: &random) }
      let repeatedPick = Int.random(in: 0..<services, using: &random)
      for offset in 0..<subjects.count {
        let subject = subjects[(round + offset) % subjects.count]
        var durations: [UInt32] = []
        for service in picks {
          durations.append(try subject.runSYN(service: service, repeat: 1))
        }
        subject.single += durations
        subject.singleRounds.append(Double(percentile(durations.sorted(), 50)))
        subject.repeated.append(
          Double(try subject.runSYN(service: repeatedPick, repeat: UInt32(repeatCount))))
      }
    }
    print(report(subjects))
  }

  /// One row per build: single-run percentiles, the repeated average, and both as a
  /// difference to the baseline, paired by round (median, and the smallest and largest
  /// round), so the spread says how far a difference can be trusted.
  func report(_ subjects: [Subject]) -> String {
    let base = subjects.first { $0.build.name == baseline }!
    var lines = [
      "| build | single p50 (ns) | single p25 / p75 / p90 (ns) | baseline − build, single (median of rounds, min…max) | repeated (ns, median of rounds, min…max) | baseline − build, repeated (median, min…max) | flow events |",
      "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for subject in subjects {
      let sorted = subject.single.sorted()
      let singleDelta = zip(base.singleRounds, subject.singleRounds).map { $0 - $1 }
      let repeatedDelta = zip(base.repeated, subject.repeated).map { $0 - $1 }
      let spread = { (values: [Double]) in
        "\(format(median(values), 0)) (\(format(values.min()!, 0))…\(format(values.max()!, 0)))"
      }
      lines.append(
        "| \(subject.build.name) | \(percentile(sorted, 50)) | \(percentile(sorted, 25)) / "
          + "\(percentile(sorted, 75)) / \(percentile(sorted, 90)) | "
          + "\(subject === base ? "" : spread(singleDelta)) | \(spread(subject.repeated)) | "
          + "\(subject === base ? "" : spread(repeatedDelta)) | \(subject.events) |")
    }
    lines.append("")
    lines.append(
      "\(services) services of \(FirstPacketBenchmark.backends) backends, \(rounds) rounds of "
        + "\(samples) single runs and one run repeated \(repeatCount) times per build, "
        + "monitor level \(monitorLevel == UInt32(JUNCTION_MONITOR_OFF.rawValue) ? "off" : "flows")."
    )
    return lines.joined(separator: "\n")
  }
}
