import AgentAPI
import AgentCore
import CNIKit
import Logging
import NetKit

#if canImport(Glibc)
  import Glibc
#endif

/// Native-routing mode: Junction makes the pod's network itself. IPAM is delegated; the
/// veth pair, addresses, neighbour entries, routes and sysctls are Junction's.
struct NativeMode {
  let environment: [String: String]
  let logger: Logger

  // MARK: - ADD

  func add(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) -> CNIResult {
    let netns = try PodNamespace.open(request.netns)
    let podSocket = try netlink { () throws(NetKitError) in try RouteSocket(in: netns) }
    let hostSocket = try netlink { () throws(NetKitError) in try RouteSocket() }
    if try netlink({ () throws(NetKitError) in try podSocket.link(named: request.ifname) }) != nil {
      throw CNIError(
        .interfaceExists, "interface \(request.ifname) already exists in \(request.netns)",
        details: "the runtime must DEL the attachment before adding it again")
    }
    let hostName = HostInterface.name(for: request.attachment)
    let alias = HostInterface.alias(network: config.name, attachment: request.attachment)
    try removeLeftover(hostName: hostName, alias: alias, socket: hostSocket)

    // The agent first: without it the pod would get a network but no datapath, so ADD
    // fails (code 11) before an address is taken or a link made.
    let agent = AgentSession(config: config, environment: environment)
    let programs = try EndpointPrograms.open(try agent.requireReady())

    let ipam = try DelegatedPlugin.require(
      config.ipamType ?? "", in: request.path, environment: environment)
    let allocation = try ipam.add(config)
    logger.debug("IPAM allocated", metadata: ["ips": "\(allocation.ips.map(\.address))"])

    var undo = UndoStack(logger: logger)
    undo.push("release IPAM allocation") { () throws(CNIError) in _ = try ipam.call(.del, config) }
    do {
      let addressing = try PodAddressing.plan(ipam: allocation, dnsOverride: config.dns)
      var random = SystemRandomNumberGenerator()
      let host = VethEnd(name: hostName, mac: .randomLocal(using: &random), mtu: config.mtu)
      let pod = VethEnd(name: request.ifname, mac: .randomLocal(using: &random), mtu: config.mtu)

      try netlink { () throws(NetKitError) in
        try hostSocket.createVeth(host: host, peer: pod, peerNamespace: netns)
      }
      undo.push("delete \(hostName)") { () throws(CNIError) in
        let index = try netlink { () throws(NetKitError) -> Int32? in
          guard let link = try hostSocket.link(named: hostName) else { return nil }
          try hostSocket.deleteLink(index: link.index)
          return link.index
        }
        // Unwound after the deregistration: with the link gone, nothing counts again.
        if let index { agent.forgetCounters(hostIfindex: index) }
      }
      let (hostIndex, podIndex) = try netlink { () throws(NetKitError) in
        guard let hostLink = try hostSocket.link(named: hostName) else {
          throw .notFound("host interface \(hostName) right after creating it")
        }
        guard let podLink = try podSocket.link(named: request.ifname) else {
          throw .notFound("\(request.ifname) in \(request.netns) right after creating it")
        }
        try hostSocket.setAlias(index: hostLink.index, alias)
        try enableForwarding(for: addressing)
        if addressing.ipv6 != nil {
          try prepareIPv6(pod: netns, podInterface: request.ifname, hostInterface: hostName)
        }
        try configurePod(podSocket, index: podLink.index, addressing: addressing, hostMAC: host.mac)
        try configureHost(
          hostSocket, index: hostLink.index, addressing: addressing, podMAC: pod.mac)
        return (hostLink.index, podLink.index)
      }
      try programs.attach(hostIfindex: hostIndex)
      let spec = EndpointSpec(
        containerID: request.containerID, ifname: request.ifname, network: config.name,
        podNamespace: request.arg("K8S_POD_NAMESPACE"), podName: request.arg("K8S_POD_NAME"),
        podUID: request.arg("K8S_POD_UID"), netns: request.netns, hostInterface: hostName,
        hostIfindex: Int(hostIndex), podInterfaceIndex: Int(podIndex),
        ips: addressing.families.flatMap(\.addresses).map(\.description),
        mac: pod.mac.description, hostMAC: host.mac.description,
        socketLB: SocketLBOptOut.socketLB(request.arg(SocketLBOptOut.key)),
        netnsCookie: PodNamespace.cookie(podSocket, logger: logger))
      // A PUT that timed out may still have landed: take it back if ADD fails after all.
      undo.push("deregister \(spec.id)") { () throws(CNIError) in
        _ = try? agent.client.deleteEndpoint(spec.id, issuedAt: IssuedAt.now())
      }
      try agent.register(spec)
      logger.info(
        "pod attached",
        metadata: ["host": "\(hostName)", "ips": "\(addressing.families.flatMap(\.addresses))"])
      return addressing.result(
        host: CNIResult.Interface(name: hostName, mac: host.mac.description, mtu: config.mtu),
        pod: CNIResult.Interface(
          name: request.ifname, mac: pod.mac.description, mtu: config.mtu, sandbox: request.netns))
    } catch {
      undo.unwind()
      throw error
    }
  }

