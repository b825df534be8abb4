import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a loaded program on a packet in the kernel without any interface (BPF_PROG_TEST_RUN):
/// the datapath's unit test. The run is real: map updates the program makes persist, so a
/// counting program's counters grow by `repeat` packets per call.
///
/// For tc programs the kernel builds an skb from `packet` (an Ethernet frame, at least 14
/// bytes) as if received on an interface of the caller's network namespace: loopback
/// (ifindex 1) unless `ifindex` names another. So skb->ifindex, and the endpoint counters'
/// key, is 1 by default. skb->len is the whole frame.
public enum ProgramTestRun {
  public struct Result: Sendable, Equatable {
    /// The program's return value (for tc, a `TrafficControl.Verdict` raw value).
    public var returnValue: UInt32
    /// The packet after the program (rewrites, encapsulation); capped at `outputCapacity`.
    public var output: [UInt8]
    /// Average run time per repetition, nanoseconds, as the kernel measured it.
    public var duration: UInt32

    /// `returnValue` read as a tc verdict (nil for a value tc does not define).
    public var verdict: TrafficControl.Verdict? {
      TrafficControl.Verdict(rawValue: Int32(bitPattern: returnValue))
    }
  }

  /// Runs `program` on `packet` `repeat` times. `ifindex`: the interface the skb appears to
  /// come from (must exist in the caller's namespace; nil or 1 is loopback). `gso`: the skb
  /// is a GSO one, its segments `size` payload bytes each (skb->gso_size, gso_segs), as GRO
  /// or a veth hands over a burst larger than the MTU; the kernel takes no gso_type from a
  /// test run (0: neither TCP nor UDP GSO), so helpers that need one refuse the skb. Throws
  /// ENOSPC when the packet leaves the program longer than `outputCapacity` (default: 256
  /// bytes more than it came in). Needs CAP_BPF + CAP_NET_ADMIN (or CAP_SYS_ADMIN).
  public static func run(
    program: BPFProgram, packet: [UInt8], repeat count: UInt32 = 1, ifindex: Int32? = nil,
    gso: (size: UInt32, segments: UInt32)? = nil, outputCapacity: Int? = nil
  ) throws(BPFError) -> Result {
    // Room for a program that grows the packet (encapsulation), by default.
    let capacity = outputCapacity ?? (packet.count + 256)
    var output = [UInt8](repeating: 0, count: capacity)
    // The __sk_buff the run starts from; the kernel accepts only a few fields set (ifindex,
    // gso_size and gso_segs among them) and rejects the call when any other is non-zero.
    var context = __sk_buff()
    context.ifindex = UInt32(bitPattern: ifindex ?? 0)
    context.gso_size = gso?.size ?? 0
    context.gso_segs = gso?.segments ?? 0
    var options = bpf_test_run_opts()
    options.sz = libbpfOptionsSize(\bpf_test_run_opts.batch_size)
    options.data_size_in = UInt32(packet.count)
    options.data_size_out = UInt32(capacity)
    options.repeat = Int32(bitPattern: count)
    let result = packet.withUnsafeBytes { input in
      output.withUnsafeMutableBytes { out in
        withUnsafeMutableBytes(of: &context) { context in
          options.data_in = input.baseAddress
          options.data_out = out.baseAddress
          if ifindex != nil || gso != nil {
            options.ctx_in = UnsafeRawPointer(context.baseAddress)
            options.ctx_size_in = UInt32(context.count)
          }
          return bpf_prog_test_run_opts(program.fd, &options)
        }
      }
    }
    try checkLibbpf(result, "bpf_prog_test_run_opts \(program.name)")
    output.removeSubrange(min(Int(options.data_size_out), capacity)...)
    return Result(returnValue: options.retval, output: output, duration: options.duration)
  }
}
