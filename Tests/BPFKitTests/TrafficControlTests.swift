import CLibbpf
import DatapathABI
import XCTest

@testable import BPFKit

/// The endpoint programs attached the way the CNI plugin attaches them (opened from their
/// pins, tc ingress = from-endpoint, tc egress = to-endpoint) on a real veth whose peer is
/// in its own namespace, with tc(8) as the independent witness. Needs root and iproute2.
final class TrafficControlTests: XCTestCase {
  private var bpffs: ScratchBPFFilesystem?
  private var link: PodLink?
  private var object: BPFObject?

  override func setUpWithError() throws {
    try requireRoot()
    let path = try DatapathBuild.endpointObject()
    // Undo a half-done set-up here: tearDown is idempotent, and this does not depend on
    // whether XCTest runs tearDown after a throwing set-up.
    do {
      bpffs = try ScratchBPFFilesystem()
      link = try PodLink()
      object = try BPFObject.open(path: path, pinRoot: bpffs!.path)
      try object!.load()
      for name in [JUNCTION_PROG_FROM_ENDPOINT, JUNCTION_PROG_TO_ENDPOINT] {
        try object!.program(named: name).pin(at: "\(bpffs!.path)/\(name)")
      }
    } catch {
      tearDown()
      throw error
    }
  }

  override func tearDown() {
    object = nil
    link?.remove()
    link = nil
    bpffs?.remove()
    bpffs = nil
  }

  private func pinned(_ name: String) throws -> BPFProgram {
    try BPFProgram.openPinned(at: "\(bpffs!.path)/\(name)")
  }

  /// Junction's filters on one direction of the host end, as tc(8) lists them.
  private func filters(_ direction: String) throws -> [Substring] {
    try Shell.must(["tc", "filter", "show", "dev", link!.hostName, direction])
      .split(separator: "\n").filter { $0.contains(" bpf ") && $0.contains("handle") }
  }

  private func hasClsact() throws -> Bool {
    try Shell.must(["tc", "qdisc", "show", "dev", link!.hostName]).contains("clsact")
  }

  func testAttachIsIdempotentAndQueryReportsTheProgram() throws {
    let ifindex = link!.hostIndex
    let from = try pinned(JUNCTION_PROG_FROM_ENDPOINT)
    let to = try pinned(JUNCTION_PROG_TO_ENDPOINT)
    XCTAssertNil(try TrafficControl.query(ifindex: ifindex, direction: .ingress))
    XCTAssertFalse(try hasClsact())

    for _ in 0..<2 {
      try TrafficControl.attach(program: from, ifindex: ifindex, direction: .ingress)
      try TrafficControl.attach(program: to, ifindex: ifindex, direction: .egress)
      XCTAssertEqual(try TrafficControl.query(ifindex: ifindex, direction: .ingress), from.id)
      XCTAssertEqual(try TrafficControl.query(ifindex: ifindex, direction: .egress), to.id)
      let ingress = try filters("ingress")
      let egress = try filters("egress")
      XCTAssertEqual(ingress.count, 1, "\(ingress)")
      XCTAssertEqual(egress.count, 1, "\(egress)")
      XCTAssertTrue(ingress.first?.contains("handle 0x4a4e") == true, "\(ingress)")
      XCTAssertTrue(ingress.first?.contains("direct-action") == true, "\(ingress)")
      XCTAssertTrue(egress.first?.contains("id \(to.id)") == true, "\(egress)")
    }

    // Attaching another program replaces Junction's filter rather than adding one.
    try TrafficControl.attach(program: to, ifindex: ifindex, direction: .ingress)
    XCTAssertEqual(try TrafficControl.query(ifindex: ifindex, direction: .ingress), to.id)
    XCTAssertEqual(try filters("ingress").count, 1)
  }

