import CLibnl
import CNIKit

#if canImport(Glibc)
  import Glibc
#endif

/// What Junction needs to know about a link.
public struct LinkInfo: Equatable, Sendable {
  public var index: Int32
  public var name: String
  public var mac: MACAddress?
  public var mtu: Int
  public var isUp: Bool
  /// IFLA_IFALIAS: Junction records the owning attachment here on host-side veths.
  public var alias: String?
  /// The rtnl_link_ops kind ("veth", "bridge", ...); nil for physical devices.
  public var kind: String?
  /// IFLA_LINK: for a veth, its peer's index (in the peer's namespace); nil when unset.
  public var peerIndex: Int32? = nil
  /// IFLA_LINK_NETNSID: the id, in this link's namespace, of the namespace `peerIndex`
  /// lives in; nil when the peer is in the same namespace (or there is none).
  public var peerNamespaceID: Int32? = nil
}

/// An address on a link as the kernel reports it.
public struct AddressInfo: Equatable, Sendable {
  public var prefix: IPPrefix
  /// IPv6 duplicate address detection still running: the kernel will not use it yet.
  public var isTentative: Bool
  /// IPv6 duplicate address detection found another holder: never used.
  public var dadFailed: Bool

  public init(prefix: IPPrefix, isTentative: Bool = false, dadFailed: Bool = false) {
    self.prefix = prefix
    self.isTentative = isTentative
    self.dadFailed = dadFailed
  }
}

/// A route of the main table as the kernel reports it.
public struct RouteInfo: Equatable, Sendable {
  public var destination: IPPrefix
  public var gateway: IPAddress?
  public var interfaceIndex: Int32
  public var scope: UInt8
  public var table: UInt32
}

/// One end of a veth pair to create.
public struct VethEnd: Sendable {
  public var name: String
  public var mac: MACAddress
  public var mtu: Int

  public init(name: String, mac: MACAddress, mtu: Int) {
    self.name = name
    self.mac = mac
    self.mtu = mtu
  }
}

/// An rtnetlink socket bound to one network namespace (the one it was opened in), with
/// typed calls for links, addresses, routes and neighbours. Every call is one request and
/// its acknowledgement; nothing is cached between calls.
public final class RouteSocket {
  let socket: OpaquePointer

  /// A socket in the calling thread's namespace, or in `namespace`.
  public init(in namespace: NetworkNamespace? = nil) throws(NetKitError) {
    guard let socket = nl_socket_alloc() else { throw .system("nl_socket_alloc", ENOMEM) }
    self.socket = socket
    if let namespace {
      try namespace.perform { () throws(NetKitError) in
        try check(nl_connect(socket, NETLINK_ROUTE), "connect to rtnetlink in \(namespace.path)")
      }
    } else {
      try check(nl_connect(socket, NETLINK_ROUTE), "connect to rtnetlink")
    }
  }

  deinit { nl_socket_free(socket) }

  // MARK: - Links

  /// The link called `name`, or nil when there is none.
  public func link(named name: String) throws(NetKitError) -> LinkInfo? {
    try fetchLink(index: 0, name: name)
  }

  public func link(index: Int32) throws(NetKitError) -> LinkInfo? {
    try fetchLink(index: index, name: nil)
  }

  private func fetchLink(index: Int32, name: String?) throws(NetKitError) -> LinkInfo? {
    var link: OpaquePointer?
    let result = rtnl_link_get_kernel(socket, index, name, &link)
    if result == -NLE_OBJ_NOTFOUND || result == -NLE_NODEV { return nil }
    try check(result, "get link \(name ?? String(index))")
    guard let link else { return nil }
    defer { rtnl_link_put(link) }
    return LinkInfo(link)
  }

  /// Every link in the namespace (one dump).
  public func links() throws(NetKitError) -> [LinkInfo] {
    var cache: OpaquePointer?
    try check(rtnl_link_alloc_cache(socket, AF_UNSPEC, &cache), "list links")
    defer { nl_cache_free(cache) }
    var result: [LinkInfo] = []
    var object = nl_cache_get_first(cache)
    while let current = object {
      result.append(LinkInfo(current))
      object = nl_cache_get_next(current)
    }
    return result
  }

