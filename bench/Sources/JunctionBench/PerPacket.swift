import BPFKit
import DatapathABI
import ServiceCore

/// Per-packet cost of from_endpoint (the pod's egress: service lookup, conntrack, DNAT) with
/// BPF_PROG_TEST_RUN, at several service counts loaded side by side and measured in
/// interleaved rounds (the order of the counts rotates every round), so drift on a shared
/// machine hits every count alike. What is timed is the kernel's own measurement: the
/// average duration of the program over `repeat` runs (bpf_test_run's ktime around the loop).
struct PerPacketBenchmark {
  let sizes: [Int]
  let repeatCount: Int
  let rounds: Int
  let samples: Int
  let objectPath: String
  let bpffs: String
  let seed: Int
  static let backends = 3

  init(_ options: Options) throws {
    sizes = try options.ints("services", default: [1, 1000, 10000, 50000])
    repeatCount = try options.int("repeat", default: 1_000_000)
    rounds = max(1, try options.int("rounds", default: 10))
    samples = max(1, try options.int("samples", default: 1000))
    objectPath = try options.objectPath()
    bpffs = try options.bpffs()
    seed = try options.int("seed", default: 1)
    guard sizes.allSatisfy({ $0 <= Int(UInt16.max) }) else {
      throw Options.Invalid(description: "--services: at most 65535 (rev-NAT ids are 16-bit)")
    }
  }

  /// The samples of one service count.
  final class Subject {
    let services: Int
    let layout: ServiceLayout
    let datapath: LoadedDatapath
    let program: BPFProgram
    var programmingMilliseconds = 0.0
    var connections = 0
    var firstPacket: [UInt32] = []
    var establishedSingle: [UInt32] = []
    /// A packet to no service, one run at a time: what a single run costs beyond the program
    /// (the test-run harness and cold caches), subtracted for the "net" first-packet figure.
    var missSingle: [UInt32] = []
    var established: [Double] = []
    var miss: [Double] = []
    var nonIP: [Double] = []

    init(services: Int, conntrack: Int, bench: PerPacketBenchmark) throws {
      self.services = services
      layout = ServiceLayout(services: services, backendsPerService: PerPacketBenchmark.backends)
      datapath = try LoadedDatapath(
        objectPath: bench.objectPath, bpffs: bench.bpffs, name: "per-packet-\(services)",
        services: services, backendsPerService: PerPacketBenchmark.backends,
        conntrack: conntrack)
      program = try datapath.program(named: JUNCTION_PROG_FROM_ENDPOINT)
      let state = layout.desiredState()
      (_, programmingMilliseconds) = try timed {
        try datapath.maps.apply(DesiredStateDiff(from: DesiredState(), to: state))
      }
    }

    /// A connection no earlier sample used: clients 10.1.0.0/16, source ports 1024...61023.
    func nextClient() -> (address: UInt32, port: UInt16) {
      defer { connections += 1 }
      return (0x0A01_0000 + UInt32(connections / 60000) + 1, UInt16(1024 + connections % 60000))
    }

    /// Runs `frame` once and checks it was translated to one of `service`'s backends.
    func runToService(_ frame: [UInt8], service: Int, repeat count: UInt32 = 1) throws
      -> ProgramTestRun.Result
    {
      let result = try ProgramTestRun.run(program: program, packet: frame, repeat: count)
      let destination = Frames.destination(result.output)
      let first = layout.backend(service, 0)
      guard result.verdict == .ok, destination >= first,
        destination < first + UInt32(PerPacketBenchmark.backends)
      else {
        throw Options.Invalid(
          description: "service \(service) of \(services): verdict \(result.returnValue), "
            + "destination \(dotted(destination)), expected a backend from \(dotted(first))")
      }
      return result
    }
  }

  func run() throws {
    var random = SeededGenerator(state: UInt64(seed))
    // Every first-packet sample leaves a connection (two entries: request and reply
    // direction); the LRU must hold them all or evictions would enter the numbers.
    let conntrack = 4 * rounds * samples + 2 * rounds
    var subjects: [Subject] = []
    defer { for subject in subjects { subject.datapath.unpin() } }
    for size in sizes {
      standardError("per-packet: loading the datapath with \(size) services")
      subjects.append(try Subject(services: size, conntrack: conntrack, bench: self))
    }
    let missFrame = Frames.tcp(
      source: 0x0A00_0105, destination: 0x0AFA_0001, sourcePort: 40000, destinationPort: 80,
      flags: Frames.ack)
    let arpFrame = Frames.arp()
    for round in 0..<rounds {
      standardError("per-packet: round \(round + 1) of \(rounds)")
      for offset in 0..<subjects.count {
        let subject = subjects[(round + offset) % subjects.count]
        try measure(subject, &random)
        // The floor: a TCP packet to no service (parse + one service-map miss), and ARP.
        let miss = try ProgramTestRun.run(
          program: subject.program, packet: missFrame, repeat: UInt32(repeatCount))
        guard Frames.destination(miss.output) == 0x0AFA_0001 else {
          throw Options.Invalid(description: "a packet to no service was translated")
        }
        subject.miss.append(Double(miss.duration))
        let arp = try ProgramTestRun.run(
          program: subject.program, packet: arpFrame, repeat: UInt32(repeatCount))
        subject.nonIP.append(Double(arp.duration))
      }
    }
    print(report(subjects))
  }

  /// One round of one service count: `samples` new connections, each to a service picked
  /// at random, timed one run at a time (SYN: conntrack miss, backend selection, two
  /// conntrack inserts, DNAT; then an ACK of the same connection: conntrack hit, DNAT); and
  /// one established connection to a random service timed over `repeat` runs.
  private func measure(_ subject: Subject, _ random: inout SeededGenerator) throws {
    for _ in 0..<samples {
      let service = Int.random(in: 0..<subject.services, using: &random)
      let client = subject.nextClient()
      let vip = subject.layout.vip(service)
      let syn = Frames.tcp(
        source: client.address, destination: vip, sourcePort: client.port, destinationPort: 80,
        flags: Frames.syn)
      subject.firstPacket.append(try subject.runToService(syn, service: service).duration)
      let ack = Frames.tcp(
        source: client.address, destination: vip, sourcePort: client.port, destinationPort: 80,
        flags: Frames.ack)
      subject.establishedSingle.append(try subject.runToService(ack, service: service).duration)
      let miss = Frames.tcp(
        source: client.address, destination: 0x0AFA_0001, sourcePort: client.port,
        destinationPort: 80, flags: Frames.syn)
      subject.missSingle.append(
        try ProgramTestRun.run(program: subject.program, packet: miss, repeat: 1).duration)
    }
    let service = Int.random(in: 0..<subject.services, using: &random)
    let client = subject.nextClient()
    let vip = subject.layout.vip(service)
    _ = try subject.runToService(
      Frames.tcp(
        source: client.address, destination: vip, sourcePort: client.port, destinationPort: 80,
        flags: Frames.syn), service: service)
    let ack = Frames.tcp(
      source: client.address, destination: vip, sourcePort: client.port, destinationPort: 80,
      flags: Frames.ack)
    let result = try subject.runToService(ack, service: service, repeat: UInt32(repeatCount))
    subject.established.append(Double(result.duration))
  }
}
