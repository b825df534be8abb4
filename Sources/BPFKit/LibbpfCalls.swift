import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

// How BPFKit calls libbpf: result checking, descriptor ownership, and opts structs.

/// libbpf 1.x returns a negative errno (and sets errno); the raw syscalls return -1 and set
/// errno. Both end up here as one `BPFError.system`.
@inline(__always)
@discardableResult
func checkLibbpf(_ result: Int32, _ operation: @autoclosure () -> String) throws(BPFError)
  -> Int32
{
  if result < 0 { throw .system(operation(), errno: -result) }
  return result
}

@inline(__always)
@discardableResult
func checkSyscall(_ result: Int32, _ operation: @autoclosure () -> String) throws(BPFError)
  -> Int32
{
  if result < 0 { throw .system(operation(), errno: Glibc.errno) }
  return result
}

/// The ids of the programs attached to `target` (a cgroup's descriptor, or an interface index
/// for tcx) at `attachType`, by BPF_PROG_QUERY. Programs may come and go between the count
/// and the ids: an ENOSPC with a larger count is retried with that count.
func attachedProgramIDs(
  target: Int32, attachType: bpf_attach_type, _ operation: @autoclosure () -> String
) throws(BPFError) -> [UInt32] {
  var capacity: UInt32 = 8
  while true {
    var ids = [UInt32](repeating: 0, count: Int(capacity))
    var count = capacity
    let result = bpf_prog_query(target, attachType, 0, nil, &ids, &count)
    if result == 0 { return Array(ids.prefix(Int(count))) }
    if -result == ENOSPC, count > capacity {
      capacity = count
      continue
    }
    throw .system(operation(), errno: -result)
  }
}

/// A second descriptor for `fd`, close-on-exec, that the caller owns. Programs and maps taken
/// from a BPFObject get their own descriptor this way, so they outlive the object.
func duplicate(_ fd: Int32, _ what: @autoclosure () -> String) throws(BPFError) -> Int32 {
  try checkSyscall(fcntl(fd, F_DUPFD_CLOEXEC, 3), "dup \(what())")
}

/// The `sz` to put in a libbpf opts struct (what LIBBPF_OPTS does in C): the offset just
/// past its last field (`<struct>__last_field` in libbpf.h), not MemoryLayout.size. libbpf
/// rejects (EINVAL, "has non-zero extra bytes") an opts whose bytes between that field and
/// `sz` are not zero, and Swift does not keep padding bytes zero: the trailing `size_t :0`
/// padding of bpf_tc_hook and bpf_tc_opts holds whatever was on the stack.
func libbpfOptionsSize<Options, Field>(_ lastField: KeyPath<Options, Field>) -> Int {
  MemoryLayout<Options>.offset(of: lastField)! + MemoryLayout<Field>.size
}

/// The kernel's description of the program or map behind `fd` (`bpf_prog_info`,
/// `bpf_map_info`), closing `fd` when there is none: the constructors that take ownership
/// of a descriptor must not leak it when they fail.
func objectInfo<Info>(owning fd: Int32, _ empty: Info, describedAs what: () -> String)
  throws(BPFError) -> Info
{
  var info = empty
  var length = UInt32(MemoryLayout<Info>.size)
  let result = bpf_obj_get_info_by_fd(fd, &info, &length)
  if result < 0 {
    close(fd)
    throw .system("bpf_obj_get_info_by_fd \(what())", errno: -result)
  }
  return info
}

/// A NUL-padded fixed-size C name (`info.name`) as a String.
func kernelName<Tuple>(_ name: Tuple) -> String {
  withUnsafeBytes(of: name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}