  func testDetachAndRemoveHookLeaveNothingAndTolerateNothing() throws {
    let ifindex = link!.hostIndex
    try TrafficControl.attach(
      program: pinned(JUNCTION_PROG_FROM_ENDPOINT), ifindex: ifindex, direction: .ingress)
    XCTAssertNil(
      try TrafficControl.query(ifindex: ifindex, direction: .egress),
      "clsact present, nothing on egress")
    try TrafficControl.attach(
      program: pinned(JUNCTION_PROG_TO_ENDPOINT), ifindex: ifindex, direction: .egress)

    try TrafficControl.detach(ifindex: ifindex, direction: .ingress)
    XCTAssertNil(try TrafficControl.query(ifindex: ifindex, direction: .ingress))
    XCTAssertNotNil(try TrafficControl.query(ifindex: ifindex, direction: .egress))
    XCTAssertEqual(try filters("ingress").count, 0)
    try TrafficControl.detach(ifindex: ifindex, direction: .ingress)  // again: fine
    XCTAssertTrue(try hasClsact(), "detach leaves the qdisc")

    try TrafficControl.removeHook(ifindex: ifindex)
    XCTAssertFalse(try hasClsact())
    XCTAssertNil(try TrafficControl.query(ifindex: ifindex, direction: .egress))
    // Nothing there at all: every call is still fine.
    try TrafficControl.removeHook(ifindex: ifindex)
    try TrafficControl.detach(ifindex: ifindex, direction: .egress)
    XCTAssertNil(try TrafficControl.query(ifindex: ifindex, direction: .ingress))
  }

  func testBadInterfacesAreErrorsNotAbsence() throws {
    let program = try pinned(JUNCTION_PROG_FROM_ENDPOINT)
    XCTAssertThrowsError(try TrafficControl.query(ifindex: 0, direction: .ingress))
    XCTAssertThrowsError(
      try TrafficControl.attach(program: program, ifindex: 0x7fff_fff0, direction: .ingress)
    ) { XCTAssertEqual(($0 as? BPFError)?.isNotFound, true, "\($0)") }
    XCTAssertThrowsError(try TrafficControl.query(ifindex: 0x7fff_fff0, direction: .ingress)) {
      XCTAssertEqual(($0 as? BPFError)?.isNotFound, true, "\($0)")
    }
  }

  /// Real packets: a ping from the host to the pod end crosses to-endpoint (host end's
  /// egress) and its replies cross from-endpoint (host end's ingress), and both count
  /// under the host end's ifindex.
  func testTrafficThroughTheVethIsCountedUnderTheHostEnd() throws {
    try trafficIsCounted(on: .clsact)
  }

  func testTrafficThroughTheVethIsCountedOnTheTCXHookToo() throws {
    try requireTCX()
    try trafficIsCounted(on: .tcx)
    XCTAssertFalse(try hasClsact(), "tcx needs no qdisc")
  }

  private func trafficIsCounted(on hook: TrafficControl.Hook) throws {
    let ifindex = link!.hostIndex
    try TrafficControl.attach(
      program: pinned(JUNCTION_PROG_FROM_ENDPOINT), ifindex: ifindex, direction: .ingress,
      hook: hook)
    try TrafficControl.attach(
      program: pinned(JUNCTION_PROG_TO_ENDPOINT), ifindex: ifindex, direction: .egress, hook: hook)
    try requirePrerequisite(
      Shell.run(["ping", "-V"]).status == 0, "ping is missing (apt-get install iputils-ping)")

    try Shell.must(["ping", "-c", "3", "-i", "0.2", "-W", "2", link!.podAddress])

    let map = try BPFMap.openPinned(at: "\(bpffs!.path)/\(JUNCTION_MAP_ENDPOINT_COUNTERS)")
    let counters = try XCTUnwrap(
      map.lookupSum(
        junction_endpoint_key(ifindex: UInt32(ifindex)), as: junction_endpoint_counters.self))
    // 3 echo requests and 3 replies (98-byte frames), plus ARP/IPv6 chatter.
    XCTAssertGreaterThanOrEqual(counters.to_packets, 3)
    XCTAssertGreaterThanOrEqual(counters.from_packets, 3)
    XCTAssertGreaterThanOrEqual(counters.to_bytes, 3 * 98)
    XCTAssertGreaterThanOrEqual(counters.from_bytes, 3 * 98)
  }

