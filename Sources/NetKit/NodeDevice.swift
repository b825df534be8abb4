import CNIKit

/// A node device the agent serves north-south (`--devices`): what the datapath needs of it
/// (its index, the IPv4 address SNAT leaves with, the MTU the DSR option must fit in), read
/// in the calling thread's network namespace.
public struct NodeDevice: Equatable, Sendable {
  public var name: String
  public var ifindex: UInt32
  /// The first IPv4 address on the device, as its four bytes in network order.
  public var ipv4Address: [UInt8]
  public var mtu: UInt32

  public init(name: String, ifindex: UInt32, ipv4Address: [UInt8], mtu: UInt32) {
    self.name = name
    self.ifindex = ifindex
    self.ipv4Address = ipv4Address
    self.mtu = mtu
  }

  /// The device `name` in the calling thread's namespace; `.notFound` when there is no such
  /// interface or it has no IPv4 address (north-south needs one to SNAT to).
  public static func lookup(_ name: String) throws(NetKitError) -> NodeDevice {
    let socket = try RouteSocket()
    guard let link = try socket.link(named: name) else {
      throw .notFound("interface \(name)")
    }
    // The first IPv4 address, as the kernel lists them (the primary one).
    guard
      let address = try socket.addresses(index: link.index).first(where: { $0.address.isIPv4 })
    else {
      throw .notFound("an IPv4 address on \(name)")
    }
    return NodeDevice(
      name: name, ifindex: UInt32(bitPattern: link.index), ipv4Address: address.address.bytes,
      mtu: UInt32(link.mtu))
  }
}
