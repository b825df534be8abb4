import CLibbpf
import CSystem

#if canImport(Glibc)
  import Glibc
#endif

/// The BPF side of a node as libbpf and the kernel see it. The agent (next release) loads
/// and pins the datapath through this module; the CNI plugin itself never links libbpf
/// until it attaches programs, which keeps its start-up free of libbpf/libelf loading.
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
}

/// The libbpf this binary runs against ("1.1"); Debian 12 ships 1.1.x, which has tc hooks
/// (bpf_tc_*) but not TCX links, and the datapath is written for that.
public enum LibBPF {
  public static var version: String { "\(libbpf_major_version()).\(libbpf_minor_version())" }
}
