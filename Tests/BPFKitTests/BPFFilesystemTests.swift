import BPFKit
import XCTest

final class BPFFilesystemTests: XCTestCase {
  func testLibbpfIsTheOneDebian12Ships() {
    // The datapath relies on bpf_tc_* (libbpf >= 0.4) and does not use TCX (1.3).
    let parts = LibBPF.version.split(separator: ".").compactMap { Int($0) }
    XCTAssertEqual(parts.count, 2, LibBPF.version)
    XCTAssertGreaterThanOrEqual(parts[0], 1, LibBPF.version)
  }

  func testAPlainDirectoryIsNotABPFFilesystem() {
    XCTAssertFalse(BPFFilesystem.isMounted(at: "/tmp"))
    XCTAssertFalse(BPFFilesystem.isMounted(at: "/no/such/dir"))
  }
}
