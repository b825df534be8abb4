import Foundation

extension TestNode {
  /// Gives `pod` the IPv6 address `address`/128 on eth0, a default route via fe80::1, and
  /// this node the matching host route through the pod's host-side veth (found by the peer
  /// index eth0 names).
  func addIPv6(_ address: String, to pod: String) throws {
    for setting in [
      "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0",
      "net.ipv6.conf.eth0.disable_ipv6=0", "net.ipv6.conf.eth0.accept_dad=0",
      "net.ipv6.conf.eth0.accept_ra=0",
    ] {
      try Shell.must(["ip", "netns", "exec", pod, "sysctl", "-qw", setting])
    }
    try Shell.must(["ip", "-n", pod, "-6", "addr", "add", "\(address)/128", "dev", "eth0", "nodad"])
    let link = try Shell.must(["ip", "-n", pod, "-o", "link", "show", "eth0"])
    // "2: eth0@if7: <...>": the host-side veth's index.
    guard let range = link.range(of: "@if"),
      let index = Int(link[range.upperBound...].prefix(while: \.isNumber))
    else { throw TestNode.MissingPrerequisite(description: "no peer index in: \(link)") }
    let hostLinks = try Shell.must(["ip", "-n", name, "-o", "link", "show"])
    guard
      let line = hostLinks.split(separator: "\n").first(where: { $0.hasPrefix("\(index): ") }),
      let veth = line.split(separator: ":").dropFirst().first?
        .trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init)
    else { throw TestNode.MissingPrerequisite(description: "no host link \(index)") }
    try Shell.must(
      ["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.\(veth).disable_ipv6=0"])
    try Shell.must(["ip", "-n", name, "-6", "addr", "add", "fe80::1/64", "dev", veth, "nodad"])
    try Shell.must(["ip", "-n", name, "-6", "route", "add", "\(address)/128", "dev", veth])
    try Shell.must([
      "ip", "-n", pod, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
    ])
  }
}
