import AgentAPI
import AgentCore
import BPFKit
import DatapathABI
import Logging
import NetKit

#if canImport(Glibc)
  import Glibc
#endif

/// Socket LB for pods (`--socket-lb` without `--socket-lb-hostns-only`): this node's pods in
/// jnc_pod_netns, by the cookie of their network namespace, so bpf/sock.c's programs
/// translate their sockets too (junction_abi.h, JUNCTION_MAP_POD_NETNS). An entry is written
/// when an endpoint registers and deleted when it goes. The cookie is the registration's
/// `netnsCookie` (the plugin reads it inside the pod's namespace, where ADD works anyway), so
/// the agent needs no setns and no CAP_SYS_ADMIN; the endpoint record keeps it, so a restart
/// rebuilds the map the same way. Only a registration without one (an older plugin, a kernel
/// before 5.14, a record written before) makes the agent enter the namespace and read it
/// itself (SO_NETNS_COOKIE on a socket made there), which needs CAP_SYS_ADMIN.
///
/// Entries are removed by the pod's address (the namespace may be gone by DEL, and with it
/// the way to its cookie); a cookie is never reused, so an entry missed that way only holds
/// memory until the next start, which rewrites the map from the registered endpoints.
/// Unchecked Sendable: after start-up only EndpointRegistry (an actor) calls it.
final class PodSocketTable: @unchecked Sendable {
  private let map: BPFMap
  private let logger: Logger

  private init(map: BPFMap, logger: Logger) {
    self.map = map
    self.logger = logger
  }

  /// The pinned map under `bpfFS` (endpoint.o made it), or nil when it cannot be opened (no
  /// datapath: socket LB cannot start either).
  static func open(bpfFS: String, logger: Logger) -> PodSocketTable? {
    do {
      let map = try BPFMap.openPinned(at: PathNames.join(bpfFS, JUNCTION_MAP_POD_NETNS))
      return PodSocketTable(map: map, logger: logger)
    } catch {
      logger.warning(
        "cannot open the socket LB pod map", metadata: ["error": "\(error)"])
      return nil
    }
  }

  /// Empties the map (a start with `--socket-lb-hostns-only` or without socket LB), so no
  /// pod of an earlier run is translated at its sockets.
  static func clear(bpfFS: String, logger: Logger) {
    guard access(PathNames.join(bpfFS, JUNCTION_MAP_POD_NETNS), F_OK) == 0,
      let table = open(bpfFS: bpfFS, logger: logger)
    else { return }
    table.removeAll()
  }

  /// The map holds exactly `specs`' pods (start-up).
  func sync(_ specs: [EndpointSpec]) {
    removeAll()
    for spec in specs { register(spec) }
  }

  /// Records `spec`'s pod. A pod without a cookie in its registration whose namespace
  /// cannot be entered is left to the per-packet path (logged): registration itself never
  /// fails for socket LB's sake.
  func register(_ spec: EndpointSpec) {
    let cookie: UInt64
    if let given = spec.netnsCookie, given != 0 {
      cookie = given
    } else {
      do {
        let namespace = try NetworkNamespace.open(spec.netns)
        cookie = try namespace.perform { () throws(NetKitError) in
          try NetworkNamespace.currentCookie()
        }
      } catch {
        logger.warning(
          "cannot read a pod's network namespace cookie (none registered): its sockets are translated per packet",
          metadata: ["id": "\(spec.id)", "netns": "\(spec.netns)", "error": "\(error)"])
        return
      }
    }
    // A re-registration with other addresses: the old entry goes first.
    forget(spec)
    do {
      try map.update(junction_pod_netns_key(cookie: cookie), PodSocketEntry.make(spec))
    } catch {
      logger.warning(
        "cannot record a pod for socket LB: its sockets are translated per packet",
        metadata: ["id": "\(spec.id)", "error": "\(error)"])
    }
  }

  /// Removes `spec`'s pod: every entry holding one of its addresses.
  func forget(_ spec: EndpointSpec) {
    let wanted = PodSocketEntry.make(spec)
    for (key, value) in entries() where PodSocketEntry.sameAddress(value, wanted) {
      _ = try? map.delete(key)
    }
  }

  private func removeAll() {
    for (key, _) in entries() { _ = try? map.delete(key) }
  }

  private func entries() -> [(junction_pod_netns_key, junction_pod_netns)] {
    do {
      return try map.keys(as: junction_pod_netns_key.self).compactMap { key in
        try map.lookup(key, as: junction_pod_netns.self).map { (key, $0) }
      }
    } catch {
      logger.warning("cannot read the socket LB pod map", metadata: ["error": "\(error)"])
      return []
    }
  }
}

/// What jnc_pod_netns holds for an endpoint: its first IPv4 and first IPv6 address (the
/// source its sockets' packets carry), and the opt-out flag.
enum PodSocketEntry {
  static func make(_ spec: EndpointSpec) -> junction_pod_netns {
    var entry = junction_pod_netns()
    var haveV4 = false
    var haveV6 = false
    for cidr in spec.ips {
      let address = String(cidr.split(separator: "/").first ?? "")
      var v4 = in_addr()
      var v6 = in6_addr()
      if !haveV4, inet_pton(AF_INET, address, &v4) == 1 {
        entry.address4 = v4.s_addr
        haveV4 = true
      } else if !haveV6, inet_pton(AF_INET6, address, &v6) == 1 {
        withUnsafeMutableBytes(of: &entry.address6) { target in
          withUnsafeBytes(of: &v6) { target.copyMemory(from: $0) }
        }
        haveV6 = true
      }
    }
    if spec.socketLB == false { entry.flags |= UInt32(JUNCTION_POD_NETNS_F_NO_SOCKET_LB) }
    return entry
  }

  /// Whether two entries share an address (0 / :: match nothing).
  static func sameAddress(_ a: junction_pod_netns, _ b: junction_pod_netns) -> Bool {
    if a.address4 != 0 && a.address4 == b.address4 { return true }
    let a6 = withUnsafeBytes(of: a.address6) { Array($0) }
    let b6 = withUnsafeBytes(of: b.address6) { Array($0) }
    return a6.contains { $0 != 0 } && a6 == b6
  }
}
