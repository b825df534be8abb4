/// An error as the CNI spec defines it: printed as JSON on stdout, exit status 1.
/// Codes 0–99 are the spec's; 100 and up are Junction's own (see `JunctionCode`).
public struct CNIError: Error, Equatable, Sendable {
  public var code: Int
  public var msg: String
  public var details: String

  public init(code: Int, msg: String, details: String = "") {
    self.code = code
    self.msg = msg
    self.details = details
  }

  public init(_ code: CNIErrorCode, _ msg: String, details: String = "") {
    self.init(code: code.rawValue, msg: msg, details: details)
  }

  /// The error result object of spec section 5, in the caller's version.
  public func json(cniVersion: String) -> JSONValue {
    var object: [String: JSONValue] = [
      "cniVersion": .string(cniVersion), "code": .number(Double(code)), "msg": .string(msg),
    ]
    if !details.isEmpty { object["details"] = .string(details) }
    return .object(object)
  }

  /// Reads an error object another plugin (IPAM) printed; nil when the bytes are not one.
  public static func decode(_ bytes: [UInt8]) -> CNIError? {
    // A code that is not a whole number in range is not an error object we can trust.
    guard let value = try? JSONValue.parse(bytes), case .number(let code)? = value["code"],
      code.rounded() == code, code >= 0, code <= Double(Int32.max)
    else {
      return nil
    }
    return CNIError(
      code: Int(code), msg: value["msg"]?.stringValue ?? "",
      details: value["details"]?.stringValue ?? "")
  }
}

/// The well-known codes of CNI spec 1.1 section 5, and Junction's own from 100 up.
public enum CNIErrorCode: Int, Sendable {
  case incompatibleVersion = 1
  case unsupportedField = 2
  case containerUnknown = 3
  case invalidEnvironment = 4
  case ioFailure = 5
  case decodeFailure = 6
  case invalidConfig = 7
  case tryAgainLater = 11
  case pluginNotAvailable = 50
  case pluginNotAvailableLimitedConnectivity = 51

  // Junction's codes. Stable: runtimes and dashboards may match on them.
  case internalFailure = 100
  case interfaceExists = 101
  case delegatedPluginFailed = 102
  case netlinkFailure = 103
  case hostInterfaceConflict = 104
  case checkMismatch = 105
  case agentRejected = 106
  case datapathAttachFailed = 107
  /// Chained mode: CNI_IFNAME is not a veth whose peer is on the node (macvlan, ipvlan,
  /// host-device...), so there is no host-side interface to attach the programs to.
  case interfaceNotChainable = 108
}
