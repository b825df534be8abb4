import CJunctionSys

#if canImport(Glibc)
  import Glibc
#endif

/// The cgroup v2 hierarchy, where socket programs attach. A machine may have only cgroup v1
/// mounted (or v2 somewhere the caller does not know); mounting cgroup2 at another path is
/// always possible and gives the one unified hierarchy, whose root holds every process not
/// placed in a v2 cgroup.
public enum CgroupFilesystem {
  /// CGROUP2_SUPER_MAGIC from linux/magic.h.
  static let magic = 0x6367_7270

  /// True when `path` is a directory on a cgroup2 filesystem (a cgroup).
  public static func isCgroup2(_ path: String) -> Bool {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return junction_fs_type(fd) == magic
  }

  /// Mounts cgroup2 at the existing directory `path`.
  public static func mount(at path: String) throws(BPFError) {
    try checkSyscall(Glibc.mount("cgroup2", path, "cgroup2", 0, nil), "mount cgroup2 at \(path)")
  }

  /// Unmounts what is mounted at `path` (the cgroup2 the caller mounted there).
  public static func unmount(at path: String) throws(BPFError) {
    try checkSyscall(umount2(path, 0), "unmount cgroup2 at \(path)")
  }
}
