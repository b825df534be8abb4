import AgentCore
import XCTest

/// Which capability a refused call lacked, from a CapEff line.
final class CapabilitiesTests: XCTestCase {
  /// CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON: bits 39, 12 and 38.
  private let datapathOnly =
    "Name:\tjunction-agent\nCapInh:\t000000c000001000\nCapPrm:\t000000c000001000\n"
    + "CapEff:\t000000c000001000\n"

  func testTheEffectiveSetIsReadFromProcStatus() throws {
    let set = try XCTUnwrap(CapabilitySet(procStatus: datapathOnly))
    XCTAssertEqual(set.bits, 0xc0_0000_1000)
    XCTAssertEqual(Capability.allCases.filter(set.contains), [.netAdmin, .perfmon, .bpf])
    XCTAssertNil(CapabilitySet(procStatus: "Name:\tx\n"))
    XCTAssertNil(CapabilitySet(procStatus: "CapEff:\tnot-hex\n"))
  }

  func testARefusalNamesTheMissingCapabilityAndWhatNeedsIt() throws {
    let withoutPerfmon = CapabilitySet(bits: 1 << 39 | 1 << 12)
    XCTAssertEqual(
      withoutPerfmon.explainRefusal(
        errno: 13, needed: Capability.datapath, doing: "loading the datapath"),
      "; the agent lacks CAP_PERFMON (loading the datapath needs CAP_BPF, CAP_NET_ADMIN "
        + "and CAP_PERFMON)")
    XCTAssertEqual(
      CapabilitySet(bits: 0).explainRefusal(errno: 1, needed: [.sysAdmin], doing: "mounting"),
      "; the agent lacks CAP_SYS_ADMIN (mounting needs CAP_SYS_ADMIN)")
    // Another errno, or nothing missing: the refusal has another cause; no hint.
    XCTAssertNil(withoutPerfmon.explainRefusal(errno: 22, needed: [.perfmon], doing: "x"))
    let all = try XCTUnwrap(CapabilitySet(procStatus: datapathOnly))
    XCTAssertNil(all.explainRefusal(errno: 13, needed: Capability.datapath, doing: "x"))
  }

  /// Before CAP_BPF and CAP_PERFMON (Linux 5.8) CAP_SYS_ADMIN was both; the kernel still
  /// takes it for either.
  func testCapSysAdminStandsInForBPFAndPerfmon() {
    let admin = CapabilitySet(bits: 1 << 21 | 1 << 12)
    XCTAssertEqual(admin.missing(Capability.datapath), [])
    XCTAssertEqual(CapabilitySet(bits: 1 << 21).missing(Capability.datapath), [.netAdmin])
  }
}
