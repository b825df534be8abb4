#if canImport(Glibc)
  import Glibc
#endif

extension NetworkNamespace {
  /// SO_NETNS_COOKIE (asm-generic/socket.h; Linux >= 5.14), not in Glibc's overlay.
  private static let soNetnsCookie: Int32 = 71

  /// The kernel's cookie for the calling thread's network namespace: what
  /// bpf_get_netns_cookie returns in a BPF program for a socket of that namespace. Read from
  /// a throwaway socket, since a namespace's cookie is only exposed through its sockets.
  public static func currentCookie() throws(NetKitError) -> UInt64 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw .system("socket", errno) }
    defer { close(fd) }
    var cookie: UInt64 = 0
    var length = socklen_t(MemoryLayout<UInt64>.size)
    guard getsockopt(fd, SOL_SOCKET, soNetnsCookie, &cookie, &length) == 0 else {
      throw .system("getsockopt SO_NETNS_COOKIE", errno)
    }
    return cookie
  }
}
