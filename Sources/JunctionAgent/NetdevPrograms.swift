import AgentCore
import BPFKit
import DatapathABI
import Logging
import NetKit

#if canImport(Glibc)
  import Glibc
#endif

/// The north-south programs (bpf/netdev.c) on the node's `--devices`: loaded next to the
/// endpoint object (same pinned maps), pinned, attached to every device's tc ingress and
/// egress, and the devices' addresses and MTUs written to jnc_devices.
struct NetdevPrograms {
  let object: BPFObject
  let fromNetdev: BPFProgram
  let toNetdev: BPFProgram
  let devices: [NodeDevice]

  /// Loads `objectPath` with the agent's map sizes (the pinned maps are reused only when
  /// they match), pins the programs under `bpfFS`, writes jnc_devices (entries of devices no
  /// longer listed removed) and attaches to every device, replacing Junction's filter in
  /// place on a restart.
  static func load(
    objectPath: String, bpfFS: String, mapSizes: MapSizes, devices: [NodeDevice],
    hook: TrafficControl.Hook, logger: Logger
  ) throws -> NetdevPrograms {
    let object = try BPFObject.loadSized(
      path: objectPath, bpfFS: bpfFS, mapSizes: mapSizes, logger: logger)
    let from = try object.pinnedProgram(named: JUNCTION_PROG_FROM_NETDEV, bpfFS: bpfFS)
    let to = try object.pinnedProgram(named: JUNCTION_PROG_TO_NETDEV, bpfFS: bpfFS)

    let table = try object.map(named: JUNCTION_MAP_DEVICES)
    let listed = Set(devices.map { UInt32(bitPattern: $0.index) })
    for key in try table.keys(as: junction_device_key.self) where !listed.contains(key.ifindex) {
      _ = try table.delete(key)
    }
    for device in devices {
      var entry = junction_device()
      // The first IPv4 address (NodeDevices.read guarantees one): the SNAT source.
      entry.address = (device.addresses.first?.bytes ?? [0, 0, 0, 0]).withUnsafeBytes {
        $0.loadUnaligned(as: UInt32.self)
      }
      entry.mtu = UInt32(device.mtu)
      // The first global IPv6 address: the IPv6 SNAT source (all zero: none).
      if let address6 = device.addresses6.first {
        entry.address6 = address6.bytes.withUnsafeBytes {
          (
            $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self),
            $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
            $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self),
            $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
          )
        }
      }
      try table.update(junction_device_key(ifindex: UInt32(bitPattern: device.index)), entry)
    }
    // The map first, then the programs: a packet never meets a program without its device.
    for device in devices {
      try TrafficControl.attach(
        program: from, ifindex: device.index, direction: .ingress, hook: hook)
      try TrafficControl.attach(program: to, ifindex: device.index, direction: .egress, hook: hook)
      logger.info(
        "north-south programs attached",
        metadata: [
          "device": "\(device.name)", "ifindex": "\(device.index)",
          "address": "\(device.addresses.first?.description ?? "")",
          "address6": "\(device.addresses6.first?.description ?? "")",
          "mtu": "\(device.mtu)", "from_netdev": "\(from.id)", "to_netdev": "\(to.id)",
          "tc_hook": "\(hook)",
        ])
    }
    return NetdevPrograms(object: object, fromNetdev: from, toNetdev: to, devices: devices)
  }
}
