import Foundation
import XCTest

/// Another tool's tc program on a pod's host veth, after Junction's: what a network policy
/// agent chained with the CNI (aws-network-policy-agent, Calico's eBPF programs) puts there.
/// This one refuses IPv4 TCP to one destination port, as read from the packet it sees (so a
/// service connection's packets are refused when translated to that port). Loaded through
/// bpf(2) by a short Python script (eleven instructions, no BPFKit), pinned in a scratch
/// bpffs and attached by tc(8) on clsact at priority 2: behind Junction's priority 1, or,
/// with Junction on tcx, after every tcx program (a clsact qdisc made for it when the link
/// has none, and removed with it).
final class PolicyProgram {
  private let netns: String
  private let link: String
  private let bpffs: String
  private var attached = false
  private var madeQdisc = false

  init(refusingTCPPort port: Int, in netns: String, link: String) throws {
    self.netns = netns
    self.link = link
    bpffs = NSTemporaryDirectory() + "jtpolicy\(getpid())x\(Int.random(in: 0..<1_000_000))"
    try FileManager.default.createDirectory(atPath: bpffs, withIntermediateDirectories: false)
    do {
      try Shell.must(["mount", "-t", "bpf", "bpf", bpffs])
      let pin = bpffs + "/refuse_port"
      madeQdisc =
        try Shell.run(["tc", "-n", netns, "qdisc", "add", "dev", link, "clsact"]).status == 0
      let loaded = try Shell.run(["python3", "-c", Self.script, pin, "\(port)"])
      XCTAssertEqual(loaded.status, 0, "loading the policy program: \(loaded.stderr)")
      try Shell.must([
        "tc", "-n", netns, "filter", "add", "dev", link, "ingress", "prio", "2", "handle", "7",
        "bpf", "da", "object-pinned", pin,
      ])
      attached = true
    } catch {
      remove()
      throw error
    }
  }

  /// Detaches the program and removes the scratch bpffs; safe to call again.
  func remove() {
    if attached {
      _ = try? Shell.run([
        "tc", "-n", netns, "filter", "del", "dev", link, "ingress", "prio", "2", "handle", "7",
        "bpf",
      ])
      attached = false
    }
    if madeQdisc {
      _ = try? Shell.run(["tc", "-n", netns, "qdisc", "del", "dev", link, "clsact"])
      madeQdisc = false
    }
    if FileManager.default.fileExists(atPath: bpffs) {
      _ = try? Shell.run(["umount", bpffs])
      try? FileManager.default.removeItem(atPath: bpffs)
    }
  }

  deinit { remove() }

  /// argv: the pin path, the port. Classic packet loads (LD_ABS) from the Ethernet frame:
  /// ethertype IPv4, protocol TCP, and the destination port of a 20-byte IPv4 header
  /// (a pod's packets carry no IP options). TC_ACT_SHOT for that port, else TC_ACT_UNSPEC.
  private static let script =
    TCXWitness.pythonPrelude + """
      def insn(code, regs=0, off=0, imm=0):
          return struct.pack("<BBhi", code, regs, off, imm)
      port = int(sys.argv[2])
      program = b"".join([
          insn(0xbf, 0x16),              # r6 = r1 (LD_ABS reads the skb in r6)
          insn(0x28, imm=12),            # r0 = ethertype
          insn(0x55, off=6, imm=0x0800), # not IPv4: on
          insn(0x30, imm=23),            # r0 = IPv4 protocol
          insn(0x55, off=4, imm=6),      # not TCP: on
          insn(0x28, imm=36),            # r0 = TCP destination port
          insn(0x55, off=2, imm=port),   # another port: on
          insn(0xb7, imm=2),             # TC_ACT_SHOT
          insn(0x95),
          insn(0xb7, imm=-1),            # TC_ACT_UNSPEC
          insn(0x95),
      ])
      code = ctypes.create_string_buffer(program, len(program))
      license = ctypes.create_string_buffer(b"GPL")
      attr = ctypes.create_string_buffer(128)
      struct.pack_into("<IIQQ", attr, 0, 3, len(program) // 8, ctypes.addressof(code), ctypes.addressof(license))
      struct.pack_into("16s", attr, 48, b"refuse_port")
      fd = bpf(5, attr)  # BPF_PROG_LOAD, BPF_PROG_TYPE_SCHED_CLS
      path = ctypes.create_string_buffer(sys.argv[1].encode())
      bpf(6, ctypes.create_string_buffer(struct.pack("<QI", ctypes.addressof(path), fd), 16))  # OBJ_PIN
      """
}