  /// Creates a veth pair: `host` here and up, `peer` born directly inside `peerNamespace`
  /// under its final name (so no half-named link is ever visible there), still down: the
  /// kernel opens a new peer before the pair is joined and refuses (ENOTCONN), so the
  /// caller sets it up afterwards.
  public func createVeth(host: VethEnd, peer: VethEnd, peerNamespace: NetworkNamespace)
    throws(NetKitError)
  {
    guard let link = rtnl_link_veth_alloc() else { throw .system("rtnl_link_veth_alloc", ENOMEM) }
    defer { rtnl_link_veth_release(link) }
    guard let peerLink = rtnl_link_veth_get_peer(link) else {
      throw .system("rtnl_link_veth_get_peer", ENOMEM)
    }
    configure(link, host)
    rtnl_link_set_flags(link, UInt32(IFF_UP.rawValue))
    configure(peerLink, peer)
    rtnl_link_set_ns_fd(peerLink, peerNamespace.fd)
    rtnl_link_put(peerLink)
    try check(
      rtnl_link_add(socket, link, NLM_F_CREATE | NLM_F_EXCL),
      "create veth \(host.name) <-> \(peer.name) in \(peerNamespace.path)")
  }

  private func configure(_ link: OpaquePointer, _ end: VethEnd) {
    rtnl_link_set_name(link, end.name)
    rtnl_link_set_mtu(link, UInt32(end.mtu))
    withNLAddress(family: AF_LLC, bytes: end.mac.bytes, prefixLength: 48) {
      rtnl_link_set_addr(link, $0)
    }
  }

  /// Sets IFLA_IFALIAS (the kernel ignores it on creation, so it is a second request).
  public func setAlias(index: Int32, _ alias: String) throws(NetKitError) {
    try change(index: index, "set alias on link \(index)") { rtnl_link_set_ifalias($0, alias) }
  }

  public func setUp(index: Int32) throws(NetKitError) {
    try change(index: index, "set link \(index) up") {
      rtnl_link_set_flags($0, UInt32(IFF_UP.rawValue))
    }
  }

  private func change(index: Int32, _ operation: String, _ edit: (OpaquePointer) -> Void)
    throws(NetKitError)
  {
    guard let original = rtnl_link_alloc(), let changes = rtnl_link_alloc() else {
      throw .system("rtnl_link_alloc", ENOMEM)
    }
    defer {
      rtnl_link_put(original)
      rtnl_link_put(changes)
    }
    rtnl_link_set_ifindex(original, index)
    edit(changes)
    try check(rtnl_link_change(socket, original, changes, 0), operation)
  }

  /// Deletes the link; false when it was already gone.
  @discardableResult
  public func deleteLink(index: Int32) throws(NetKitError) -> Bool {
    guard let link = rtnl_link_alloc() else { throw .system("rtnl_link_alloc", ENOMEM) }
    defer { rtnl_link_put(link) }
    rtnl_link_set_ifindex(link, index)
    let result = rtnl_link_delete(socket, link)
    if result == -NLE_OBJ_NOTFOUND || result == -NLE_NODEV { return false }
    try check(result, "delete link \(index)")
    return true
  }

  // MARK: - Namespaces

  /// The id this socket's namespace gives `namespace` (what IFLA_LINK_NETNSID of a link
  /// whose peer lives there says), or nil when it has given it none.
  public func namespaceID(of namespace: NetworkNamespace) throws(NetKitError) -> Int32? {
    var id: Int32 = -1
    try check(
      junction_nl_namespace_id(socket, namespace.fd, &id), "get the id of \(namespace.path)")
    return id < 0 ? nil : id
  }

  // MARK: - Traffic control

  /// How many tc filters (anyone's) sit on the ingress and egress hooks of a clsact qdisc
  /// on link `index`; zero for both when it has no clsact.
  public func clsactFilterCount(index: Int32) throws(NetKitError) -> Int {
    // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / TC_H_MIN_EGRESS) from linux/pkt_sched.h.
    var total = 0
    for parent: UInt32 in [0xFFFF_FFF2, 0xFFFF_FFF3] {
      let count = junction_nl_filter_count(socket, index, parent)
      try check(count, "list tc filters of link \(index)")
      total += Int(count)
    }
    return total
  }

  // MARK: - Addresses

