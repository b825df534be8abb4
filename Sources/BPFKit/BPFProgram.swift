import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// A loaded BPF program held by one descriptor, which this instance owns and closes. The
/// program stays in the kernel while any descriptor, pin or tc filter refers to it.
public final class BPFProgram: Sendable {
  public let fd: Int32
  /// The kernel's id: what `TrafficControl.query` reports and `bpftool prog show id` takes.
  public let id: UInt32
  /// The kernel's name for it (the C function name, cut at 15 characters).
  public let name: String

  /// Takes ownership of `fd` (closing it if the program cannot be described).
  init(owning fd: Int32, describedAs what: @autoclosure () -> String) throws(BPFError) {
    let info = try objectInfo(owning: fd, bpf_prog_info(), describedAs: what)
    self.fd = fd
    self.id = info.id
    self.name = kernelName(info.name)
  }

  deinit { close(fd) }

  /// The program pinned at `path` (by the agent); what the CNI plugin attaches.
  public static func openPinned(at path: String) throws(BPFError) -> BPFProgram {
    let fd = try BPFFilesystem.openPinned(at: path, kind: "prog")
    return try BPFProgram(owning: fd, describedAs: path)
  }

  /// Pins the program at `path` (on a bpffs), atomically replacing an existing pin: tc
  /// filters already attached keep the program they had; new attaches get this one.
  public func pin(at path: String) throws(BPFError) {
    try BPFFilesystem.pin(fd, at: path)
  }
}
