import CNIKit

/// Which conntrack and affinity entries belong to a deregistered endpoint (issue 16).
///
/// The service datapath keys conntrack by 5-tuple (jnc_ct4) and ClientIP affinity by client
/// address (jnc_lb4_aff). Both are LRU maps, so nothing else removes an entry of a pod that
/// is gone until the map fills up: host-local hands the address to a later pod, which then
/// inherits the old pod's backend choices (a connection whose 5-tuple repeats one of the
/// old pod's resolves to the old backend without a lookup; affinity sticks it to the old
/// pod's backend). Cilium flushes an endpoint's conntrack entries when it goes; so does the
/// agent, for the endpoint's IPv4 addresses (jnc_ct4, jnc_lb4_aff) and IPv6 addresses
/// (jnc_ct6, jnc_lb6_aff), on every path that deregisters one.
public enum FlowPurge {
  /// The endpoint's IPv4 addresses as the datapath stores them (network byte order in
  /// memory, read as a host UInt32), from its CIDR strings ("10.244.1.5/32"); IPv6 and
  /// unreadable strings are left out (the maps are IPv4 only).
  public static func addresses(ofCIDRs cidrs: [String]) -> Set<UInt32> {
    var result = Set<UInt32>()
    for cidr in cidrs {
      let address = cidr.split(separator: "/", maxSplits: 1).first.map(String.init) ?? cidr
      let octets = address.split(separator: ".", omittingEmptySubsequences: false)
      guard octets.count == 4 else { continue }
      let values = octets.compactMap { UInt8($0) }
      guard values.count == 4 else { continue }
      // The bytes in network order, laid out in memory as the C struct's __be32 holds them.
      result.insert(
        UInt32(values[0]) | UInt32(values[1]) << 8 | UInt32(values[2]) << 16
          | UInt32(values[3]) << 24)
    }
    return result
  }

  /// The endpoint's IPv6 addresses as their 16 network-order bytes (how jnc_ct6 and
  /// jnc_lb6_aff hold them), from its CIDR strings ("fd00:10:244:1::5/128"); IPv4 and
  /// unreadable strings are left out.
  public static func addresses6(ofCIDRs cidrs: [String]) -> Set<[UInt8]> {
    var result = Set<[UInt8]>()
    for cidr in cidrs {
      let text = cidr.split(separator: "/", maxSplits: 1).first.map(String.init) ?? cidr
      if let address = IPAddress(text), !address.isIPv4 { result.insert(address.bytes) }
    }
    return result
  }

  /// A conntrack entry is the endpoint's when either end of its key is one of its addresses:
  /// as a client (service direction: source; reply direction: destination) or as a backend
  /// answering (reply direction: source).
  public static func isEndpoints(saddr: UInt32, daddr: UInt32, addresses: Set<UInt32>) -> Bool {
    addresses.contains(saddr) || addresses.contains(daddr)
  }
}
