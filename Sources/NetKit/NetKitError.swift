import CLibnl

#if canImport(Glibc)
  import Glibc
#endif

/// What the netlink and namespace wrappers throw; `description` is one line for a log or
/// a CNI error's details.
public enum NetKitError: Error, CustomStringConvertible, Equatable {
  /// A libnl call failed; `code` is libnl's (NLE_*), not an errno.
  case netlink(String, code: Int32)
  /// A system call failed with `errno`.
  case system(String, Int32)
  case notFound(String)
  case notANamespace(String)

  public var description: String {
    switch self {
    case .netlink(let operation, let code):
      "\(operation): \(String(cString: nl_geterror(code)))"
    case .system(let operation, let code):
      "\(operation): \(String(cString: strerror(code)))"
    case .notFound(let what):
      "\(what) does not exist"
    case .notANamespace(let path):
      "\(path) is not a network namespace"
    }
  }

  /// The object asked for is not there (a link, a route, a namespace).
  public var isNotFound: Bool {
    switch self {
    case .notFound: true
    case .netlink(_, let code): code == NLE_OBJ_NOTFOUND || code == NLE_NODEV
    case .system(_, let code): code == ENOENT || code == ENODEV
    default: false
    }
  }

  public var isAlreadyExists: Bool {
    if case .netlink(_, let code) = self { return code == NLE_EXIST }
    if case .system(_, let code) = self { return code == EEXIST }
    return false
  }
}

/// libnl returns 0 or a negative NLE_* code.
@inline(__always)
func check(_ result: Int32, _ operation: @autoclosure () -> String) throws(NetKitError) {
  if result < 0 { throw .netlink(operation(), code: -result) }
}
