import BPFKit
import DatapathABI
import ServiceCore

/// Per-packet cost of from_endpoint (the pod's egress: service lookup, conntrack, DNAT) with
/// BPF_PROG_TEST_RUN, at several service counts loaded side by side and measured in
/// interleaved rounds (the order of the counts rotates every round), so drift on a shared
/// machine hits every count alike. What is timed is the kernel's own measurement: the
/// average duration of the program over `repeat` runs (bpf_test_run's ktime around the loop).
/// With `--families ipv4,ipv6` every count is loaded once per family, and both families'
/// copies take part in the same rotation (bench/ipv6.sh).
struct PerPacketBenchmark {
  let sizes: [Int]
  let families: [ServiceLayout.Family]
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
    families = try (options.string("families") ?? "ipv4").split(separator: ",").map {
      guard let family = ServiceLayout.Family(rawValue: String($0)) else {
        throw Options.Invalid(description: "--families: \($0) is neither ipv4 nor ipv6")
      }
      return family
    }
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
    /// to_endpoint: the client's side, where a reply gets the VIP back as its source.
    let replyProgram: BPFProgram
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
    /// The established connection's reply through to_endpoint (reverse NAT), repeat=R.
    var reply: [Double] = []

    init(
      services: Int, family: ServiceLayout.Family, conntrack: Int, bench: PerPacketBenchmark
    ) throws {
      self.services = services
      layout = ServiceLayout(
        services: services, backendsPerService: PerPacketBenchmark.backends, family: family)
      datapath = try LoadedDatapath(
        objectPath: bench.objectPath, bpffs: bench.bpffs,
        name: "per-packet-\(family.rawValue)-\(services)",
        services: services, backendsPerService: PerPacketBenchmark.backends,
        conntrack: conntrack)
      program = try datapath.program(named: JUNCTION_PROG_FROM_ENDPOINT)
      replyProgram = try datapath.program(named: JUNCTION_PROG_TO_ENDPOINT)
      let state = layout.desiredState()
      (_, programmingMilliseconds) = try timed {
        try datapath.maps.apply(DesiredStateDiff(from: DesiredState(), to: state))
      }
    }

    /// A connection no earlier sample used: clients 10.1.0.0/16 (IPv6: fd00:1::/64), source
    /// ports 1024...61023.
    func nextClient() -> (address: [UInt8], port: UInt16) {
      defer { connections += 1 }
      let host = UInt32(connections / 60000) + 1
      let address =
        layout.family == .ipv6
        ? Frames.bytes(0xfd00_0001) + [UInt8](repeating: 0, count: 8) + Frames.bytes(host)
        : Frames.bytes(0x0A01_0000 + host)
      return (address, UInt16(1024 + connections % 60000))
    }

    /// A destination that is no service: 10.250.0.1 or fd00:250::1.
    var noService: [UInt8] {
      layout.family == .ipv6
        ? Frames.bytes(0xfd00_0250) + [UInt8](repeating: 0, count: 11) + [1]
        : Frames.bytes(0x0AFA_0001)
    }

    /// Runs `frame` once and checks it was translated to one of `service`'s backends.
    func runToService(_ frame: [UInt8], service: Int, repeat count: UInt32 = 1) throws
      -> ProgramTestRun.Result
    {
      let result = try ProgramTestRun.run(program: program, packet: frame, repeat: count)
      let destination = Frames.destination(result.output)
      let backends = (0..<PerPacketBenchmark.backends).map { layout.backendAddress(service, $0) }
      guard result.verdict == .next, backends.contains(destination) else {
        throw Options.Invalid(
          description: "service \(service) of \(services): verdict \(result.returnValue), "
            + "destination \(text(destination)), expected one of \(backends.map(text))")
      }
      return result
    }

