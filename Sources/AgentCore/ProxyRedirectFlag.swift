/// One `--proxy-redirect NS/NAME[:PORT,...]=PROXYPORT` (config key "proxy-redirect", an
/// array of such strings): a Service whose TCP connections go to a proxy the agent does not
/// manage, listening transparently (IP_TRANSPARENT) on PROXYPORT in the node's namespace,
/// or the tests' stand-in for Envoy. No PORT list means every TCP port of the Service.
public struct ProxyRedirectFlag: Hashable, Sendable {
  public var namespace: String
  public var name: String
  public var ports: [UInt16]
  public var proxyPort: UInt16

  public init(namespace: String, name: String, ports: [UInt16], proxyPort: UInt16) {
    self.namespace = namespace
    self.name = name
    self.ports = ports
    self.proxyPort = proxyPort
  }

  /// The value, or why it is not one ("--proxy-redirect \"x\": ...").
  public static func parse(_ text: String) -> Result<ProxyRedirectFlag, ProxyRedirectFlagError> {
    func failure(_ why: String) -> Result<ProxyRedirectFlag, ProxyRedirectFlagError> {
      .failure(
        ProxyRedirectFlagError(
          description:
            "--proxy-redirect \"\(text)\": \(why) (expected NS/NAME[:PORT,...]=PROXYPORT)"))
    }
    let sides = text.split(separator: "=", omittingEmptySubsequences: false)
    guard sides.count == 2 else { return failure("one '=' before the proxy port") }
    guard let proxyPort = port(sides[1]) else {
      return failure("the proxy port must be a number from 1 to 65535")
    }
    let target = sides[0].split(separator: ":", omittingEmptySubsequences: false)
    guard target.count <= 2 else { return failure("one ':' before the port list") }
    let names = target[0].split(separator: "/", omittingEmptySubsequences: false)
    guard names.count == 2, !names[0].isEmpty, !names[1].isEmpty else {
      return failure("the Service must be namespace/name")
    }
    var ports: [UInt16] = []
    if target.count == 2 {
      for item in target[1].split(separator: ",", omittingEmptySubsequences: false) {
        guard let number = port(item) else {
          return failure("each Service port must be a number from 1 to 65535")
        }
        ports.append(number)
      }
    }
    return .success(
      ProxyRedirectFlag(
        namespace: String(names[0]), name: String(names[1]), ports: ports, proxyPort: proxyPort))
  }

  private static func port(_ text: Substring) -> UInt16? {
    guard let number = UInt16(text), number > 0 else { return nil }
    return number
  }
}

public struct ProxyRedirectFlagError: Error, Equatable, Sendable, CustomStringConvertible {
  public var description: String
}
