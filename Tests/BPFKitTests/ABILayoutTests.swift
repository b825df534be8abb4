import BPFKit
import DatapathABI
import XCTest

/// Pins the map ABI (bpf/junction_abi.h) as Swift sees it to the layout the BPF C compiles
/// to. The numbers are stated here on purpose, not computed: a change to the header shows
/// up as a failing literal, and pinned maps of a running node would no longer match (so
/// bump JUNCTION_ABI_VERSION). The C side is checked by loading the object: libbpf reuses a
/// pinned map only when key and value sizes agree, and BPFMap refuses a Swift type whose
/// size differs from the map's.
final class ABILayoutTests: XCTestCase {
  /// Size, stride and alignment equal: no tail padding that C's sizeof would count and
  /// Swift's size would not.
  private func assertLayout<T>(
    _ type: T.Type, size: Int, alignment: Int, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(MemoryLayout<T>.size, size, "size of \(T.self)", file: file, line: line)
    XCTAssertEqual(MemoryLayout<T>.stride, size, "stride of \(T.self)", file: file, line: line)
    XCTAssertEqual(
      MemoryLayout<T>.alignment, alignment, "alignment of \(T.self)", file: file, line: line)
  }

  func testEndpointKey() {
    assertLayout(junction_endpoint_key.self, size: 4, alignment: 4)
    XCTAssertEqual(MemoryLayout<junction_endpoint_key>.offset(of: \.ifindex), 0)
  }

  func testEndpointCounters() {
    assertLayout(junction_endpoint_counters.self, size: 32, alignment: 8)
    XCTAssertEqual(MemoryLayout<junction_endpoint_counters>.offset(of: \.from_packets), 0)
    XCTAssertEqual(MemoryLayout<junction_endpoint_counters>.offset(of: \.from_bytes), 8)
    XCTAssertEqual(MemoryLayout<junction_endpoint_counters>.offset(of: \.to_packets), 16)
    XCTAssertEqual(MemoryLayout<junction_endpoint_counters>.offset(of: \.to_bytes), 24)
  }

  func testDropKey() {
    assertLayout(junction_drop_key.self, size: 8, alignment: 4)
    XCTAssertEqual(MemoryLayout<junction_drop_key>.offset(of: \.reason), 0)
    XCTAssertEqual(MemoryLayout<junction_drop_key>.offset(of: \.direction), 4)
  }

  func testDropCounters() {
    assertLayout(junction_drop_counters.self, size: 16, alignment: 8)
    XCTAssertEqual(MemoryLayout<junction_drop_counters>.offset(of: \.packets), 0)
    XCTAssertEqual(MemoryLayout<junction_drop_counters>.offset(of: \.bytes), 8)
  }

  func testConstants() {
    XCTAssertEqual(JUNCTION_ABI_VERSION, 1)
    XCTAssertEqual(JUNCTION_MAP_ENDPOINT_COUNTERS, "jnc_ep_counters")
    XCTAssertEqual(JUNCTION_MAP_DROPS, "jnc_drops")
    XCTAssertEqual(JUNCTION_PROG_FROM_ENDPOINT, "from_endpoint")
    XCTAssertEqual(JUNCTION_PROG_TO_ENDPOINT, "to_endpoint")
    XCTAssertEqual(JUNCTION_ENDPOINT_COUNTERS_MAX, 16384)
    XCTAssertEqual(JUNCTION_DROPS_MAX, 1024)
    // The kernel keeps 15 characters of a map or program name.
    for name in [
      JUNCTION_MAP_ENDPOINT_COUNTERS, JUNCTION_MAP_DROPS, JUNCTION_PROG_FROM_ENDPOINT,
      JUNCTION_PROG_TO_ENDPOINT,
    ] {
      XCTAssertLessThanOrEqual(name.utf8.count, 15, name)
      // bpffs refuses pin names with a dot.
      XCTAssertFalse(name.contains("."), name)
    }
  }

  /// Stored in pinned maps and shown to users: append only, never renumber.
  func testEnumValuesAreStable() {
    XCTAssertEqual(JUNCTION_DIR_FROM_ENDPOINT.rawValue, 0)
    XCTAssertEqual(JUNCTION_DIR_TO_ENDPOINT.rawValue, 1)
    let reasons: [(junction_drop_reason, UInt32)] = [
      (JUNCTION_DROP_OK, 0), (JUNCTION_DROP_UNKNOWN, 1), (JUNCTION_DROP_INVALID_PACKET, 2),
      (JUNCTION_DROP_UNSUPPORTED_L3, 3), (JUNCTION_DROP_NO_SERVICE, 4),
      (JUNCTION_DROP_NO_BACKEND, 5), (JUNCTION_DROP_CT_MAP_FULL, 6),
      (JUNCTION_DROP_NAT_FAILED, 7), (JUNCTION_DROP_CSUM_FAILED, 8), (JUNCTION_DROP_POLICY, 9),
    ]
    for (reason, value) in reasons {
      XCTAssertEqual(reason.rawValue, value, "\(reason)")
    }
  }

  func testCountersSumFieldByField() {
    var total = junction_endpoint_counters()
    total.add(
      junction_endpoint_counters(from_packets: 1, from_bytes: 60, to_packets: 2, to_bytes: 120))
    total.add(
      junction_endpoint_counters(
        from_packets: .max, from_bytes: 40, to_packets: 0, to_bytes: 0))
    XCTAssertEqual(total.from_packets, 0, "wraps like the datapath's u64")
    XCTAssertEqual(total.from_bytes, 100)
    XCTAssertEqual(total.to_packets, 2)
    XCTAssertEqual(total.to_bytes, 120)
  }
}
