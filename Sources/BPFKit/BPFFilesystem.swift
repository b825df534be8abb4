import CJunctionSys
import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// The BPF side of a node as libbpf and the kernel see it. The agent loads and pins the
/// datapath through this module; the CNI plugin opens the pinned programs and attaches them.
public enum BPFFilesystem {
  /// BPF_FS_MAGIC from linux/magic.h.
  static let magic = 0xcafe_4a11

  /// True when `path` is on a mounted bpffs (where maps and programs can be pinned).
  public static func isMounted(at path: String) -> Bool {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return junction_fs_type(fd) == magic
  }

  /// Mounts a bpffs at `path` (creating the directories) unless `path` is on one already;
  /// true when it mounted. The agent's --bpf-fs directory is its own mount rather than a
  /// subdirectory of /sys/fs/bpf because `ip netns exec` remounts /sys, which would hide a
  /// pin under /sys/fs/bpf from the CNI plugin run that way. Mode 0700: pins hand out
  /// programs and maps to whoever can open them.
  @discardableResult
  public static func mount(at path: String) throws(BPFError) -> Bool {
    if isMounted(at: path) { return false }
    try makeDirectories(path)
    try checkSyscall(Glibc.mount("bpf", path, "bpf", 0, "mode=0700"), "mount bpffs at \(path)")
    return true
  }

  /// Unmounts the bpffs at `path`; nothing there (not mounted, no directory) is fine.
  /// Pinned objects go with the mount once nothing else holds them.
  public static func unmount(at path: String) throws(BPFError) {
    guard isMounted(at: path) else { return }
    try checkSyscall(umount2(path, 0), "unmount bpffs at \(path)")
  }

  /// Removes a pin (the program or map lives on while something holds it); a missing pin
  /// is fine. For stale pins the agent no longer wants.
  public static func removePin(at path: String) throws(BPFError) {
    if unlink(path) != 0 && Glibc.errno != ENOENT {
      throw .system("unlink \(path)", errno: Glibc.errno)
    }
  }

  /// mkdir -p, mode 0700 for what it creates.
  static func makeDirectories(_ path: String) throws(BPFError) {
    var prefix = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
      prefix += "/" + component
      if Glibc.mkdir(prefix, 0o700) != 0 && Glibc.errno != EEXIST {
        throw .system("mkdir \(prefix)", errno: Glibc.errno)
      }
    }
  }

  /// "prog", "map", "link" or "btf" for a BPF descriptor, from its anon inode's name
  /// ("anon_inode:bpf-prog"); nil when /proc cannot tell (not mounted).
  static func descriptorKind(_ fd: Int32) -> String? {
    var buffer = [CChar](repeating: 0, count: 64)
    let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let prefix = "anon_inode:bpf-"
    guard target.hasPrefix(prefix) else { return target }
    return String(target.dropFirst(prefix.count))
  }

  /// bpf_obj_get on `path`, checked to be a `kind` ("prog" or "map"); the caller owns the fd.
  static func openPinned(at path: String, kind: String) throws(BPFError) -> Int32 {
    let fd = try checkLibbpf(bpf_obj_get(path), "bpf_obj_get \(path)")
    if let found = descriptorKind(fd), found != kind {
      close(fd)
      throw .wrongKind(path: path, expected: kind, found: found)
    }
    return fd
  }

  /// Pins `fd` at `path`, replacing whatever is pinned there without a moment where the path
  /// is missing: pin under a temporary name in the same directory, then rename(2) over the
  /// old pin (bpffs implements rename), so a CNI plugin opening the pin concurrently gets
  /// either the old or the new object, never ENOENT. (The temporary name has no dot: bpffs
  /// refuses names with one, EPERM.)
  static func pin(_ fd: Int32, at path: String) throws(BPFError) {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let temporary = "\(directory)/\(name)-pinning-\(getpid())"
    _ = unlink(temporary)
    try checkLibbpf(bpf_obj_pin(fd, temporary), "bpf_obj_pin \(temporary)")
    if rename(temporary, path) != 0 {
      let code = Glibc.errno
      _ = unlink(temporary)
      throw .system("rename \(temporary) to \(path)", errno: code)
    }
  }
}
