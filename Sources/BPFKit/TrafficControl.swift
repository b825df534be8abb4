import CLibbpf
import DatapathABI

#if canImport(Glibc)
  import Glibc
#endif

/// tc attachment of Junction's programs, on one of two hooks of the same device:
///
/// - `clsact`: a clsact qdisc and a direct-action cls_bpf filter, through libbpf's bpf_tc_*
///   (the netlink way, every kernel Junction supports). Junction owns one filter per
///   direction, at a fixed handle and priority, so attaching again replaces it in place
///   (BPF_TC_F_REPLACE) instead of stacking a second filter: attach is idempotent, and an
///   upgraded program takes over without a gap. Filters other software put on the same clsact
///   at other handles or priorities are left alone.
/// - `tcx`: the kernel's tcx hook (6.6 and later), attached with BPF_PROG_ATTACH (no link, so,
///   like a filter, the attachment lives as long as the device). The kernel runs it without
///   the qdisc and classifier layers: on a pod's veth that is about 1.3 µs less per
///   connection (bench/veth-prog-cost.sh). Junction's program is recognised by its name
///   (`junctionPrograms`), replaced in place (BPF_F_REPLACE), and put first (BPF_F_BEFORE) when
///   new, ahead of other tools' tcx programs, as priority 1 is on clsact. tcx runs before
///   any clsact filter.
///
/// Whichever hook an attach uses, it takes Junction's program off the other one afterwards,
/// so a device never runs Junction twice, and a node switches hooks by re-attaching.
/// `query` and `detach` look at both.
public enum TrafficControl {
  public enum Direction: Sendable, CaseIterable {
    /// Packets the interface receives; on a pod's host-side veth, what the pod sends.
    case ingress
    /// Packets the interface transmits; on a pod's host-side veth, what the pod receives.
    case egress

    var attachPoint: bpf_tc_attach_point {
      self == .ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS
    }

    /// BPF_TCX_INGRESS (46) and BPF_TCX_EGRESS (47): newer than Debian 12's linux/bpf.h.
    var tcxAttachType: bpf_attach_type {
      bpf_attach_type(rawValue: self == .ingress ? 46 : 47)
    }
  }

  /// The filter handle of Junction's filters ("JN"), unlikely to collide with another
  /// tool's hand-picked handle on the same hook.
  public static let handle: UInt32 = 0x4a4e
  /// Junction's filters run first: priority 1 is the lowest number tc accepts.
  public static let priority: UInt32 = 1

  /// What a tc program returns (TC_ACT_* in linux/pkt_cls.h), e.g. from a test run.
  public enum Verdict: Int32, Sendable {
    /// TC_ACT_UNSPEC, tcx's TCX_NEXT: the packet goes on to the hook's next program, and into
    /// the stack when none follows. What Junction's programs return for every packet they
    /// let through (bpf/lib/verdict.h), so a chained tool's program after them still runs.
    case next = -1
    /// TC_ACT_OK: passes the packet and ends the hook (no later filter or program runs).
    case ok = 0
    case reclassify = 1
    case shot = 2
    case pipe = 3
    case stolen = 4
    case queued = 5
    case `repeat` = 6
    case redirect = 7
  }

  /// Where Junction's programs go on a device.
  public enum Hook: String, Sendable, CaseIterable, Codable {
    case clsact
    case tcx
  }

  /// The names of the programs Junction attaches (bpf/junction_abi.h): on a tcx hook, which
  /// holds no handle of ours, these mark Junction's program.
  public static let junctionPrograms: Set<String> = [
    JUNCTION_PROG_FROM_ENDPOINT, JUNCTION_PROG_TO_ENDPOINT, JUNCTION_PROG_FROM_NETDEV,
    JUNCTION_PROG_TO_NETDEV,
  ]

  /// Whether this kernel has the tcx hook: a query of loopback's tcx ingress succeeds (EINVAL
  /// from kernels that do not know the attach type).
  public static func kernelHasTCX() -> Bool {
    (try? tcxPrograms(ifindex: 1, direction: .ingress)) != nil
  }

  /// Attaches `program` to `direction` of interface `ifindex` on `hook`, replacing Junction's
  /// program there when there is one, then takes Junction's program off the other hook.
  /// clsact: creates the qdisc when there is none. Needs CAP_NET_ADMIN in the interface's
  /// network namespace; the calling thread must be in that namespace (netlink sockets and
  /// interface indexes belong to the namespace they were opened in).
  public static func attach(
    program: BPFProgram, ifindex: Int32, direction: Direction, hook: Hook = .clsact
  ) throws(BPFError) {
    switch hook {
    case .clsact:
      try attachClsact(program: program, ifindex: ifindex, direction: direction)
      try detachTCX(ifindex: ifindex, direction: direction)
    case .tcx:
      try attachTCX(program: program, ifindex: ifindex, direction: direction)
      try detachClsact(ifindex: ifindex, direction: direction)
    }
  }

