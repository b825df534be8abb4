import CNIKit
import NetKit

/// Chained mode's decisions, kept apart from the netlink reads so they are unit-tested:
/// which of the previous plugin's interfaces is the pod's, which addresses are the pod's,
/// and whether the interface has a host-side peer Junction can attach to.
public enum ChainedAttachment {
  /// The index in `result.interfaces` of the pod's interface: the one named `ifname` in
  /// sandbox `netns`, else the one named `ifname` in any sandbox (a runtime may spell the
  /// same namespace by another path). Interfaces without a sandbox are the node's.
  public static func podInterfaceIndex(in result: CNIResult, ifname: String, netns: String) -> Int?
  {
    result.interfaces.firstIndex { $0.name == ifname && $0.sandbox == netns }
      ?? result.interfaces.firstIndex { $0.name == ifname && $0.sandbox != nil }
  }

  /// The pod's addresses as the endpoint registers them (host prefixes, as native mode
  /// does): prevResult's IPs on the pod's interface; when prevResult ties none to it (an
  /// IPAM-style result without `interface`, or no interfaces at all), the global addresses
  /// the interface carries in the kernel.
  public static func podAddresses(
    prevResult: CNIResult, podInterface: Int?, kernelAddresses: [IPPrefix]
  ) -> [IPPrefix] {
    if let podInterface {
      let listed = prevResult.ips.filter { $0.interface == podInterface }.map(\.address)
      if !listed.isEmpty { return unique(listed.map(\.hostPrefix)) }
    }
    return unique(kernelAddresses.filter { !isLinkLocal($0.address) }.map(\.hostPrefix))
  }

  /// Why `podLink` cannot be chained, or nil when it is a veth whose peer lives in the
  /// namespace the plugin runs in. `nodeNamespaceID` is the id the pod's namespace gives
  /// the node's (nil: it has none, so no link of the pod can point there).
  public static func refusal(podLink: LinkInfo, nodeNamespaceID: Int32?) -> String? {
    let name = podLink.name
    guard podLink.kind == "veth" else {
      let kind = podLink.kind.map { "a \($0) interface" } ?? "a device without a link kind"
      return "\(name) is \(kind), not a veth: it has no peer on the node, so there is no "
        + "host-side interface for the endpoint programs (macvlan, ipvlan and host-device "
        + "interfaces cannot be chained)"
    }
    guard podLink.peerIndex != nil else {
      return "\(name) is a veth whose peer the kernel does not report"
    }
    guard let peerNamespace = podLink.peerNamespaceID else {
      return "\(name) is a veth whose peer is inside the pod's own namespace, not on the node"
    }
    guard let nodeNamespaceID, peerNamespace == nodeNamespaceID else {
      return "\(name) is a veth whose peer is in another network namespace than the node's "
        + "(the one this plugin runs in)"
    }
    return nil
  }

  /// Why `hostLink` (the link at the pod veth's peer index on the node) is not that peer, or
  /// nil when it is: a veth pointing back at the pod's interface, from another namespace.
  public static func peerMismatch(hostLink: LinkInfo?, podLink: LinkInfo) -> String? {
    guard let hostLink else {
      return "the peer of \(podLink.name) (ifindex \(podLink.peerIndex ?? 0)) is not on the node"
    }
    guard hostLink.kind == "veth", hostLink.peerIndex == podLink.index,
      hostLink.peerNamespaceID != nil
    else {
      return "ifindex \(hostLink.index) on the node (\(hostLink.name)) is not the peer of "
        + "\(podLink.name)"
    }
    return nil
  }

  private static func isLinkLocal(_ address: IPAddress) -> Bool {
    address.isIPv4
      ? address.bytes[0] == 169 && address.bytes[1] == 254
      : address.bytes[0] == 0xfe && address.bytes[1] & 0xc0 == 0x80
  }

  private static func unique(_ prefixes: [IPPrefix]) -> [IPPrefix] {
    var seen = Set<IPPrefix>()
    return prefixes.filter { seen.insert($0).inserted }
  }
}