  /// A test run can pretend the packet arrived on a given interface; the counters follow.
  func testTestRunCountsUnderTheInterfaceItIsGiven() throws {
    let ifindex = link!.hostIndex
    let map = try object!.map(named: JUNCTION_MAP_ENDPOINT_COUNTERS)
    let result = try ProgramTestRun.run(
      program: pinned(JUNCTION_PROG_FROM_ENDPOINT), packet: udpFrame(), ifindex: ifindex)
    XCTAssertEqual(result.returnValue, UInt32(bitPattern: -1), "TC_ACT_UNSPEC: passed on")
    let counters = try map.lookupSum(
      junction_endpoint_key(ifindex: UInt32(ifindex)), as: junction_endpoint_counters.self)
    XCTAssertEqual(counters?.from_packets, 1)
    XCTAssertEqual(counters?.from_bytes, 60)
    XCTAssertNil(
      try map.lookupSum(junction_endpoint_key(ifindex: 1), as: junction_endpoint_counters.self))
  }

  // MARK: the tcx hook

  /// This kernel (6.18 on the lab and CI machines) has tcx; a kernel before 6.6 would not, and
  /// these tests would say so rather than pass.
  private func requireTCX() throws {
    try requirePrerequisite(
      TrafficControl.kernelHasTCX(), "this kernel has no tcx hook (Linux 6.6 or later)")
  }

  /// A program of another tool's (not one of Junction's names) on the tcx hook: returns
  /// TC_ACT_UNSPEC (-1, "go on").
  private func foreignProgram() throws -> BPFProgram {
    var instructions = [
      bpf_insn(code: 0xb7, dst_reg: 0, src_reg: 0, off: 0, imm: -1),  // r0 = -1
      bpf_insn(code: 0x95, dst_reg: 0, src_reg: 0, off: 0, imm: 0),  // exit
    ]
    let fd = bpf_prog_load(
      BPF_PROG_TYPE_SCHED_CLS, "other_tool", "GPL", &instructions, instructions.count, nil)
    XCTAssertGreaterThanOrEqual(fd, 0, "bpf_prog_load: \(-fd)")
    return try BPFProgram(owning: fd, describedAs: "other_tool")
  }

  /// Another tool's program that drops every packet (TC_ACT_SHOT), as a network policy
  /// agent's does for a denied one.
  private func foreignDropProgram() throws -> BPFProgram {
    var instructions = [
      bpf_insn(code: 0xb7, dst_reg: 0, src_reg: 0, off: 0, imm: 2),  // r0 = TC_ACT_SHOT
      bpf_insn(code: 0x95, dst_reg: 0, src_reg: 0, off: 0, imm: 0),  // exit
    ]
    let fd = bpf_prog_load(
      BPF_PROG_TYPE_SCHED_CLS, "policy_tool", "GPL", &instructions, instructions.count, nil)
    XCTAssertGreaterThanOrEqual(fd, 0, "bpf_prog_load: \(-fd)")
    return try BPFProgram(owning: fd, describedAs: "policy_tool")
  }

