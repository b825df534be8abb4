import BPFKit
import DatapathABI
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// bpf/sock.c loads (the verifier accepts all four programs), and CgroupLink attaches them to
/// a cgroup v2 and takes them off again, with the kernel's own program query as the witness.
/// The cgroup is an empty child of a cgroup2 mounted for the test, so no process is ever
/// under the programs. Needs root.
final class CgroupLinkTests: XCTestCase {
  private var bpffs: ScratchBPFFilesystem?
  private var mountPoint: String?
  private var cgroup: String?

  override func setUpWithError() throws {
    try requireRoot()
    bpffs = try ScratchBPFFilesystem()
    let path =
      NSTemporaryDirectory() + "junction-cgroup2-\(getpid())-\(UUID().uuidString.prefix(8))"
    XCTAssertEqual(mkdir(path, 0o700), 0)
    mountPoint = path
    XCTAssertFalse(CgroupFilesystem.isCgroup2(path))
    try CgroupFilesystem.mount(at: path)
    XCTAssertTrue(CgroupFilesystem.isCgroup2(path))
    // An empty cgroup of the test's own: created by mkdir on cgroup2, holding no process.
    let child = path + "/junction-test-\(getpid())"
    XCTAssertEqual(mkdir(child, 0o755), 0)
    cgroup = child
  }

  override func tearDown() {
    if let cgroup { rmdir(cgroup) }
    if let mountPoint {
      try? CgroupFilesystem.unmount(at: mountPoint)
      rmdir(mountPoint)
    }
    cgroup = nil
    mountPoint = nil
    bpffs?.remove()
    bpffs = nil
  }

  private func loadSocketObject() throws -> BPFObject {
    let directory = (try DatapathBuild.endpointObject() as NSString).deletingLastPathComponent
    let object = try BPFObject.open(path: directory + "/sock.o", pinRoot: bpffs!.path)
    try object.load()
    return object
  }

  func testTheSocketProgramsAttachAndDetach() throws {
    let object = try loadSocketObject()
    let cgroup = try XCTUnwrap(cgroup)
    let programs: [(String, CgroupHook)] = [
      (JUNCTION_PROG_SOCK_CONNECT4, .connect4), (JUNCTION_PROG_SOCK_SENDMSG4, .sendmsg4),
      (JUNCTION_PROG_SOCK_RECVMSG4, .recvmsg4), (JUNCTION_PROG_SOCK_GETPEERNAME4, .getpeername4),
      (JUNCTION_PROG_SOCK_CONNECT6, .connect6), (JUNCTION_PROG_SOCK_SENDMSG6, .sendmsg6),
      (JUNCTION_PROG_SOCK_RECVMSG6, .recvmsg6), (JUNCTION_PROG_SOCK_GETPEERNAME6, .getpeername6),
    ]
    var links: [CgroupLink] = []
    for (name, hook) in programs {
      XCTAssertEqual(try CgroupLink.attachedPrograms(at: cgroup, hook: hook), [])
      let link = try CgroupLink.attach(object.program(named: name), to: cgroup, hook: hook)
      XCTAssertEqual(try CgroupLink.attachedPrograms(at: cgroup, hook: hook), [link.programID])
      links.append(link)
    }
    // Detaching one leaves the others; dropping the links (as a process exit does) the rest.
    links[0].detach()
    links[0].detach()
    XCTAssertEqual(try CgroupLink.attachedPrograms(at: cgroup, hook: .connect4), [])
    XCTAssertEqual(try CgroupLink.attachedPrograms(at: cgroup, hook: .sendmsg4).count, 1)
    links.removeAll()
    for (_, hook) in programs {
      XCTAssertEqual(try CgroupLink.attachedPrograms(at: cgroup, hook: hook), [], "\(hook)")
    }
  }

  func testAttachingToADirectoryThatIsNoCgroupFails() throws {
    let object = try loadSocketObject()
    XCTAssertThrowsError(
      try CgroupLink.attach(
        object.program(named: JUNCTION_PROG_SOCK_CONNECT4), to: bpffs!.path, hook: .connect4))
  }
}