  /// A host link under our derived name: a leftover of an earlier ADD of this very
  /// attachment is removed; anybody else's is a conflict we refuse to touch.
  private func removeLeftover(hostName: String, alias: String, socket: RouteSocket) throws(CNIError)
  {
    guard let existing = try netlink({ () throws(NetKitError) in try socket.link(named: hostName) })
    else {
      return
    }
    guard existing.alias == alias else {
      throw CNIError(
        .hostInterfaceConflict,
        "host interface \(hostName) already exists and is not this attachment's",
        details: "its alias is \"\(existing.alias ?? "")\", expected \"\(alias)\"")
    }
    logger.warning(
      "removing a leftover host interface of this attachment", metadata: ["host": "\(hostName)"])
    try netlink { () throws(NetKitError) in _ = try socket.deleteLink(index: existing.index) }
  }

  private func enableForwarding(for addressing: PodAddressing) throws(NetKitError) {
    if addressing.ipv4 != nil { try Sysctl.set("net/ipv4/ip_forward", "1") }
    if addressing.ipv6 != nil { try Sysctl.set("net/ipv6/conf/all/forwarding", "1") }
  }

  /// IPv6 on both ends of the veth before the pod's end comes up. In the pod: IPv6 on (a
  /// new namespace can start with disable_ipv6=1), no duplicate address detection on its
  /// interface, so its link-local address is usable at once as the IPAM addresses added
  /// with IFA_F_NODAD are (DAD holds a pod back a second or more), and no router
  /// advertisements (its routes are ours). On the node: IPv6 on the host end (a node whose
  /// default is disable_ipv6=1 would drop what it forwards there). Neighbour discovery
  /// needs nothing more: each end has the other as a permanent neighbour, as for ARP.
  private func prepareIPv6(pod: NetworkNamespace, podInterface: String, hostInterface: String)
    throws(NetKitError)
  {
    try pod.perform { () throws(NetKitError) in
      try Sysctl.set("net/ipv6/conf/all/disable_ipv6", "0")
      try Sysctl.set("net/ipv6/conf/\(podInterface)/disable_ipv6", "0")
      try Sysctl.set("net/ipv6/conf/\(podInterface)/accept_dad", "0")
      try Sysctl.set("net/ipv6/conf/\(podInterface)/accept_ra", "0")
    }
    try Sysctl.set("net/ipv6/conf/\(hostInterface)/disable_ipv6", "0")
  }

  /// Inside the pod: loopback up (`ctr run --cni` does not run the loopback plugin),
  /// host addresses, the gateway as a permanent neighbour at the host veth's MAC, a
  /// link-scoped route to it, and the routes through it.
  private func configurePod(
    _ socket: RouteSocket, index: Int32, addressing: PodAddressing, hostMAC: MACAddress
  ) throws(NetKitError) {
    if let loopback = try socket.link(named: "lo"), !loopback.isUp {
      try socket.setUp(index: loopback.index)
    }
    try socket.setUp(index: index)
    for family in addressing.families {
      for address in family.addresses { try socket.addAddress(address, index: index) }
      try socket.addPermanentNeighbor(family.gateway, mac: hostMAC, index: index)
      try socket.addRoute(
        IPPrefix(address: family.gateway, length: family.gateway.hostPrefixLength)!, index: index,
        linkScope: true)
      for route in family.routes {
        try socket.addRoute(route.dst, gateway: route.gw, index: index)
      }
    }
  }

  /// On the node: each pod address routed to the veth, with the pod's MAC known up front.
  private func configureHost(
    _ socket: RouteSocket, index: Int32, addressing: PodAddressing, podMAC: MACAddress
  ) throws(NetKitError) {
    for family in addressing.families {
      for address in family.addresses {
        try socket.addPermanentNeighbor(address.address, mac: podMAC, index: index)
        try socket.addRoute(address, index: index, linkScope: true)
      }
    }
  }