  private static func attachClsact(
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

  private static func attachTCX(
    program: BPFProgram, ifindex: Int32, direction: Direction
  ) throws(BPFError) {
    let what = "attach \(program.name) to tcx \(direction) of ifindex \(ifindex)"
    guard let attached = try tcxPrograms(ifindex: ifindex, direction: direction) else {
      throw .system(what + " (this kernel has no tcx hook)", errno: EOPNOTSUPP)
    }
    var options = bpf_prog_attach_opts()
    // Its last field ends the struct (no padding): the whole size is LIBBPF_OPTS's sz. (A key
    // path cannot name the field: libbpf has a function of the struct's name.)
    options.sz = MemoryLayout<bpf_prog_attach_opts>.size
    let ours = try junctionProgram(among: attached)
    if let ours {
      if ours.id == program.id { return }
      options.flags = tcxReplace
      options.replace_prog_fd = ours.fd
    } else {
      options.flags = tcxBefore
    }
    // `ours` owns the descriptor the kernel reads: it must not be closed before the call.
    try withExtendedLifetime(ours) { () throws(BPFError) in
      try checkLibbpf(
        bpf_prog_attach_opts(program.fd, ifindex, direction.tcxAttachType, &options), what)
    }
  }

  /// The id of Junction's program on `direction` of `ifindex`, on `hook`, or on either when
  /// nil (tcx first, then Junction's clsact filter); nil when there is none.
  public static func query(ifindex: Int32, direction: Direction, on hook: Hook? = nil)
    throws(BPFError) -> UInt32?
  {
    if hook != .clsact, let attached = try tcxPrograms(ifindex: ifindex, direction: direction),
      let ours = try junctionProgram(among: attached)
    {
      return ours.id
    }
    if hook == .tcx { return nil }
    var clsact = try makeHook(ifindex: ifindex, attachPoint: direction.attachPoint)
    var options = makeOptions()
    let result = bpf_tc_query(&clsact, &options)
    if isMissing(result) { return nil }
    try checkLibbpf(result, "query \(direction) of ifindex \(ifindex)")
    return options.prog_id
  }

  /// Removes Junction's program from `direction` of `ifindex`, on both hooks; a missing
  /// program, filter or qdisc is fine. Leaves the clsact qdisc (and anyone else's filters
  /// and tcx programs) in place.
  public static func detach(ifindex: Int32, direction: Direction) throws(BPFError) {
    try detachTCX(ifindex: ifindex, direction: direction)
    try detachClsact(ifindex: ifindex, direction: direction)
  }

  private static func detachClsact(ifindex: Int32, direction: Direction) throws(BPFError) {
    var hook = try makeHook(ifindex: ifindex, attachPoint: direction.attachPoint)
    var options = makeOptions()
    let result = bpf_tc_detach(&hook, &options)
    if isMissing(result) { return }
    try checkLibbpf(result, "detach \(direction) of ifindex \(ifindex)")
  }

  private static func detachTCX(ifindex: Int32, direction: Direction) throws(BPFError) {
    guard let attached = try tcxPrograms(ifindex: ifindex, direction: direction) else { return }
    for id in attached {
      guard let ours = try junctionProgram(id: id) else { continue }
      let result = withExtendedLifetime(ours) {
        bpf_prog_detach2(ours.fd, ifindex, direction.tcxAttachType)
      }
      // ENOENT: someone detached it in between.
      if result == -ENOENT { continue }
      try checkLibbpf(result, "detach \(ours.name) from tcx \(direction) of ifindex \(ifindex)")
    }
  }

  /// The ids of the programs on the tcx hook of `direction` of `ifindex`, in the order they
  /// run; nil when the kernel has no tcx hook. Throws for a missing interface (ENODEV).
  public static func tcxPrograms(ifindex: Int32, direction: Direction) throws(BPFError)
    -> [UInt32]?
  {
    guard ifindex > 0 else { throw .invalid("tc: interface index \(ifindex) is not valid") }
    do {
      return try attachedProgramIDs(
        target: ifindex, attachType: direction.tcxAttachType,
        "query tcx \(direction) of ifindex \(ifindex)")
    } catch  where error.errno == EINVAL {
      return nil
    }
  }

  /// The first of Junction's programs among `ids`.
  private static func junctionProgram(among ids: [UInt32]) throws(BPFError) -> BPFProgram? {
    for id in ids {
      if let program = try junctionProgram(id: id) { return program }
    }
    return nil
  }

  /// The program `id`, when it is one of Junction's (by name); nil for another tool's, or one
  /// that went away since it was listed.
  private static func junctionProgram(id: UInt32) throws(BPFError) -> BPFProgram? {
    let fd = bpf_prog_get_fd_by_id(id)
    if fd == -ENOENT { return nil }
    try checkLibbpf(fd, "open program \(id)")
    let program = try BPFProgram(owning: fd, describedAs: "program \(id)")
    return junctionPrograms.contains(program.name) ? program : nil
  }

  // BPF_F_REPLACE and BPF_F_BEFORE (linux/bpf.h; the second is newer than Debian 12's headers).
  private static let tcxReplace: UInt32 = 1 << 2
  private static let tcxBefore: UInt32 = 1 << 3

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
