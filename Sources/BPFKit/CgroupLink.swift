import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// Where in a cgroup a socket program hooks in (the cgroup sock_addr attach types BPFKit's
/// users need).
public enum CgroupHook: Sendable, CaseIterable {
  case connect4
  case sendmsg4
  case recvmsg4
  case getpeername4

  var attachType: bpf_attach_type {
    switch self {
    case .connect4: BPF_CGROUP_INET4_CONNECT
    case .sendmsg4: BPF_CGROUP_UDP4_SENDMSG
    case .recvmsg4: BPF_CGROUP_UDP4_RECVMSG
    case .getpeername4: BPF_CGROUP_INET4_GETPEERNAME
    }
  }
}

/// A program attached to a cgroup through a BPF link that this instance owns. The
/// attachment lasts exactly as long as the link's descriptor: closing it (deinit, `detach`,
/// or the process exiting, crash included) takes the program off the cgroup, so nothing is
/// left attached by a process that is gone. Other programs on the same hook (another agent's,
/// systemd's) are untouched: links always attach in multi mode.
public final class CgroupLink {
  public let fd: Int32
  public let hook: CgroupHook
  /// The attached program's kernel id.
  public let programID: UInt32
  private var isOpen = true

  private init(fd: Int32, hook: CgroupHook, programID: UInt32) {
    self.fd = fd
    self.hook = hook
    self.programID = programID
  }

  deinit { detach() }

  /// Attaches `program` on `hook` of the cgroup v2 directory `cgroupPath`.
  public static func attach(_ program: BPFProgram, to cgroupPath: String, hook: CgroupHook)
    throws(BPFError) -> CgroupLink
  {
    let cgroup = try checkSyscall(
      open(cgroupPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open cgroup \(cgroupPath)")
    defer { close(cgroup) }
    let fd = try checkLibbpf(
      bpf_link_create(program.fd, cgroup, hook.attachType, nil),
      "bpf_link_create \(program.name) on \(cgroupPath) (\(hook))")
    return CgroupLink(fd: fd, hook: hook, programID: program.id)
  }

  /// Takes the program off the cgroup (closing the link); a second call does nothing.
  public func detach() {
    guard isOpen else { return }
    isOpen = false
    close(fd)
  }

  /// The ids of the programs attached directly to the cgroup at `cgroupPath` on `hook` (not
  /// inherited ones), whoever attached them.
  public static func attachedPrograms(at cgroupPath: String, hook: CgroupHook) throws(BPFError)
    -> [UInt32]
  {
    let cgroup = try checkSyscall(
      open(cgroupPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open cgroup \(cgroupPath)")
    defer { close(cgroup) }
    // The count first, then the ids: programs may come and go in between, so retry on
    // ENOSPC with the larger count the kernel reports.
    var capacity: UInt32 = 64
    while true {
      var ids = [UInt32](repeating: 0, count: Int(capacity))
      var count = capacity
      let result = bpf_prog_query(cgroup, hook.attachType, 0, nil, &ids, &count)
      if result == 0 { return Array(ids.prefix(Int(count))) }
      if -result == ENOSPC, count > capacity {
        capacity = count
        continue
      }
      throw .system("bpf_prog_query \(cgroupPath) (\(hook))", errno: -result)
    }
  }
}
