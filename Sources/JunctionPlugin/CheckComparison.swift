import CNIKit
import NetKit

/// What CHECK read from the kernel for one attachment.
public struct ObservedAttachment: Sendable {
  public var podLink: LinkInfo?
  public var podAddresses: [IPPrefix]
  public var podRoutes: [RouteInfo]
  public var hostLink: LinkInfo?
  public var hostRoutes: [RouteInfo]
  /// Pod addresses the kernel holds back: IPv6 still tentative, or DAD failed.
  public var unusablePodAddresses: [AddressInfo]

  public init(
    podLink: LinkInfo?, podAddresses: [IPPrefix], podRoutes: [RouteInfo], hostLink: LinkInfo?,
    hostRoutes: [RouteInfo], unusablePodAddresses: [AddressInfo] = []
  ) {
    self.podLink = podLink
    self.podAddresses = podAddresses
    self.unusablePodAddresses = unusablePodAddresses
    self.podRoutes = podRoutes
    self.hostLink = hostLink
    self.hostRoutes = hostRoutes
  }
}

/// CHECK's judgement, kept apart from the netlink reads: every way the kernel differs from
/// `prevResult`, one sentence each. Empty means the attachment is as ADD left it.
public enum CheckComparison {
  public static func differences(
    expected: CNIResult, request: CNIRequest, hostName: String, hostAlias: String,
    observed: ObservedAttachment
  ) -> [String] {
    var problems: [String] = []
    guard
      let podIndex = expected.interfaces.firstIndex(where: {
        $0.name == request.ifname && $0.sandbox == request.netns
      })
    else {
      return ["prevResult lists no interface \(request.ifname) in sandbox \(request.netns)"]
    }
    let podExpected = expected.interfaces[podIndex]

    // The pod side.
    if let pod = observed.podLink {
      if pod.kind != "veth" {
        problems.append("\(request.ifname) is a \(pod.kind ?? "device without a kind"), not a veth")
      }
      if let mac = podExpected.mac, pod.mac.map(\.description) != mac.lowercased() {
        problems.append(
          "\(request.ifname) has MAC \(pod.mac?.description ?? "none"), prevResult says \(mac)")
      }
      if !pod.isUp { problems.append("\(request.ifname) is down") }
      for ip in expected.ips where ip.interface == podIndex {
        if !observed.podAddresses.contains(ip.address) {
          problems.append("address \(ip.address) is missing from \(request.ifname)")
        } else if let held = observed.unusablePodAddresses.first(where: {
          $0.prefix == ip.address
        }) {
          problems.append(
            "address \(ip.address) on \(request.ifname) is "
              + (held.dadFailed
                ? "unusable: duplicate address detection failed"
                : "tentative: duplicate address detection has not finished"))
        }
      }
      for route in expected.routes {
        let gateway = route.gw ?? gatewayFor(route.dst.address.isIPv4, in: expected)
        let present = observed.podRoutes.contains {
          $0.destination.network == route.dst.network && $0.gateway == gateway
            && $0.interfaceIndex == pod.index
        }
        if !present {
          let via = gateway.map { " via \($0)" } ?? ""
          problems.append("route \(route.dst)\(via) is missing in the pod")
        }
      }
    } else {
      problems.append("\(request.ifname) does not exist in \(request.netns)")
    }

    // The host side.
    guard let host = observed.hostLink else {
      problems.append("host interface \(hostName) does not exist")
      return problems
    }
    if host.alias != hostAlias {
      problems.append(
        "host interface \(hostName) belongs to \(host.alias ?? "nobody"), not \(hostAlias)")
    }
    if let hostExpected = expected.interfaces.first(where: {
      $0.name == hostName && $0.sandbox == nil
    }),
      let mac = hostExpected.mac, host.mac.map(\.description) != mac.lowercased()
    {
      problems.append(
        "host interface \(hostName) has MAC \(host.mac?.description ?? "none"), prevResult says \(mac)"
      )
    }
    if !host.isUp { problems.append("host interface \(hostName) is down") }
    for ip in expected.ips where ip.interface == podIndex {
      let hostRoute = ip.address.hostPrefix
      if !observed.hostRoutes.contains(where: {
        $0.destination == hostRoute && $0.interfaceIndex == host.index
      }) {
        problems.append("host route \(hostRoute) dev \(hostName) is missing")
      }
    }
    return problems
  }

  private static func gatewayFor(_ ipv4: Bool, in result: CNIResult) -> IPAddress? {
    result.ips.first { $0.address.address.isIPv4 == ipv4 }?.gateway
  }
}
