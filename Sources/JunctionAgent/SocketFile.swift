import AgentCore
import Logging
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The API socket's file: refusing a live one at start, securing ours once bound, and
/// removing it at exit only when the file is still the one this process created.
final class SocketFile: Sendable {
  let path: String
  private let identity = Mutex<(dev: UInt64, ino: UInt64)?>(nil)

  init(path: String) { self.path = path }

  /// True when `path` is a stale socket (nothing accepts on it) to remove; throws when an
  /// agent answers there or the path is something else. Changes nothing.
  static func preflight(_ path: String) throws(StartFailure) -> Bool {
    var info = stat()
    guard lstat(path, &info) == 0 else {
      if errno == ENOENT || errno == ENOTDIR { return false }
      throw StartFailure("cannot inspect socket path \(path): \(String(cString: strerror(errno)))")
    }
    guard info.st_mode & S_IFMT == S_IFSOCK else {
      throw StartFailure("socket path \(path) exists and is not a socket")
    }
    switch probe(path) {
    case 0: throw StartFailure("socket \(path) is in use by another agent")
    case ECONNREFUSED: return true
    case let code:
      throw StartFailure("cannot check socket \(path): \(String(cString: strerror(code)))")
    }
  }

  /// 0 when something accepts a connection at `path`, else connect's errno.
  static func probe(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return ENAMETOOLONG }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (index, byte) in bytes.enumerated() { raw[index] = byte }
    }
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    return result == 0 ? 0 : errno
  }

  /// Mode 0600 and owner root (when running as root), whatever the umask did; remembers
  /// the file so that exit removes only this one.
  func secure(logger: Logger) {
    if chmod(path, 0o600) != 0 {
      logger.error("cannot chmod the socket", metadata: ["socket": "\(path)", "errno": "\(errno)"])
    }
    if geteuid() == 0, chown(path, 0, 0) != 0 {
      logger.error("cannot chown the socket", metadata: ["socket": "\(path)", "errno": "\(errno)"])
    }
    var info = stat()
    if lstat(path, &info) == 0 {
      identity.withLock { $0 = (UInt64(info.st_dev), UInt64(info.st_ino)) }
    }
  }

  /// True when the socket was this agent's and is gone now (then so is its config file).
  @discardableResult
  func removeIfOurs() -> Bool {
    guard let ours = identity.withLock({ $0 }) else { return false }
    var info = stat()
    guard lstat(path, &info) == 0, UInt64(info.st_dev) == ours.dev, UInt64(info.st_ino) == ours.ino
    else { return false }
    return unlink(path) == 0
  }
}
