import CLibnl

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
    return try cookie(ofSocket: fd)
  }

  /// The cookie of the namespace socket `fd` was made in (SO_NETNS_COOKIE answers for any
  /// socket family, netlink included), whichever namespace the caller is in now: no setns.
  public static func cookie(ofSocket fd: Int32) throws(NetKitError) -> UInt64 {
    var cookie: UInt64 = 0
    var length = socklen_t(MemoryLayout<UInt64>.size)
    guard getsockopt(fd, SOL_SOCKET, soNetnsCookie, &cookie, &length) == 0 else {
      throw .system("getsockopt SO_NETNS_COOKIE", errno)
    }
    return cookie
  }
}

extension RouteSocket {
  /// The cookie of the network namespace this socket is bound to: one getsockopt on the
  /// socket already open there (the CNI plugin's pod socket), no new socket, no setns.
  public func namespaceCookie() throws(NetKitError) -> UInt64 {
    try NetworkNamespace.cookie(ofSocket: nl_socket_get_fd(socket))
  }
}
