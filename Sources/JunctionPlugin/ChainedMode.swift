import AgentAPI
import CNIKit
import Logging
import NetKit

/// Chained mode: another plugin earlier in the list (bridge, ptp, flannel, ...) made the
/// pod's interface; Junction finds the host side of its veth, attaches the endpoint
/// programs there and registers the endpoint. It creates and deletes no links, addresses
/// or routes, and hands `prevResult` on as it came.
struct ChainedMode {
  let environment: [String: String]
  let logger: Logger

  // MARK: - ADD

  func add(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) -> CNIResult {
    // CNIKit refuses a chained ADD without prevResult (code 7); this only unwraps it.
    guard let prevResult = config.prevResult else {
      throw CNIError(.invalidConfig, "field \"prevResult\" is required in chained mode")
    }
    let netns = try PodNamespace.open(request.netns)
    // The agent first, as in native mode: without its programs there is nothing to do, and
    // code 11 tells the runtime to retry.
    let agent = AgentSession(config: config, environment: environment)
    let programs = try EndpointPrograms.open(try agent.requireReady())

    let podSocket = try netlink { () throws(NetKitError) in try RouteSocket(in: netns) }
    let hostSocket = try netlink { () throws(NetKitError) in try RouteSocket() }
    let pair = try vethPair(request, podSocket: podSocket, hostSocket: hostSocket)
    let kernelAddresses = try netlink { () throws(NetKitError) in
      try podSocket.addresses(index: pair.pod.index)
    }
    let addresses = ChainedAttachment.podAddresses(
      prevResult: prevResult,
      podInterface: ChainedAttachment.podInterfaceIndex(
        in: prevResult, ifname: request.ifname, netns: request.netns),
      kernelAddresses: kernelAddresses)
    guard !addresses.isEmpty else {
      throw CNIError(
        .invalidConfig,
        "no address for \(request.ifname): prevResult lists none on it and it carries none",
        details: "the plugin before Junction must give the pod an address")
    }

    var undo = UndoStack(logger: logger)
    do {
      try programs.attach(hostIfindex: pair.host.index)
      undo.push("detach from \(pair.host.name)") { () throws(CNIError) in
        try EndpointPrograms.detach(hostIfindex: pair.host.index, socket: hostSocket)
        agent.forgetCounters(hostIfindex: pair.host.index)
      }
      let spec = EndpointSpec(
        containerID: request.containerID, ifname: request.ifname, network: config.name,
        podNamespace: request.arg("K8S_POD_NAMESPACE"), podName: request.arg("K8S_POD_NAME"),
        podUID: request.arg("K8S_POD_UID"), netns: request.netns,
        hostInterface: pair.host.name, hostIfindex: Int(pair.host.index),
        podInterfaceIndex: Int(pair.pod.index), ips: addresses.map(\.description),
        mac: pair.pod.mac?.description, hostMAC: pair.host.mac?.description,
        socketLB: SocketLBOptOut.socketLB(request.arg(SocketLBOptOut.key)),
        netnsCookie: PodNamespace.cookie(podSocket, logger: logger))
      // A PUT that timed out may still have landed: take it back if ADD fails after all.
      undo.push("deregister \(spec.id)") { () throws(CNIError) in
        _ = try? agent.client.deleteEndpoint(spec.id, issuedAt: IssuedAt.now())
      }
      try agent.register(spec)
    } catch {
      undo.unwind()
      throw error
    }
    logger.info(
      "pod attached (chained)",
      metadata: ["host": "\(pair.host.name)", "ips": "\(addresses.map(\.description))"])
    return prevResult
  }

  /// CNI_IFNAME in the pod and the host end of its veth, or code 108 saying why there is
  /// none: no such interface, not a veth, or a veth whose peer is not in the node's
  /// namespace (the one the plugin runs in).
  private func vethPair(_ request: CNIRequest, podSocket: RouteSocket, hostSocket: RouteSocket)
    throws(CNIError) -> VethPair
  {
    let refuse = { (reason: String) in
      CNIError(
        .interfaceNotChainable, "chained mode cannot attach to \(request.ifname): \(reason)",
        details: "Junction chains onto veth-based plugins (bridge, ptp, flannel, calico, "
          + "aws-vpc-cni); nothing was attached or registered")
    }
    let lookup = try netlink { () throws(NetKitError) in
      try VethPair.find(
        ifname: request.ifname, netns: request.netns, podSocket: podSocket, hostSocket: hostSocket)
    }
    switch lookup {
    case .found(let pair): return pair
    case .refused(let reason): throw refuse(reason)
    }
  }

