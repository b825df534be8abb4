import NetKit

/// A pod's interface and the host-side end of its veth, proven by the kernel: the pod's
/// link is a veth whose peer (IFLA_LINK, IFLA_LINK_NETNSID) lives in the namespace the
/// plugin runs in, and the link at that index there is a veth pointing back at it.
///
/// Chained mode finds the host end this way (the other plugin's veth carries no mark of
/// ours); native mode's DEL uses it to recognise its own host link when the alias is
/// missing (an ADD killed between creating the pair and labelling it).
struct VethPair {
  var pod: LinkInfo
  var host: LinkInfo

  enum Lookup {
    case found(VethPair)
    /// Why there is no such pair, in a sentence for the caller's message.
    case refused(String)
  }

  /// `ifname` in the pod (`podSocket`) and its peer on the node (`hostSocket`).
  static func find(ifname: String, netns: String, podSocket: RouteSocket, hostSocket: RouteSocket)
    throws(NetKitError) -> Lookup
  {
    guard let pod = try podSocket.link(named: ifname) else {
      return .refused("there is no interface \(ifname) in \(netns)")
    }
    let nodeID = try podSocket.namespaceID(of: try NetworkNamespace.current())
    if let reason = ChainedAttachment.refusal(podLink: pod, nodeNamespaceID: nodeID) {
      return .refused(reason)
    }
    let host = try hostSocket.link(index: pod.peerIndex ?? 0)
    if let reason = ChainedAttachment.peerMismatch(hostLink: host, podLink: pod) {
      return .refused(reason)
    }
    guard let host else { return .refused("the peer of \(ifname) is not on the node") }
    return .found(VethPair(pod: pod, host: host))
  }

  /// The pair when the pod namespace at `netns` can still be opened and holds one; nil
  /// otherwise (no namespace, no such interface, not a veth with its peer on the node).
  static func find(ifname: String, netns: String, hostSocket: RouteSocket) -> VethPair? {
    guard !netns.isEmpty, let namespace = try? NetworkNamespace.open(netns),
      let podSocket = try? RouteSocket(in: namespace),
      case .found(let pair) = try? find(
        ifname: ifname, netns: netns, podSocket: podSocket, hostSocket: hostSocket)
    else { return nil }
    return pair
  }
}