  /// Adds `prefix` to the link. IPv6 addresses skip duplicate address detection: the
  /// address is ours by IPAM, and DAD would hold the pod back for a second or more.
  public func addAddress(_ prefix: IPPrefix, index: Int32) throws(NetKitError) {
    guard let address = rtnl_addr_alloc() else { throw .system("rtnl_addr_alloc", ENOMEM) }
    defer { rtnl_addr_put(address) }
    rtnl_addr_set_ifindex(address, index)
    try withNLAddress(
      family: prefix.address.family, bytes: prefix.address.bytes, prefixLength: prefix.length
    ) {
      (local) throws(NetKitError) in
      try check(rtnl_addr_set_local(address, local), "set address \(prefix)")
    }
    rtnl_addr_set_prefixlen(address, Int32(prefix.length))
    if !prefix.address.isIPv4 { rtnl_addr_set_flags(address, UInt32(IFA_F_NODAD)) }
    try check(rtnl_addr_add(socket, address, 0), "add address \(prefix) to link \(index)")
  }

  /// The addresses on a link (IPv6 link-local ones included).
  public func addresses(index: Int32) throws(NetKitError) -> [IPPrefix] {
    try addressDetails(index: index).map(\.prefix)
  }

  /// The addresses on a link with whether each can be used: an IPv6 address still in
  /// duplicate address detection (tentative) or that failed it is not.
  public func addressDetails(index: Int32) throws(NetKitError) -> [AddressInfo] {
    var cache: OpaquePointer?
    try check(rtnl_addr_alloc_cache(socket, &cache), "list addresses")
    defer { nl_cache_free(cache) }
    var result: [AddressInfo] = []
    var object = nl_cache_get_first(cache)
    while let current = object {
      let address = current
      if rtnl_addr_get_ifindex(address) == index, let local = rtnl_addr_get_local(address),
        let ip = ipAddress(local),
        let prefix = IPPrefix(address: ip, length: Int(rtnl_addr_get_prefixlen(address)))
      {
        let flags = rtnl_addr_get_flags(address)
        result.append(
          AddressInfo(
            prefix: prefix, isTentative: flags & UInt32(IFA_F_TENTATIVE) != 0,
            dadFailed: flags & UInt32(IFA_F_DADFAILED) != 0))
      }
      object = nl_cache_get_next(current)
    }
    return result
  }

  // MARK: - Routes

  /// Adds a main-table route through `index`, via `gateway` when given. `linkScope`
  /// makes it a directly connected route (the pod's route to its gateway, the host's
  /// route to the pod).
  public func addRoute(
    _ destination: IPPrefix, gateway: IPAddress? = nil, index: Int32, linkScope: Bool = false
  ) throws(NetKitError) {
    guard let route = rtnl_route_alloc(), let hop = rtnl_route_nh_alloc() else {
      throw .system("rtnl_route_alloc", ENOMEM)
    }
    defer { rtnl_route_put(route) }
    let family = destination.address.family
    rtnl_route_set_family(route, UInt8(family))
    rtnl_route_set_table(route, UInt32(RT_TABLE_MAIN.rawValue))
    rtnl_route_set_protocol(route, UInt8(RTPROT_STATIC))
    rtnl_route_set_type(route, UInt8(RTN_UNICAST))
    rtnl_route_set_scope(
      route, UInt8(linkScope ? RT_SCOPE_LINK.rawValue : RT_SCOPE_UNIVERSE.rawValue))
    try withNLAddress(
      family: family, bytes: destination.network.address.bytes, prefixLength: destination.length
    ) {
      (dst) throws(NetKitError) in
      try check(rtnl_route_set_dst(route, dst), "set route destination \(destination)")
    }
    rtnl_route_nh_set_ifindex(hop, index)
    if let gateway {
      withNLAddress(
        family: gateway.family, bytes: gateway.bytes, prefixLength: gateway.hostPrefixLength
      ) {
        rtnl_route_nh_set_gateway(hop, $0)
      }
    }
    rtnl_route_add_nexthop(route, hop)  // the route owns the hop from here
    let via = gateway.map { " via \($0)" } ?? ""
    try check(
      rtnl_route_add(socket, route, NLM_F_EXCL), "add route \(destination)\(via) dev \(index)")
  }