  // MARK: - DEL

  /// Detaches and deregisters; never fails on what is already gone (netns, interface,
  /// filters, endpoint, agent). The link itself is the previous plugin's, which deletes it
  /// after Junction (DEL runs the list in reverse).
  func del(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    let agent = AgentSession(config: config, environment: environment)
    var detachFailure: CNIError?
    do {
      try detach(request, agent: agent)
    } catch {
      detachFailure = error
    }
    try agent.deregister(request.attachment, logger: logger)
    if let detachFailure { throw detachFailure }
  }

  /// Finds the host interface through the pod's veth when the pod is still there, else
  /// through the agent's record of the endpoint (DEL after the netns is gone).
  private func detach(_ request: CNIRequest, agent: AgentSession) throws(CNIError) {
    let hostSocket = try netlink { () throws(NetKitError) in try RouteSocket() }
    var host = VethPair.find(ifname: request.ifname, netns: request.netns, hostSocket: hostSocket)?
      .host
    if host == nil,
      case .some(.some(let endpoint)) = agent.registered(
        EndpointID.make(containerID: request.containerID, ifname: request.ifname))
    {
      host = registeredLink(endpoint.spec, socket: hostSocket)
    }
    guard let host else {
      logger.info("nothing left to detach")
      return
    }
    try EndpointPrograms.detach(hostIfindex: host.index, socket: hostSocket)
    // Detached first, so no packet recreates the entry (the link stays: it is not ours).
    agent.forgetCounters(hostIfindex: host.index)
    logger.info("pod detached (chained)", metadata: ["host": "\(host.name)"])
  }

  /// The host link an endpoint was registered on, if it is still that link: same name and
  /// same index (a name alone may have been reused by a newer pod).
  private func registeredLink(_ spec: EndpointSpec, socket: RouteSocket) -> LinkInfo? {
    guard let link = try? socket.link(named: spec.hostInterface),
      Int(link.index) == spec.hostIfindex
    else { return nil }
    return link
  }

  // MARK: - CHECK

  /// The attachment is as ADD left it: prevResult names the interface, it is still a veth
  /// with its peer on the node, the endpoint is registered on that peer and both programs
  /// are attached there. Addresses and routes are the previous plugin's to check.
  func check(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    guard let expected = config.prevResult else {
      throw CNIError(.invalidConfig, "field \"prevResult\" is required for CHECK")
    }
    let netns = try PodNamespace.open(request.netns)
    var problems: [String] = []
    if ChainedAttachment.podInterfaceIndex(
      in: expected, ifname: request.ifname, netns: request.netns) == nil
    {
      problems.append("prevResult lists no interface \(request.ifname) in sandbox \(request.netns)")
    }
    var host: LinkInfo?
    do {
      let podSocket = try netlink { () throws(NetKitError) in try RouteSocket(in: netns) }
      let hostSocket = try netlink { () throws(NetKitError) in try RouteSocket() }
      host = try vethPair(request, podSocket: podSocket, hostSocket: hostSocket).host
    } catch {
      problems.append(error.msg)
    }
    problems += AgentSession(config: config, environment: environment).datapathProblems(
      request.attachment, hostLink: host)
    try requireNoProblems(problems, found: "problem", "with the chained attachment")
  }

  // MARK: - GC

  /// Every endpoint of this network the runtime no longer lists is detached from its host
  /// interface (when that is still the registered link) and deregistered. Links are never
  /// deleted: they belong to the previous plugin. Keeps going past failures.
  func gc(_ request: CNIRequest, _ config: JunctionConfig, valid: [Attachment]) throws(CNIError) {
    let hostSocket = try netlink { () throws(NetKitError) in try RouteSocket() }
    let failures = AgentSession(config: config, environment: environment).removeStale(
      network: config.name, keep: Set(valid), logger: logger
    ) { spec in
      guard let link = registeredLink(spec, socket: hostSocket) else { return nil }
      do throws(CNIError) {
        try EndpointPrograms.detach(hostIfindex: link.index, socket: hostSocket)
        logger.info("GC detached a stale endpoint", metadata: ["host": "\(link.name)"])
        return nil
      } catch {
        return "\(link.name): \(error.msg)"
      }
    }
    try requireNoGCFailures(failures)
  }

  // MARK: - STATUS

  /// Ready when the agent is healthy with its datapath loaded; the previous plugin answers
  /// for its own readiness.
  func status(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    try AgentSession(config: config, environment: environment).requireHealthy()
  }
}