  // MARK: - DEL

  /// Never fails on what is already gone: a missing netns, link, allocation or agent is
  /// success. IPAM is released even when the links cannot be found.
  ///
  /// The link goes before the endpoint is deregistered: deleting it detaches the programs,
  /// so no packet can count under its ifindex again once its counter entry is dropped (here,
  /// for an endpoint the agent may never have registered, and by the agent's deregistration).
  func del(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    let hostName = HostInterface.name(for: request.attachment)
    let alias = HostInterface.alias(network: config.name, attachment: request.attachment)
    let agent = AgentSession(config: config, environment: environment)
    var linkFailure: CNIError?
    var removed = false
    do {
      switch try deleteHostLink(request, hostName: hostName, alias: alias) {
      case .deleted(let index):
        removed = true
        agent.forgetCounters(hostIfindex: index)
      case .absent: removed = try deletePodLink(request)
      case .notOurs: break
      }
    } catch {
      linkFailure = error
    }
    try agent.deregister(request.attachment, logger: logger)
    if let ipam = DelegatedPlugin.find(
      config.ipamType ?? "", in: request.path, environment: environment)
    {
      _ = try ipam.call(.del, config)
    } else {
      logger.warning(
        "IPAM plugin not found; its allocation is not released",
        metadata: ["ipam": "\(config.ipamType ?? "")"])
    }
    if let linkFailure { throw linkFailure }
    logger.info(
      removed ? "pod detached" : "nothing left to detach", metadata: ["host": "\(hostName)"])
  }

  enum HostLinkDeletion {
    case deleted(index: Int32)
    /// No link under the derived name (or it went meanwhile).
    case absent
    /// A link under the derived name that is somebody else's: left alone, and the pod's
    /// end with it.
    case notOurs
  }

  /// Deletes this attachment's host link, and with it its peer in the pod.
  private func deleteHostLink(_ request: CNIRequest, hostName: String, alias: String)
    throws(CNIError) -> HostLinkDeletion
  {
    let hostSocket = try netlink { () throws(NetKitError) in try RouteSocket() }
    guard let host = try netlink({ () throws(NetKitError) in try hostSocket.link(named: hostName) })
    else { return .absent }
    guard isThisAttachments(host, request, alias: alias, hostSocket: hostSocket) else {
      logger.warning(
        "host interface is not this attachment's; left alone",
        metadata: ["host": "\(hostName)", "alias": "\(host.alias ?? "")"])
      return .notOurs
    }
    let deleted = try netlink { () throws(NetKitError) in
      try hostSocket.deleteLink(index: host.index)
    }
    return deleted ? .deleted(index: host.index) : .absent
  }

  /// No host side: a pod end can still linger if a link was moved or renamed by hand.
  /// True when it was deleted.
  private func deletePodLink(_ request: CNIRequest) throws(CNIError) -> Bool {
    guard !request.netns.isEmpty, let netns = try? NetworkNamespace.open(request.netns) else {
      return false
    }
    return try netlink { () throws(NetKitError) in
      let podSocket = try RouteSocket(in: netns)
      guard let pod = try podSocket.link(named: request.ifname), pod.kind == "veth" else {
        return false
      }
      return try podSocket.deleteLink(index: pod.index)
    }
  }

  /// The link under the derived name is this attachment's when it carries its alias, or
  /// when it carries none and its veth peer is `CNI_IFNAME` inside `CNI_NETNS`: ADD sets
  /// the alias in a second request (the kernel ignores IFLA_IFALIAS on creation), so a
  /// plugin killed in between leaves the pair unlabelled, and only the peer proves it ours.
  private func isThisAttachments(
    _ host: LinkInfo, _ request: CNIRequest, alias: String, hostSocket: RouteSocket
  ) -> Bool {
    if host.alias == alias { return true }
    guard host.alias?.isEmpty ?? true,
      let pair = VethPair.find(
        ifname: request.ifname, netns: request.netns, hostSocket: hostSocket),
      pair.host.index == host.index
    else { return false }
    logger.warning(
      "host interface has no alias, but its veth peer is this pod's: an ADD was cut off before labelling it",
      metadata: ["host": "\(host.name)", "peer": "\(request.ifname)"])
    return true
  }

  // MARK: - CHECK