  /// Attaches `program` on the host end's ingress after Junction's: on tcx at the end of the
  /// list, on clsact as a filter of another handle at priority 2. Returns what detaches it.
  private func attachAfterJunction(_ program: BPFProgram, on hook: TrafficControl.Hook) throws
    -> () -> Void
  {
    let ifindex = link!.hostIndex
    switch hook {
    case .tcx:
      let attachType = TrafficControl.Direction.ingress.tcxAttachType
      XCTAssertEqual(bpf_prog_attach_opts(program.fd, ifindex, attachType, nil), 0)
      return {
        withExtendedLifetime(program) { _ = bpf_prog_detach2(program.fd, ifindex, attachType) }
      }
    case .clsact:
      var tcHook = bpf_tc_hook()
      tcHook.sz = libbpfOptionsSize(\bpf_tc_hook.parent)
      tcHook.ifindex = ifindex
      tcHook.attach_point = BPF_TC_INGRESS
      _ = bpf_tc_hook_create(&tcHook)
      var options = bpf_tc_opts()
      options.sz = libbpfOptionsSize(\bpf_tc_opts.priority)
      options.handle = 7
      options.priority = 2
      options.prog_fd = program.fd
      XCTAssertEqual(bpf_tc_attach(&tcHook, &options), 0)
      return {
        var detach = bpf_tc_opts()
        detach.sz = libbpfOptionsSize(\bpf_tc_opts.priority)
        detach.handle = 7
        detach.priority = 2
        _ = bpf_tc_detach(&tcHook, &detach)
      }
    }
  }

  /// Chained after another CNI, Junction's program is not the only one on a pod's host veth:
  /// a network policy agent's (aws-network-policy-agent on EKS, Calico's eBPF programs)
  /// can run on the same hook after it. For every packet Junction passes, its program must
  /// let the hook go on (TC_ACT_UNSPEC, tcx's TCX_NEXT): TC_ACT_OK would end the filter chain
  /// (clsact) or skip every later program and all clsact filters (tcx), and the policy
  /// would never see the pod's packets. Witness: the other tool drops everything, so the
  /// pod's echo replies (host end's ingress) must be lost while it is there.
  func testAnotherToolsProgramAfterJunctionsStillSeesThePodsPackets() throws {
    try requirePrerequisite(
      Shell.run(["ping", "-V"]).status == 0, "ping is missing (apt-get install iputils-ping)")
    let cases: [(junction: TrafficControl.Hook, other: TrafficControl.Hook)] =
      TrafficControl.kernelHasTCX()
      ? [(.clsact, .clsact), (.tcx, .tcx), (.tcx, .clsact)] : [(.clsact, .clsact)]
    try requirePrerequisite(cases.count == 3, "this kernel has no tcx hook (Linux 6.6 or later)")
    let ifindex = link!.hostIndex
    let ping = ["ping", "-c", "2", "-i", "0.2", "-W", "1", link!.podAddress]
    for (junctionHook, otherHook) in cases {
      try TrafficControl.attach(
        program: pinned(JUNCTION_PROG_FROM_ENDPOINT), ifindex: ifindex, direction: .ingress,
        hook: junctionHook)
      try TrafficControl.attach(
        program: pinned(JUNCTION_PROG_TO_ENDPOINT), ifindex: ifindex, direction: .egress,
        hook: junctionHook)
      XCTAssertEqual(try Shell.run(ping).status, 0, "no traffic to begin with")
      let detachOther = try attachAfterJunction(foreignDropProgram(), on: otherHook)
      XCTAssertNotEqual(
        try Shell.run(ping).status, 0,
        "Junction on \(junctionHook) ended the hook: the other tool's program on \(otherHook) "
          + "never saw the pod's packets")
      detachOther()
      XCTAssertEqual(try Shell.run(ping).status, 0, "after the other tool's program went")
      try TrafficControl.detach(ifindex: ifindex, direction: .ingress)
      try TrafficControl.detach(ifindex: ifindex, direction: .egress)
    }
  }

