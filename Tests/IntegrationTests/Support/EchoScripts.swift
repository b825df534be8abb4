import Foundation

/// The python3 server and client of the hairpin and IPv6 service tests: each answer says
/// which pod gave it and whom that pod saw, and each client line adds the peer its own socket
/// saw, so one line shows both sides of the translation.
enum EchoScripts {
  /// Answers TCP connections and UDP datagrams on port 8080 with "name peer-address" (name
  /// is argv[1]); on [::] when `ipv6`, else on 0.0.0.0 (so IPv4 peers are not shown
  /// IPv4-mapped).
  static func server(ipv6: Bool) -> String {
    let family = ipv6 ? "socket.AF_INET6" : "socket.AF_INET"
    let any = ipv6 ? "::" : "0.0.0.0"
    return """
      import socket, sys, threading
      name = sys.argv[1]
      def tcp():
          s = socket.socket(\(family)); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
          s.bind(("\(any)", 8080)); s.listen(16)
          while True:
              c, peer = s.accept(); c.sendall(f"{name} {peer[0]}\\n".encode()); c.close()
      threading.Thread(target=tcp, daemon=True).start()
      u = socket.socket(\(family), socket.SOCK_DGRAM); u.bind(("\(any)", 8080))
      while True:
          _, peer = u.recvfrom(2048); u.sendto(f"{name} {peer[0]}".encode(), peer)
      """
  }

  /// argv: address [count, 1 when absent]. `count` TCP connections then `count` UDP exchanges
  /// with address:80 (the family by the address), one line each: "answer | peer-address
  /// peer-port", or "timeout" / "error:...".
  static let client = """
    import socket, sys
    vip = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    family = socket.AF_INET6 if ":" in vip else socket.AF_INET
    for _ in range(count):
        try:
            c = socket.create_connection((vip, 80), timeout=3)
            answer = c.makefile("rb").readline().decode().strip()
            print(answer, "|", *c.getpeername()[:2]); c.close()
        except socket.timeout: print("timeout")
        except OSError as e: print("error:" + str(e))
    for _ in range(count):
        u = socket.socket(family, socket.SOCK_DGRAM); u.settimeout(3)
        try:
            u.sendto(b"who", (vip, 80)); data, peer = u.recvfrom(2048)
            print(data.decode(), "|", *peer[:2])
        except socket.timeout: print("timeout")
        except OSError as e: print("error:" + str(e))
        u.close()
    """

  /// The socket LB tests' IPv4 UDP client: to address:port, connected (connect + send +
  /// recvfrom + getpeername) or not (sendto + recvfrom): "NAME from=IP:PORT [peer=IP:PORT]",
  /// or "timeout" / "error:...".
  static let udpClient = """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    target = (sys.argv[1], int(sys.argv[2]))
    try:
        if sys.argv[3] == "connected":
            s.connect(target); s.send(b"hi")
            data, source = s.recvfrom(2048)
            print(data.decode(), "from=%s:%d" % source, "peer=%s:%d" % s.getpeername())
        else:
            s.sendto(b"hi", target)
            data, source = s.recvfrom(2048)
            print(data.decode(), "from=%s:%d" % source)
    except socket.timeout: print("timeout")
    except OSError as e: print("error:" + str(e))
    """
}
