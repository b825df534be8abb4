import BPFKit
import DatapathABI
import Foundation
import NetKit
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// bpf/netdev.c loaded as if on a node device, for BPF_PROG_TEST_RUN: a scratch network
/// namespace whose veth "ve0" (02:00:00:00:00:01, 192.0.2.1/24) routes backends 10.0.2.0/24
/// via 192.0.2.2 and clients 198.51.100.0/24 via 192.0.2.3, both permanent neighbours
/// (02:00:00:00:00:22 and :33), so bpf_fib_lookup answers with known MAC addresses; the
/// programs from_netdev and to_netdev of a freshly loaded object. `remove()` undoes it all.
final class NetdevFixture {
  private(set) var datapath: ServiceObject!
  private(set) var device: NodeDevice!
  private(set) var from: BPFProgram!
  private(set) var to: BPFProgram!
  /// Where the programs run (`perform`), so their FIB lookups see the routes above.
  private(set) var namespace: NetworkNamespace!
  private(set) var namespaceName: String?

  /// `prefix` names the namespace (with the PID and a random suffix, so runs cannot collide);
  /// `mapSizes` as ServiceObject's.
  init(prefix: String, mapSizes: [String: Int] = [:]) throws {
    let path = try DatapathBuild.netdevObject()
    let name = "\(prefix)-\(getpid())-\(UUID().uuidString.prefix(6).lowercased())"
    try Shell.must(["ip", "netns", "add", name])
    namespaceName = name
    do {
      for command in [
        [
          "link", "add", "ve0", "address", "02:00:00:00:00:01", "type", "veth", "peer", "name",
          "ve1",
        ],
        ["link", "set", "ve0", "up"], ["link", "set", "ve1", "up"],
        ["addr", "add", "192.0.2.1/24", "dev", "ve0"],
        [
          "neigh", "add", "192.0.2.2", "lladdr", "02:00:00:00:00:22", "dev", "ve0", "nud",
          "permanent",
        ],
        [
          "neigh", "add", "192.0.2.3", "lladdr", "02:00:00:00:00:33", "dev", "ve0", "nud",
          "permanent",
        ],
        ["route", "add", "10.0.2.0/24", "via", "192.0.2.2", "dev", "ve0"],
        ["route", "add", "198.51.100.0/24", "via", "192.0.2.3", "dev", "ve0"],
      ] {
        try Shell.must(["ip", "-n", name] + command)
      }
      try Shell.must(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
      let namespace = try NetworkNamespace.open("/run/netns/" + name)
      self.namespace = namespace
      var read: Result<[NodeDevice], NodeDeviceProblem>?
      try namespace.perform { () throws(NetKitError) in
        read = Result { () throws(NodeDeviceProblem) in try NodeDevices.read(["ve0"]) }
      }
      device = try XCTUnwrap(try XCTUnwrap(read).get().first)
      let datapath = try ServiceObject(path: path, mapSizes: mapSizes)
      self.datapath = datapath
      from = try datapath.object.program(named: JUNCTION_PROG_FROM_NETDEV)
      to = try datapath.object.program(named: JUNCTION_PROG_TO_NETDEV)
    } catch {
      remove()
      throw error
    }
  }

  /// IPv6 on ve0 as well: fd00:192::1/64, backends fd00:10:2::/64 via fd00:192::2 and
  /// clients fd00:198::/64 via fd00:192::3, the same two permanent neighbours' MACs, and
  /// IPv6 forwarding on.
  func addIPv6() throws {
    let name = try XCTUnwrap(namespaceName)
    try Shell.must([
      "ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0",
      "net.ipv6.conf.ve0.disable_ipv6=0", "net.ipv6.conf.all.forwarding=1",
    ])
    for command in [
      ["addr", "add", "fd00:192::1/64", "dev", "ve0", "nodad"],
      [
        "neigh", "add", "fd00:192::2", "lladdr", "02:00:00:00:00:22", "dev", "ve0", "nud",
        "permanent",
      ],
      [
        "neigh", "add", "fd00:192::3", "lladdr", "02:00:00:00:00:33", "dev", "ve0", "nud",
        "permanent",
      ],
      ["route", "add", "fd00:10:2::/64", "via", "fd00:192::2", "dev", "ve0"],
      ["route", "add", "fd00:198::/64", "via", "fd00:192::3", "dev", "ve0"],
    ] {
      try Shell.must(["ip", "-n", name, "-6"] + command)
    }
  }

  /// Runs `program` on `frame` in the namespace, as if it arrived on (from_netdev) or left by
  /// (to_netdev) ve0; `gso` as ProgramTestRun's.
  func run(
    _ program: BPFProgram, _ frame: [UInt8], gso: (size: UInt32, segments: UInt32)? = nil
  ) throws -> ProgramTestRun.Result {
    var outcome: Result<ProgramTestRun.Result, any Error>?
    let index = device.index
    try namespace.perform { () throws(NetKitError) in
      do {
        outcome = .success(
          try ProgramTestRun.run(program: program, packet: frame, ifindex: index, gso: gso))
      } catch {
        outcome = .failure(error)
      }
    }
    return try XCTUnwrap(outcome).get()
  }

  /// Closes the object, removes its pins and the namespace. Callers drop their own
  /// references to the object's maps and programs first.
  func remove() {
    let bpffs = datapath?.bpffs
    datapath = nil
    namespace = nil
    bpffs?.remove()
    if let name = namespaceName { _ = Shell.run(["ip", "netns", "del", name]) }
    namespaceName = nil
  }
}