  func testTCXPutsJunctionFirstAndReplacesItInPlace() throws {
    try requireTCX()
    let ifindex = link!.hostIndex
    let from = try pinned(JUNCTION_PROG_FROM_ENDPOINT)
    let to = try pinned(JUNCTION_PROG_TO_ENDPOINT)
    let other = try foreignProgram()
    XCTAssertEqual(try TrafficControl.tcxPrograms(ifindex: ifindex, direction: .ingress), [])
    // Another tool's program, at the end of an empty list.
    XCTAssertEqual(
      bpf_prog_attach_opts(other.fd, ifindex, TrafficControl.Direction.ingress.tcxAttachType, nil),
      0)
    defer {
      withExtendedLifetime(other) {
        _ = bpf_prog_detach2(other.fd, ifindex, TrafficControl.Direction.ingress.tcxAttachType)
      }
    }

    for _ in 0..<2 {
      try TrafficControl.attach(program: from, ifindex: ifindex, direction: .ingress, hook: .tcx)
      XCTAssertEqual(
        try TrafficControl.tcxPrograms(ifindex: ifindex, direction: .ingress), [from.id, other.id])
      XCTAssertEqual(try TrafficControl.query(ifindex: ifindex, direction: .ingress), from.id)
      XCTAssertEqual(
        try TrafficControl.query(ifindex: ifindex, direction: .ingress, on: .tcx), from.id)
      XCTAssertNil(try TrafficControl.query(ifindex: ifindex, direction: .ingress, on: .clsact))
    }
    XCTAssertFalse(try hasClsact(), "tcx created a clsact qdisc")
    XCTAssertNil(try TrafficControl.query(ifindex: ifindex, direction: .egress))

    // Another of Junction's programs replaces it where it stands.
    try TrafficControl.attach(program: to, ifindex: ifindex, direction: .ingress, hook: .tcx)
    XCTAssertEqual(
      try TrafficControl.tcxPrograms(ifindex: ifindex, direction: .ingress), [to.id, other.id])

    // Detach takes Junction's off and leaves the other tool's; twice is fine.
    try TrafficControl.detach(ifindex: ifindex, direction: .ingress)
    XCTAssertEqual(
      try TrafficControl.tcxPrograms(ifindex: ifindex, direction: .ingress), [other.id])
    try TrafficControl.detach(ifindex: ifindex, direction: .ingress)
    XCTAssertNil(try TrafficControl.query(ifindex: ifindex, direction: .ingress))
  }

  /// Re-attaching on the other hook moves Junction's program: never on both at once after
  /// the call, so no packet runs it twice.
  func testAttachingOnTheOtherHookMovesJunctionsProgram() throws {
    try requireTCX()
    let ifindex = link!.hostIndex
    let from = try pinned(JUNCTION_PROG_FROM_ENDPOINT)

    try TrafficControl.attach(program: from, ifindex: ifindex, direction: .ingress, hook: .clsact)
    XCTAssertEqual(try filters("ingress").count, 1)
    XCTAssertEqual(try TrafficControl.tcxPrograms(ifindex: ifindex, direction: .ingress), [])

    try TrafficControl.attach(program: from, ifindex: ifindex, direction: .ingress, hook: .tcx)
    XCTAssertEqual(try filters("ingress").count, 0, "the clsact filter stayed beside tcx")
    XCTAssertEqual(try TrafficControl.tcxPrograms(ifindex: ifindex, direction: .ingress), [from.id])
    XCTAssertNil(try TrafficControl.query(ifindex: ifindex, direction: .ingress, on: .clsact))

    try TrafficControl.attach(program: from, ifindex: ifindex, direction: .ingress, hook: .clsact)
    XCTAssertEqual(try TrafficControl.tcxPrograms(ifindex: ifindex, direction: .ingress), [])
    XCTAssertEqual(try filters("ingress").count, 1)
    XCTAssertEqual(
      try TrafficControl.query(ifindex: ifindex, direction: .ingress, on: .clsact), from.id)
  }

  func testTCXOnAMissingInterfaceIsAnError() throws {
    try requireTCX()
    let program = try pinned(JUNCTION_PROG_FROM_ENDPOINT)
    XCTAssertThrowsError(
      try TrafficControl.attach(
        program: program, ifindex: 0x7fff_fff0, direction: .ingress, hook: .tcx)
    ) { XCTAssertEqual(($0 as? BPFError)?.isNotFound, true, "\($0)") }
    XCTAssertThrowsError(
      try TrafficControl.query(ifindex: 0x7fff_fff0, direction: .ingress, on: .tcx))
  }
}
