import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// tc attachment of the endpoint programs through a clsact qdisc and libbpf's bpf_tc_* (the
/// netlink way; Debian 12's libbpf 1.1 and kernel 6.1 predate TCX links). Junction owns one
/// filter per direction, at a fixed handle and priority, so attaching again replaces it in
/// place (BPF_TC_F_REPLACE) instead of stacking a second filter: attach is idempotent, and
/// an upgraded program takes over without a gap. Filters other software put on the same
/// clsact at other handles or priorities are left alone.
public enum TrafficControl {
  public enum Direction: Sendable, CaseIterable {
    /// Packets the interface receives; on a pod's host-side veth, what the pod sends.
    case ingress
    /// Packets the interface transmits; on a pod's host-side veth, what the pod receives.
    case egress

    var attachPoint: bpf_tc_attach_point {
      self == .ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS
    }
  }

  /// The filter handle of Junction's filters ("JN"), unlikely to collide with another
  /// tool's hand-picked handle on the same hook.
  public static let handle: UInt32 = 0x4a4e
  /// Junction's filters run first: priority 1 is the lowest number tc accepts.
  public static let priority: UInt32 = 1

  /// What a tc program returns (TC_ACT_* in linux/pkt_cls.h), e.g. from a test run.
  public enum Verdict: Int32, Sendable {
    case unspecified = -1
    case ok = 0
    case reclassify = 1
    case shot = 2
    case pipe = 3
    case stolen = 4
    case queued = 5
    case `repeat` = 6
    case redirect = 7
  }

  /// Attaches `program` to `direction` of interface `ifindex` (direct-action), creating the
  /// clsact qdisc when there is none, and replacing Junction's filter when there is one.
  /// Needs CAP_NET_ADMIN in the interface's network namespace; the calling thread must be
  /// in that namespace (netlink sockets belong to the namespace they were opened in).
  public static func attach(
    program: BPFProgram, ifindex: Int32, direction: Direction
  ) throws(BPFError) {
    var hook = try makeHook(ifindex: ifindex, attachPoint: direction.attachPoint)
    let created = bpf_tc_hook_create(&hook)
    if created != -EEXIST {
      try checkLibbpf(created, "create clsact on ifindex \(ifindex)")
    }
    var options = makeOptions()
    options.prog_fd = program.fd
    options.flags = UInt32(BPF_TC_F_REPLACE.rawValue)
    try checkLibbpf(
      bpf_tc_attach(&hook, &options),
      "attach \(program.name) to \(direction) of ifindex \(ifindex)")
  }

  /// The id of the program in Junction's filter on `direction` of `ifindex`, or nil when
  /// there is no such filter (or no clsact qdisc at all).
  public static func query(ifindex: Int32, direction: Direction) throws(BPFError) -> UInt32? {
    var hook = try makeHook(ifindex: ifindex, attachPoint: direction.attachPoint)
    var options = makeOptions()
    let result = bpf_tc_query(&hook, &options)
    if isMissing(result) { return nil }
    try checkLibbpf(result, "query \(direction) of ifindex \(ifindex)")
    return options.prog_id
  }

  /// Removes Junction's filter from `direction` of `ifindex`; a missing filter or qdisc is
  /// fine. Leaves the clsact qdisc (and anyone else's filters on it) in place.
  public static func detach(ifindex: Int32, direction: Direction) throws(BPFError) {
    var hook = try makeHook(ifindex: ifindex, attachPoint: direction.attachPoint)
    var options = makeOptions()
    let result = bpf_tc_detach(&hook, &options)
    if isMissing(result) { return }
    try checkLibbpf(result, "detach \(direction) of ifindex \(ifindex)")
  }

  /// Deletes the clsact qdisc of `ifindex`, with every filter on it (Junction's and any
  /// other); a missing qdisc is fine. For an interface Junction alone manages.
  public static func removeHook(ifindex: Int32) throws(BPFError) {
    var hook = try makeHook(
      ifindex: ifindex,
      attachPoint: bpf_tc_attach_point(BPF_TC_INGRESS.rawValue | BPF_TC_EGRESS.rawValue))
    let result = bpf_tc_hook_destroy(&hook)
    if isMissing(result) { return }
    try checkLibbpf(result, "delete clsact on ifindex \(ifindex)")
  }

  /// What the kernel answers when there is nothing to find: ENOENT for no filter at our
  /// handle and priority, EINVAL for no clsact qdisc ("Parent Qdisc doesn't exists", "Invalid
  /// handle") or no filter at all on that direction yet ("Cannot find specified filter
  /// chain"). EINVAL can mean nothing else here: every other argument is fixed and valid,
  /// and makeHook refuses a bad ifindex first. A missing interface is ENODEV, and thrown.
  private static func isMissing(_ result: Int32) -> Bool {
    result == -ENOENT || result == -EINVAL
  }

  // libbpf's LIBBPF_OPTS: `sz` up to the last field, everything else zero.

  private static func makeHook(
    ifindex: Int32, attachPoint: bpf_tc_attach_point
  ) throws(BPFError) -> bpf_tc_hook {
    // libbpf answers EINVAL for these, which would read as "nothing attached".
    guard ifindex > 0 else { throw .invalid("tc: interface index \(ifindex) is not valid") }
    var hook = bpf_tc_hook()
    hook.sz = libbpfOptionsSize(\bpf_tc_hook.parent)
    hook.ifindex = ifindex
    hook.attach_point = attachPoint
    return hook
  }

  private static func makeOptions() -> bpf_tc_opts {
    var options = bpf_tc_opts()
    options.sz = libbpfOptionsSize(\bpf_tc_opts.priority)
    options.handle = handle
    options.priority = priority
    return options
  }
}
