import CLibnl

#if canImport(Glibc)
  import Glibc
#endif

/// The routing that delivers packets the datapath hands to the node's L7 proxy (bpf/lib/
/// proxy.h): they keep their destination (a Service address the node does not own), so
/// without it the kernel would forward them, and forwarding drops a packet that has a socket
/// assigned. One policy rule, "fwmark MARK/MASK lookup TABLE", and in TABLE one route,
/// "local 0.0.0.0/0 dev lo": a marked packet is for this host. Cilium's proxy routing has
/// the same shape (mark 0x200/0xf00, table 2005). Only marked packets are concerned, so the
/// node's own traffic is untouched.
public struct ProxyRouting: Equatable, Sendable {
  public var mark: UInt32
  public var mask: UInt32
  public var table: UInt32
  public var priority: UInt32

  public init(mark: UInt32, mask: UInt32, table: UInt32, priority: UInt32) {
    self.mark = mark
    self.mask = mask
    self.table = table
    self.priority = priority
  }
}

extension RouteSocket {
  /// Installs `routing`; what is already there is kept (idempotent: a restart, or a second
  /// call, changes nothing).
  public func installProxyRouting(_ routing: ProxyRouting) throws(NetKitError) {
    let route = try localDefaultRoute(routing)
    defer { rtnl_route_put(route) }
    // Replace: creates the route, or rewrites an equal one in place.
    try check(
      rtnl_route_add(socket, route, NLM_F_REPLACE),
      "add route local 0.0.0.0/0 dev lo table \(routing.table)")
    let rule = try markRule(routing)
    defer { rtnl_rule_put(rule) }
    let added = rtnl_rule_add(socket, rule, NLM_F_EXCL)
    if added < 0 && -added != NLE_EXIST {
      try check(added, "add rule fwmark \(routing.mark)/\(routing.mask) lookup \(routing.table)")
    }
  }

  /// Removes `routing` (what is already gone is fine).
  public func removeProxyRouting(_ routing: ProxyRouting) throws(NetKitError) {
    let rule = try markRule(routing)
    defer { rtnl_rule_put(rule) }
    let removed = rtnl_rule_delete(socket, rule, 0)
    if removed < 0 && -removed != NLE_OBJ_NOTFOUND && -removed != NLE_NOADDR {
      try check(removed, "delete rule fwmark \(routing.mark)/\(routing.mask)")
    }
    let route = try localDefaultRoute(routing)
    defer { rtnl_route_put(route) }
    let deleted = rtnl_route_delete(socket, route, 0)
    if deleted < 0 && -deleted != NLE_OBJ_NOTFOUND {
      try check(deleted, "delete route local 0.0.0.0/0 table \(routing.table)")
    }
  }

  /// Whether both the rule and the route are in place (for tests and `status`).
  public func hasProxyRouting(_ routing: ProxyRouting) throws(NetKitError) -> Bool {
    var rules: OpaquePointer?
    try check(rtnl_rule_alloc_cache(socket, AF_INET, &rules), "list rules")
    defer { nl_cache_free(rules) }
    var ruleFound = false
    var object = nl_cache_get_first(rules)
    while let rule = object {
      object = nl_cache_get_next(rule)
      if rtnl_rule_get_mark(rule) == routing.mark && rtnl_rule_get_mask(rule) == routing.mask
        && rtnl_rule_get_table(rule) == routing.table
      {
        ruleFound = true
      }
    }
    var routes: OpaquePointer?
    try check(rtnl_route_alloc_cache(socket, AF_INET, 0, &routes), "list routes")
    defer { nl_cache_free(routes) }
    var routeFound = false
    object = nl_cache_get_first(routes)
    while let route = object {
      object = nl_cache_get_next(route)
      if rtnl_route_get_table(route) == routing.table
        && rtnl_route_get_type(route) == UInt8(RTN_LOCAL)
      {
        routeFound = true
      }
    }
    return ruleFound && routeFound
  }

  private func markRule(_ routing: ProxyRouting) throws(NetKitError) -> OpaquePointer {
    guard let rule = rtnl_rule_alloc() else { throw .system("rtnl_rule_alloc", ENOMEM) }
    rtnl_rule_set_family(rule, AF_INET)
    rtnl_rule_set_prio(rule, routing.priority)
    rtnl_rule_set_mark(rule, routing.mark)
    rtnl_rule_set_mask(rule, routing.mask)
    rtnl_rule_set_table(rule, routing.table)
    rtnl_rule_set_action(rule, UInt8(FR_ACT_TO_TBL))
    return rule
  }

  private func localDefaultRoute(_ routing: ProxyRouting) throws(NetKitError) -> OpaquePointer {
    guard let route = rtnl_route_alloc(), let hop = rtnl_route_nh_alloc() else {
      throw .system("rtnl_route_alloc", ENOMEM)
    }
    rtnl_route_set_family(route, UInt8(AF_INET))
    rtnl_route_set_table(route, routing.table)
    rtnl_route_set_protocol(route, UInt8(RTPROT_STATIC))
    rtnl_route_set_type(route, UInt8(RTN_LOCAL))
    rtnl_route_set_scope(route, UInt8(RT_SCOPE_HOST.rawValue))
    let zero: [UInt8] = [0, 0, 0, 0]
    let destination = zero.withUnsafeBytes { nl_addr_build(AF_INET, $0.baseAddress, 4) }!
    defer { nl_addr_put(destination) }
    nl_addr_set_prefixlen(destination, 0)
    _ = rtnl_route_set_dst(route, destination)
    // The loopback device: index 1 in every network namespace.
    rtnl_route_nh_set_ifindex(hop, 1)
    rtnl_route_add_nexthop(route, hop)
    return route
  }
}
