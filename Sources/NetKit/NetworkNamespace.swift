import CJunctionSys

#if canImport(Glibc)
  import Glibc
#endif

/// A network namespace held open by file descriptor (a CNI_NETNS path such as
/// /var/run/netns/NAME or /proc/PID/ns/net).
///
/// Junction never runs code "inside" a namespace on another thread: it enters on the
/// calling thread only long enough to open netlink sockets or sysctl files there, which
/// stay bound to that namespace afterwards (see `perform`).
public final class NetworkNamespace {
  public let path: String
  public let fd: Int32

  /// NSFS_MAGIC from linux/magic.h: what statfs reports for namespace files.
  private static let nsfsMagic = 0x6e73_6673

  private init(path: String, fd: Int32) {
    self.path = path
    self.fd = fd
  }

  deinit { close(fd) }

  /// Opens `path`; `.notFound` when nothing is there, `.notANamespace` when it is some
  /// other file (a regular file, a directory, /dev/null).
  public static func open(_ path: String) throws(NetKitError) -> NetworkNamespace {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      let code = errno
      if code == ENOENT || code == ENOTDIR { throw .notFound("network namespace \(path)") }
      throw .system("open \(path)", code)
    }
    guard junction_fs_type(fd) == nsfsMagic else {
      close(fd)
      throw .notANamespace(path)
    }
    return NetworkNamespace(path: path, fd: fd)
  }

  /// The namespace the calling thread is in now.
  public static func current() throws(NetKitError) -> NetworkNamespace {
    try open("/proc/thread-self/ns/net")
  }

  /// Device and inode: equal for two handles on the same namespace.
  public var identity: (dev: UInt64, ino: UInt64) {
    var info = stat()
    fstat(fd, &info)
    return (UInt64(info.st_dev), UInt64(info.st_ino))
  }

  public func isSame(as other: NetworkNamespace) -> Bool {
    identity == other.identity
  }

  /// Runs `body` with the calling thread switched into this namespace, then switches back
  /// even when `body` throws. Keep `body` short and synchronous: only this thread moves.
  public func perform<T>(_ body: () throws(NetKitError) -> T) throws(NetKitError) -> T {
    let home = try NetworkNamespace.current()
    guard junction_setns_net(fd) == 0 else { throw .system("setns \(path)", errno) }
    defer {
      // Failing to return would leave the rest of the call in the pod's namespace.
      if junction_setns_net(home.fd) != 0 {
        fatalError("cannot return to the original network namespace: errno \(errno)")
      }
    }
    return try body()
  }
}