    /// Runs the backend's reply to `client` through to_endpoint `count` times and checks
    /// its source came back as `service`'s VIP:80.
    func runReply(
      from backend: [UInt8], to client: (address: [UInt8], port: UInt16), service: Int,
      repeat count: UInt32
    ) throws -> ProgramTestRun.Result {
      let frame = Frames.tcp(
        source: backend, destination: client.address, sourcePort: 8080,
        destinationPort: client.port, flags: Frames.ack)
      let result = try ProgramTestRun.run(program: replyProgram, packet: frame, repeat: count)
      guard result.verdict == .next, Frames.source(result.output) == layout.vipAddress(service)
      else {
        throw Options.Invalid(
          description: "reply of service \(service) of \(services): verdict "
            + "\(result.returnValue), source \(text(Frames.source(result.output)))")
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
    // Size-major: the two families' copies of a count sit next to each other in the
    // rotation, so they are measured close in time and their per-round ratio is paired.
    for size in sizes {
      for family in families {
        standardError("per-packet: loading the datapath with \(size) \(family) services")
        subjects.append(
          try Subject(services: size, family: family, conntrack: conntrack, bench: self))
      }
    }
    let arpFrame = Frames.arp()
    for round in 0..<rounds {
      standardError("per-packet: round \(round + 1) of \(rounds)")
      for offset in 0..<subjects.count {
        let subject = subjects[(round + offset) % subjects.count]
        try measure(subject, &random)
        // The floor: a TCP packet to no service (parse + one service-map miss), and ARP.
        let missFrame = Frames.tcp(
          source: subject.nextClient().address, destination: subject.noService,
          sourcePort: 40000, destinationPort: 80, flags: Frames.ack)
        let miss = try ProgramTestRun.run(
          program: subject.program, packet: missFrame, repeat: UInt32(repeatCount))
        guard Frames.destination(miss.output) == subject.noService else {
          throw Options.Invalid(description: "a packet to no service was translated")
        }
        subject.miss.append(Double(miss.duration))
        let arp = try ProgramTestRun.run(
          program: subject.program, packet: arpFrame, repeat: UInt32(repeatCount))
        subject.nonIP.append(Double(arp.duration))
      }
    }
    if families.count == 1 {
      print(report(subjects))
    } else {
      print(familyReport(subjects))
    }
  }

  /// One round of one service count: `samples` new connections, each to a service picked
  /// at random, timed one run at a time (SYN: conntrack miss, backend selection, two
  /// conntrack inserts, DNAT; then an ACK of the same connection: conntrack hit, DNAT); and
  /// one established connection to a random service timed over `repeat` runs.
  private func measure(_ subject: Subject, _ random: inout SeededGenerator) throws {
    for _ in 0..<samples {
      let service = Int.random(in: 0..<subject.services, using: &random)
      let client = subject.nextClient()
      let vip = subject.layout.vipAddress(service)
      let syn = Frames.tcp(
        source: client.address, destination: vip, sourcePort: client.port, destinationPort: 80,
        flags: Frames.syn)
      subject.firstPacket.append(try subject.runToService(syn, service: service).duration)
      let ack = Frames.tcp(
        source: client.address, destination: vip, sourcePort: client.port, destinationPort: 80,
        flags: Frames.ack)
      subject.establishedSingle.append(try subject.runToService(ack, service: service).duration)
      let miss = Frames.tcp(
        source: client.address, destination: subject.noService, sourcePort: client.port,
        destinationPort: 80, flags: Frames.syn)
      subject.missSingle.append(
        try ProgramTestRun.run(program: subject.program, packet: miss, repeat: 1).duration)
    }
    let service = Int.random(in: 0..<subject.services, using: &random)
    let client = subject.nextClient()
    let vip = subject.layout.vipAddress(service)
    let opened = try subject.runToService(
      Frames.tcp(
        source: client.address, destination: vip, sourcePort: client.port, destinationPort: 80,
        flags: Frames.syn), service: service)
    let ack = Frames.tcp(
      source: client.address, destination: vip, sourcePort: client.port, destinationPort: 80,
      flags: Frames.ack)
    let result = try subject.runToService(ack, service: service, repeat: UInt32(repeatCount))
    subject.established.append(Double(result.duration))
    let reply = try subject.runReply(
      from: Frames.destination(opened.output), to: client, service: service,
      repeat: UInt32(repeatCount))
    subject.reply.append(Double(reply.duration))
  }
}
