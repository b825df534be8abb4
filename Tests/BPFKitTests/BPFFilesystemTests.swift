import BPFKit
import Foundation
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

  func testMountIsIdempotentAndUnmountToleratesNothingMounted() throws {
    try requireRoot()
    let path = NSTemporaryDirectory() + "junction-mount-\(getpid())/nested/bpf"
    defer {
      try? BPFFilesystem.unmount(at: path)
      _ = Shell.run(["rm", "-rf", NSTemporaryDirectory() + "junction-mount-\(getpid())"])
    }
    XCTAssertTrue(try BPFFilesystem.mount(at: path), "creates the directories and mounts")
    XCTAssertTrue(BPFFilesystem.isMounted(at: path))
    XCTAssertFalse(try BPFFilesystem.mount(at: path), "already a bpffs: nothing to do")
    try BPFFilesystem.unmount(at: path)
    XCTAssertFalse(BPFFilesystem.isMounted(at: path))
    try BPFFilesystem.unmount(at: path)
    let mounts = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
    XCTAssertFalse(mounts.contains(path), "mounted once, so gone after one unmount")
  }
}