  /// The main table's unicast routes of one family (AF_INET or AF_INET6).
  public func routes(family: Int32) throws(NetKitError) -> [RouteInfo] {
    var cache: OpaquePointer?
    try check(rtnl_route_alloc_cache(socket, family, 0, &cache), "list routes")
    defer { nl_cache_free(cache) }
    var result: [RouteInfo] = []
    var object = nl_cache_get_first(cache)
    while let current = object {
      let route = current
      object = nl_cache_get_next(current)
      guard rtnl_route_get_table(route) == UInt32(RT_TABLE_MAIN.rawValue),
        rtnl_route_get_type(route) == UInt8(RTN_UNICAST),
        let hop = rtnl_route_nexthop_n(route, 0)
      else { continue }
      let length = rtnl_route_get_dst(route).map { Int(nl_addr_get_prefixlen($0)) } ?? 0
      let destinationAddress =
        rtnl_route_get_dst(route).flatMap(ipAddress) ?? IPAddress.any(likeIPv4: family == AF_INET)
      guard let destination = IPPrefix(address: destinationAddress, length: length) else {
        continue
      }
      result.append(
        RouteInfo(
          destination: destination, gateway: rtnl_route_nh_get_gateway(hop).flatMap(ipAddress),
          interfaceIndex: rtnl_route_nh_get_ifindex(hop), scope: rtnl_route_get_scope(route),
          table: rtnl_route_get_table(route)))
    }
    return result
  }

  // MARK: - Neighbours

  /// A permanent neighbour entry: each end of a pod's veth knows the other's MAC from the
  /// start, so neither waits on ARP or NDP, and no address is needed on the host side.
  public func addPermanentNeighbor(_ address: IPAddress, mac: MACAddress, index: Int32)
    throws(NetKitError)
  {
    guard let neighbor = rtnl_neigh_alloc() else { throw .system("rtnl_neigh_alloc", ENOMEM) }
    defer { rtnl_neigh_put(neighbor) }
    rtnl_neigh_set_ifindex(neighbor, index)
    withNLAddress(
      family: address.family, bytes: address.bytes, prefixLength: address.hostPrefixLength
    ) {
      rtnl_neigh_set_dst(neighbor, $0)
    }
    withNLAddress(family: AF_LLC, bytes: mac.bytes, prefixLength: 48) {
      rtnl_neigh_set_lladdr(neighbor, $0)
    }
    rtnl_neigh_set_state(neighbor, Int32(NUD_PERMANENT))
    try check(
      rtnl_neigh_add(socket, neighbor, NLM_F_CREATE | NLM_F_REPLACE),
      "add neighbour \(address) lladdr \(mac) dev \(index)")
  }
}

// MARK: - libnl conversions

extension LinkInfo {
  init(_ link: OpaquePointer) {
    index = rtnl_link_get_ifindex(link)
    name = rtnl_link_get_name(link).map { String(cString: $0) } ?? ""
    mac = rtnl_link_get_addr(link).flatMap { address in
      let length = Int(nl_addr_get_len(address))
      guard length == 6, let raw = nl_addr_get_binary_addr(address) else { return nil }
      return MACAddress(bytes: Array(UnsafeRawBufferPointer(start: raw, count: length)))
    }
    mtu = Int(rtnl_link_get_mtu(link))
    isUp = rtnl_link_get_flags(link) & UInt32(IFF_UP.rawValue) != 0
    alias = rtnl_link_get_ifalias(link).map { String(cString: $0) }
    kind = rtnl_link_get_type(link).map { String(cString: $0) }
    let peer = rtnl_link_get_link(link)
    peerIndex = peer > 0 ? peer : nil
    var namespaceID: Int32 = -1
    peerNamespaceID =
      rtnl_link_get_link_netnsid(link, &namespaceID) == 0 && namespaceID >= 0 ? namespaceID : nil
  }
}

/// Builds a temporary libnl address around `bytes` for the duration of `body`.
private func withNLAddress<T, E: Error>(
  family: Int32, bytes: [UInt8], prefixLength: Int, _ body: (OpaquePointer) throws(E) -> T
) throws(E) -> T {
  let address = bytes.withUnsafeBytes { raw in
    nl_addr_build(family, raw.baseAddress, raw.count)
  }!
  defer { nl_addr_put(address) }
  nl_addr_set_prefixlen(address, Int32(prefixLength))
  return try body(address)
}

private func ipAddress(_ address: OpaquePointer) -> IPAddress? {
  let length = Int(nl_addr_get_len(address))
  guard length == 4 || length == 16, let raw = nl_addr_get_binary_addr(address) else { return nil }
  return IPAddress(bytes: Array(UnsafeRawBufferPointer(start: raw, count: length)))
}
