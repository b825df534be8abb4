import CNIKit

/// One of the node's external devices (`--devices`) as the agent needs it for north-south
/// traffic: where NodePorts listen, which address SNAT uses, and the MTU a DSR option must
/// fit in.
public struct NodeDevice: Equatable, Sendable {
  public var name: String
  public var index: Int32
  public var mtu: Int
  /// Its IPv4 addresses, in the order the kernel lists them (the first is the SNAT source).
  public var addresses: [IPAddress]
  /// Its global IPv6 addresses (link-local fe80::/10 left out: not an address a client can
  /// reach without naming the link, and Cilium once picked one by mistake, cilium#36752), in
  /// the kernel's order (the first is the IPv6 SNAT source). May be empty.
  public var addresses6: [IPAddress]

  public init(
    name: String, index: Int32, mtu: Int, addresses: [IPAddress], addresses6: [IPAddress] = []
  ) {
    self.name = name
    self.index = index
    self.mtu = mtu
    self.addresses = addresses
    self.addresses6 = addresses6
  }
}

extension IPAddress {
  /// fe80::/10.
  public var isIPv6LinkLocal: Bool { !isIPv4 && bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 }
}

/// Why the node's devices cannot be served; `description` is one line for a start failure.
public enum NodeDeviceProblem: Error, Equatable, CustomStringConvertible {
  case missing(String)
  case noIPv4Address(String)
  case netlink(String)

  public var description: String {
    switch self {
    case .missing(let name): "device \(name) (--devices) does not exist"
    case .noIPv4Address(let name):
      "device \(name) (--devices) has no IPv4 address to serve NodePorts on"
    case .netlink(let why): "cannot read the devices: \(why)"
    }
  }
}

public enum NodeDevices {
  /// The named devices in the calling thread's network namespace, read once (the agent does
  /// this at start). Every device must exist and have an IPv4 address.
  public static func read(_ names: [String]) throws(NodeDeviceProblem) -> [NodeDevice] {
    guard !names.isEmpty else { return [] }
    do {
      let socket = try RouteSocket()
      var devices: [NodeDevice] = []
      for name in names {
        guard let link = try socket.link(named: name) else { throw NodeDeviceProblem.missing(name) }
        let all = try socket.addresses(index: link.index).map(\.address)
        let addresses = all.filter(\.isIPv4)
        guard !addresses.isEmpty else { throw NodeDeviceProblem.noIPv4Address(name) }
        let addresses6 = all.filter { !$0.isIPv4 && !$0.isIPv6LinkLocal }
        devices.append(
          NodeDevice(
            name: name, index: link.index, mtu: link.mtu, addresses: addresses,
            addresses6: addresses6))
      }
      return devices
    } catch let problem as NodeDeviceProblem {
      throw problem
    } catch {
      throw .netlink("\(error)")
    }
  }

  /// Every IPv4 address of `devices`, then every global IPv6 one, each once, in device
  /// order: the node addresses NodePorts are frontends on.
  public static func addresses(of devices: [NodeDevice]) -> [IPAddress] {
    var seen: Set<IPAddress> = []
    return (devices.flatMap(\.addresses) + devices.flatMap(\.addresses6)).filter {
      seen.insert($0).inserted
    }
  }
}
