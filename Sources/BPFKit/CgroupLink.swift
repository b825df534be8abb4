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
  case connect6
  case sendmsg6
  case recvmsg6
  case getpeername6

  var attachType: bpf_attach_type {
    switch self {
    case .connect4: BPF_CGROUP_INET4_CONNECT
    case .sendmsg4: BPF_CGROUP_UDP4_SENDMSG
    case .recvmsg4: BPF_CGROUP_UDP4_RECVMSG
    case .getpeername4: BPF_CGROUP_INET4_GETPEERNAME
    case .connect6: BPF_CGROUP_INET6_CONNECT
    case .sendmsg6: BPF_CGROUP_UDP6_SENDMSG
    case .recvmsg6: BPF_CGROUP_UDP6_RECVMSG
    case .getpeername6: BPF_CGROUP_INET6_GETPEERNAME
    }
  }
}

/// A program attached to a cgroup through a BPF link that this instance owns. From `attach`,
/// the attachment lasts exactly as long as the link's descriptor: closing it (deinit,
/// `detach`, or the process exiting, crash included) takes the program off the cgroup, so
/// nothing is left attached by a process that is gone. From `attachPinned`, the link's pin
/// holds it too, and it stays until the pin goes (`removePinned`). Other programs on the same hook (another agent's,
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

  /// Attaches `program` on `hook` of the cgroup v2 directory `cgroupPath` through a link
  /// pinned at `pin` (on a bpffs), so the attachment outlives this process, killed
  /// included, until the pin is removed (`removePinned`) or its bpffs unmounted: closing this
  /// instance's descriptor (`detach`, deinit) then only lets go of it. When `pin` already
  /// holds a link on the same cgroup and hook (a previous run's), its program is replaced in
  /// place (BPF_LINK_UPDATE: atomic, so no socket ever finds the hook empty); a pinned link
  /// on another cgroup or hook (another `--cgroup-root`, a cgroup removed since) is detached
  /// and replaced by a new one.
  public static func attachPinned(
    _ program: BPFProgram, to cgroupPath: String, hook: CgroupHook, pin: String
  ) throws(BPFError) -> CgroupLink {
    let cgroup = try cgroupID(cgroupPath)
    if let fd = try? BPFFilesystem.openPinned(at: pin, kind: "link") {
      if let target = linkTarget(fd), target == (cgroup, hook.attachType.rawValue),
        bpf_link_update(fd, program.fd, nil) == 0
      {
        return CgroupLink(fd: fd, hook: hook, programID: program.id)
      }
      _ = bpf_link_detach(fd)
      close(fd)
      _ = unlink(pin)
    }
    let link = try attach(program, to: cgroupPath, hook: hook)
    try BPFFilesystem.pin(link.fd, at: pin)
    return link
  }

  /// Takes the link pinned at `pin` off its cgroup and removes the pin; false when nothing
  /// was pinned there.
  @discardableResult
  public static func removePinned(_ pin: String) -> Bool {
    guard let fd = try? BPFFilesystem.openPinned(at: pin, kind: "link") else { return false }
    _ = bpf_link_detach(fd)
    close(fd)
    _ = unlink(pin)
    return true
  }

  /// The cgroup id of a cgroup v2 directory: its inode number (kernfs gives a cgroup
  /// directory its id as the inode number on 64-bit kernels).
  static func cgroupID(_ path: String) throws(BPFError) -> UInt64 {
    var status = stat()
    try checkSyscall(stat(path, &status), "stat \(path)")
    return UInt64(status.st_ino)
  }

  /// (cgroup id, attach type) of the cgroup link `fd`; nil for another kind of link.
  static func linkTarget(_ fd: Int32) -> (UInt64, UInt32)? {
    var info = bpf_link_info()
    var length = UInt32(MemoryLayout<bpf_link_info>.size)
    guard bpf_obj_get_info_by_fd(fd, &info, &length) == 0,
      info.type == BPF_LINK_TYPE_CGROUP.rawValue
    else { return nil }
    return (info.cgroup.cgroup_id, info.cgroup.attach_type)
  }

  /// Takes the program off the cgroup (closing the link); a second call does nothing.
  /// For a pinned link (`attachPinned`) this only closes this process's descriptor: the
  /// pin keeps it attached.
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
    return try attachedProgramIDs(
      target: cgroup, attachType: hook.attachType, "bpf_prog_query \(cgroupPath) (\(hook))")
  }
}