  func check(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    guard let expected = config.prevResult else {
      throw CNIError(.invalidConfig, "field \"prevResult\" is required for CHECK")
    }
    let netns = try PodNamespace.open(request.netns)
    let ipam = try DelegatedPlugin.require(
      config.ipamType ?? "", in: request.path, environment: environment)
    _ = try ipam.call(.check, config)

    let hostName = HostInterface.name(for: request.attachment)
    let observed = try netlink { () throws(NetKitError) in
      let podSocket = try RouteSocket(in: netns)
      let hostSocket = try RouteSocket()
      let podLink = try podSocket.link(named: request.ifname)
      let podAddresses =
        try podLink.map { link throws(NetKitError) in
          try podSocket.addressDetails(index: link.index)
        } ?? []
      return ObservedAttachment(
        podLink: podLink, podAddresses: podAddresses.map(\.prefix),
        podRoutes: try podSocket.routes(family: AF_INET) + podSocket.routes(family: AF_INET6),
        hostLink: try hostSocket.link(named: hostName),
        hostRoutes: try hostSocket.routes(family: AF_INET) + hostSocket.routes(family: AF_INET6),
        unusablePodAddresses: podAddresses.filter { $0.isTentative || $0.dadFailed })
    }
    var problems = CheckComparison.differences(
      expected: expected, request: request, hostName: hostName,
      hostAlias: HostInterface.alias(network: config.name, attachment: request.attachment),
      observed: observed)
    problems += AgentSession(config: config, environment: environment).datapathProblems(
      request.attachment, hostLink: observed.hostLink)
    try requireNoProblems(problems, found: "difference", "from prevResult")
  }

  // MARK: - GC

  /// Removes every host veth of this network whose attachment is not in `valid`, releases
  /// its IPAM allocation, then passes GC on to IPAM when it speaks 1.1.0. Keeps going past
  /// failures and reports them all at the end, as the spec asks.
  func gc(_ request: CNIRequest, _ config: JunctionConfig, valid: [Attachment]) throws(CNIError) {
    let keep = Set(valid)
    var failures: [String] = []
    let ipam = DelegatedPlugin.find(
      config.ipamType ?? "", in: request.path, environment: environment)
    let hostSocket = try netlink { () throws(NetKitError) in try RouteSocket() }
    let links = try netlink { () throws(NetKitError) in try hostSocket.links() }
    for link in links {
      guard let owner = link.alias.flatMap(HostInterface.parseAlias), owner.network == config.name,
        !keep.contains(owner.attachment)
      else { continue }
      logger.info(
        "GC removes a stale attachment",
        metadata: ["host": "\(link.name)", "container": "\(owner.attachment.containerID)"])
      do {
        try netlink { () throws(NetKitError) in _ = try hostSocket.deleteLink(index: link.index) }
        _ = try ipam?.call(
          .del, config,
          overrides: [
            "CNI_CONTAINERID": owner.attachment.containerID, "CNI_IFNAME": owner.attachment.ifname,
            "CNI_NETNS": "",
          ])
      } catch {
        failures.append("\(link.name): \(error.msg)")
      }
    }
    failures += AgentSession(config: config, environment: environment).removeStale(
      network: config.name, keep: keep, logger: logger)
    if let ipam, let versions = try? ipam.supportedVersions(asking: config.cniVersion),
      versions.contains(CNIVersion.v110.description)
    {
      do { _ = try ipam.call(.gc, config) } catch { failures.append(error.msg) }
    }
    try requireNoGCFailures(failures)
  }

  // MARK: - STATUS

  /// Ready when the agent is healthy with its datapath loaded, the IPAM plugin is
  /// installed, and, when IPAM speaks 1.1.0, it says it is ready too.
  func status(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    try AgentSession(config: config, environment: environment).requireHealthy()
    guard
      let ipam = DelegatedPlugin.find(
        config.ipamType ?? "", in: request.path, environment: environment)
    else {
      throw CNIError(
        .pluginNotAvailable, "IPAM plugin \"\(config.ipamType ?? "")\" not found on CNI_PATH",
        details: "searched: " + request.path.joined(separator: ":"))
    }
    let versions = try ipam.supportedVersions(asking: config.cniVersion)
    if versions.contains(CNIVersion.v110.description) {
      do {
        _ = try ipam.call(.status, config)
      } catch {
        throw CNIError(.pluginNotAvailable, error.msg, details: error.details)
      }
    }
  }
}
