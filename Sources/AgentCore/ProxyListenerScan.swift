/// Pure parts of finding the node's proxy listeners (the agent's ProxyListeners puts them in
/// the datapath's JUNCTION_MAP_PROXY_LISTENERS): which TCP listening sockets /proc/net/tcp
/// shows on a port, and which /proc/PID/fd entry is one of them.
public enum ProxyListenerScan {
  /// A listening TCP socket as /proc/net/tcp shows it.
  public struct Listener: Equatable, Sendable {
    /// The bound IPv4 address, in /proc's byte order (network order read as a host integer
    /// on a little-endian machine: "0100007F" is 127.0.0.1); 0 for any address.
    public var address: UInt32
    public var port: UInt16
    public var inode: UInt64
  }

  /// The listening sockets (state 0A) in a /proc/net/tcp text, in file order.
  public static func listeners(inProcNetTCP text: String) -> [Listener] {
    var found: [Listener] = []
    for line in text.split(separator: "\n").dropFirst() {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count > 9, fields[3] == "0A" else { continue }
      let local = fields[1].split(separator: ":")
      guard local.count == 2, let address = UInt32(local[0], radix: 16),
        let port = UInt16(local[1], radix: 16), let inode = UInt64(fields[9]), inode != 0
      else { continue }
      found.append(Listener(address: address, port: port, inode: inode))
    }
    return found
  }

  /// The socket to use for `port`: one bound to any address first (what a proxy's transparent
  /// listener is), else the first on another address; nil when nothing listens there. Any
  /// member of a SO_REUSEPORT group will do: the kernel spreads over the group.
  public static func choose(_ listeners: [Listener], port: UInt16) -> Listener? {
    let onPort = listeners.filter { $0.port == port }
    return onPort.first { $0.address == 0 } ?? onPort.first
  }

  /// The socket inode of a /proc/PID/fd link target ("socket:[12345]"), else nil.
  public static func socketInode(linkTarget: String) -> UInt64? {
    guard linkTarget.hasPrefix("socket:["), linkTarget.hasSuffix("]") else { return nil }
    return UInt64(linkTarget.dropFirst("socket:[".count).dropLast())
  }

  /// What to change in the map: the wanted ports without a live entry get one, entries of
  /// ports no longer wanted go.
  public static func plan(wanted: Set<UInt16>, mapped: Set<UInt16>) -> (
    fill: [UInt16], remove: [UInt16]
  ) {
    (wanted.subtracting(mapped).sorted(), mapped.subtracting(wanted).sorted())
  }
}
