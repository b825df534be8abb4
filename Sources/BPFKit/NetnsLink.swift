import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// A BPF_PROG_TYPE_SK_LOOKUP program attached to a network namespace through a BPF link,
/// pinned on a bpffs so that the attachment outlives the process that made it (an agent
/// restart keeps redirected connections working). The link is detached when its last
/// reference goes: the pin (see `removePin`) and every open descriptor. Programs of other
/// owners attached to the same namespace are untouched: netns links attach side by side.
public final class NetnsLink: Sendable {
  public let fd: Int32
  /// The attached program's kernel id.
  public let programID: UInt32

  private init(fd: Int32, programID: UInt32) {
    self.fd = fd
    self.programID = programID
  }

  deinit { close(fd) }

  /// `program` on the socket lookup of the current thread's network namespace, through the
  /// link pinned at `pin`: the pinned link's program is replaced in place (one attachment,
  /// never two, and no moment without one) when a link is pinned there already; otherwise a
  /// new link is made and pinned.
  public static func attachSocketLookup(_ program: BPFProgram, pinnedAt pin: String)
    throws(BPFError) -> NetnsLink
  {
    if access(pin, F_OK) == 0 {
      let fd = try BPFFilesystem.openPinned(at: pin, kind: "link")
      do {
        try checkLibbpf(bpf_link_update(fd, program.fd, nil), "bpf_link_update \(pin)")
      } catch {
        close(fd)
        throw error
      }
      return NetnsLink(fd: fd, programID: program.id)
    }
    let netns = try checkSyscall(
      open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), "open /proc/self/ns/net")
    defer { close(netns) }
    let fd = try checkLibbpf(
      bpf_link_create(program.fd, netns, BPF_SK_LOOKUP, nil),
      "bpf_link_create \(program.name) on the network namespace (sk_lookup)")
    do {
      try BPFFilesystem.pin(fd, at: pin)
    } catch {
      close(fd)
      throw error
    }
    return NetnsLink(fd: fd, programID: program.id)
  }

  /// Removes the pin at `pin`: the program leaves the namespace once no descriptor of the
  /// link is open either. A missing pin is fine.
  public static func removePin(at pin: String) throws(BPFError) {
    try BPFFilesystem.removePin(at: pin)
  }
}
