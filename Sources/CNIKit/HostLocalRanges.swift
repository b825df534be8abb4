/// The parts of a host-local `ipam` object that decide the pod's address families, judged
/// before host-local is called:
///
///     "ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]],
///     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]
///
/// host-local gives one address per range set, so dual-stack is two sets of one family
/// each. A family mix-up (both subnets in one set, a v4 gateway in a v6 range, a route via
/// a gateway of the other family) would otherwise surface after an address was taken, as a
/// netlink error or a pod without one of its families; here it is refused by field name
/// (code 7) before anything is allocated. Fields host-local checks well itself (subnet
/// sizes, overlaps) are left to it.
public enum HostLocalRanges {
  public static func validate(_ ipam: FieldReader) throws(CNIError) {
    if let sets = ipam.object["ranges"], sets != .null {
      guard let list = sets.arrayValue else {
        throw ipam.fail(
          "ranges", "must be a list of range sets (lists of ranges), got \(sets.typeName)")
      }
      for (setIndex, set) in list.enumerated() {
        try validateSet(set, path: "ranges[\(setIndex)]", ipam: ipam)
      }
    }
    if let single = try? ipam.prefix("subnet") {
      try validateRange(ipam, subnet: single)
    }
    for route in try ipam.objects("routes") {
      let destination = try route.prefix("dst")
      if let gateway = try route.address("gw"), gateway.isIPv4 != destination.address.isIPv4 {
        throw route.fail(
          "gw",
          "is an \(familyName(gateway)) address, but the route's destination \(destination) is "
            + "\(familyName(destination.address)): a route's gateway must be of its family")
      }
    }
  }

  private static func validateSet(_ set: JSONValue, path: String, ipam: FieldReader)
    throws(CNIError)
  {
    guard let ranges = set.arrayValue, !ranges.isEmpty else {
      throw ipam.fail(
        path,
        "must be a non-empty list of ranges (a range set), e.g. [{\"subnet\": \"fd00:10:244:1::/64\"}]"
      )
    }
    var family: Bool?
    for (index, range) in ranges.enumerated() {
      guard let members = range.objectValue else {
        throw ipam.fail("\(path)[\(index)]", "must be an object, got \(range.typeName)")
      }
      let reader = FieldReader(
        object: members, path: ipam.fieldPath("\(path)[\(index)]"), code: ipam.code)
      let subnet = try reader.prefix("subnet")
      try validateRange(reader, subnet: subnet)
      if let family, family != subnet.address.isIPv4 {
        throw ipam.fail(
          path,
          "mixes IPv4 and IPv6 ranges: host-local gives one address per range set, so "
            + "dual-stack needs one set per family: \"ranges\": [[{\"subnet\": \"<IPv4 CIDR>\"}], "
            + "[{\"subnet\": \"<IPv6 CIDR>\"}]]")
      }
      family = subnet.address.isIPv4
    }
  }

  /// `gateway`, `rangeStart` and `rangeEnd` of one range: addresses of the subnet's family,
  /// inside it.
  private static func validateRange(_ range: FieldReader, subnet: IPPrefix) throws(CNIError) {
    for key in ["gateway", "rangeStart", "rangeEnd"] {
      guard let address = try range.address(key) else { continue }
      guard address.isIPv4 == subnet.address.isIPv4 else {
        throw range.fail(
          key,
          "is an \(familyName(address)) address in the \(familyName(subnet.address)) subnet "
            + "\(subnet)")
      }
      guard IPPrefix(address: address, length: subnet.length)?.network == subnet.network else {
        throw range.fail(key, "\(address) is outside the subnet \(subnet)")
      }
    }
  }

  private static func familyName(_ address: IPAddress) -> String {
    address.isIPv4 ? "IPv4" : "IPv6"
  }
}
