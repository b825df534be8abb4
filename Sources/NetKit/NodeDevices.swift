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
        let addresses = try socket.addresses(index: link.index).map(\.address).filter(\.isIPv4)
        guard !addresses.isEmpty else { throw NodeDeviceProblem.noIPv4Address(name) }
        devices.append(
          NodeDevice(name: name, index: link.index, mtu: link.mtu, addresses: addresses))
      }
      return devices
    } catch let problem as NodeDeviceProblem {
      throw problem
    } catch {
      throw .netlink("\(error)")
    }
  }

  /// Every IPv4 address of `devices`, each once, in device order: the node addresses
  /// NodePorts are frontends on.
  public static func addresses(of devices: [NodeDevice]) -> [IPAddress] {
    var seen: Set<IPAddress> = []
    return devices.flatMap(\.addresses).filter { seen.insert($0).inserted }
  }
}
