#if canImport(Glibc)
  import Glibc
#endif

/// What BPFKit throws; `description` is one line naming the operation and what it was on (a
/// path, a map, an interface), fit for a log line or a CNI error's details.
public enum BPFError: Error, CustomStringConvertible, Equatable, Sendable {
  /// A system call or libbpf call failed with `errno`. The string names the call and its
  /// subject, e.g. "bpf_obj_pin /run/junction/bpf/from_endpoint".
  case system(String, errno: Int32)
  /// The object has no program or map of that name, or a path holds nothing.
  case notFound(String)
  /// A pinned path holds another kind of BPF object than asked for (a map, not a program).
  case wrongKind(path: String, expected: String, found: String)
  /// The call cannot work as asked: a key type of the wrong size, a per-CPU map read as a
  /// plain one, a program taken from an object not yet loaded.
  case invalid(String)

  public var description: String {
    switch self {
    case .system(let operation, let code):
      "\(operation): \(String(cString: strerror(code))) (errno \(code))"
    case .notFound(let what):
      "\(what) does not exist"
    case .wrongKind(let path, let expected, let found):
      "\(path) is a \(found), not a \(expected)"
    case .invalid(let what):
      what
    }
  }

  /// The errno of a failed call; 0 for errors that are not a failed call.
  public var errno: Int32 {
    if case .system(_, let code) = self { return code }
    return 0
  }

  /// Nothing there: no such pin, map entry, interface, program or map.
  public var isNotFound: Bool {
    switch self {
    case .notFound: true
    case .system(_, let code): code == ENOENT || code == ENODEV
    default: false
    }
  }
}
