/// Junction's plugin configuration object (the stdin of every call but VERSION):
///
///     {"cniVersion": "1.1.0", "name": "pods", "type": "junction", "mode": "native",
///      "agentSocket": "/run/junction/junction.sock", "mtu": 1500,
///      "logFile": "/var/log/junction-cni.log", "logLevel": "info",
///      "ipam": {"type": "host-local", ...}, "dns": {...}}
///
/// Every field is validated here, and a bad one is reported by name (code 7).
public struct JunctionConfig: Sendable {
  public enum Mode: String, Sendable, CaseIterable {
    /// Junction creates the veth pair, addresses and routes itself.
    case native
    /// Junction runs after another CNI that made the interface (`prevResult` required).
    case chained
  }

  public enum LogLevel: String, Sendable, CaseIterable {
    case error, warning, info, debug
  }

  public static let defaultAgentSocket = "/run/junction/junction.sock"
  public static let defaultMTU = 1500
  /// Seconds the plugin waits for the agent per request before ADD fails with code 11.
  /// Short enough that kubelet retries promptly, long enough for a busy agent.
  public static let defaultAgentTimeout = 10.0

  public var cniVersion: CNIVersion
  public var name: String
  public var type: String
  public var mode: Mode
  public var agentSocket: String
  public var agentTimeout: Double
  public var mtu: Int
  public var logFile: String?
  public var logLevel: LogLevel
  /// The IPAM plugin's name (`ipam.type`); nil when the config has no `ipam`.
  public var ipamType: String?
  /// DNS settings that override what IPAM returned, as ptp does.
  public var dns: CNIResult.DNS?
  public var prevResult: CNIResult?
  /// GC's still-valid attachments (`cni.dev/attachments`, or libcni's `cni.dev/valid-attachments`).
  public var validAttachments: [Attachment]?
  /// The whole object as received: delegated plugins get exactly this (spec section 4).
  public var raw: JSONValue

  /// Decodes and validates stdin for `command`.
  public static func parse(_ stdin: [UInt8], for command: CNICommand) throws(CNIError)
    -> JunctionConfig
  {
    if stdin.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
      throw CNIError(.decodeFailure, "the network configuration on stdin is empty")
    }
    let raw: JSONValue
    do {
      raw = try JSONValue.parse(stdin)
    } catch {
      throw CNIError(.decodeFailure, "the network configuration on stdin is not valid JSON")
    }
    guard let object = raw.objectValue else {
      throw CNIError(
        .decodeFailure, "the network configuration must be a JSON object, got \(raw.typeName)")
    }
    let reader = FieldReader(object: object, path: "", code: .invalidConfig)

    let versionText = try reader.requiredString("cniVersion")
    guard let version = CNIVersion(versionText), version.isSupported else {
      throw CNIError(
        .incompatibleVersion, "cniVersion \"\(versionText)\" is not supported",
        details: "Junction supports "
          + CNIVersion.supported.map(\.description).joined(separator: ", "))
    }
    let name = try reader.requiredString("name")
    if let problem = Validate.networkName(name) {
      throw reader.fail("name", problem)
    }
    let modeText = try reader.string("mode") ?? Mode.native.rawValue
    guard let mode = Mode(rawValue: modeText) else {
      throw reader.fail(
        "mode",
        "must be one of " + Mode.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
          + ", got \"\(modeText)\"")
    }
    let agentSocket = try reader.string("agentSocket") ?? defaultAgentSocket
    guard agentSocket.hasPrefix("/") else {
      throw reader.fail("agentSocket", "must be an absolute path, got \"\(agentSocket)\"")
    }
    let agentTimeout = try reader.number("agentTimeout") ?? defaultAgentTimeout
    guard agentTimeout >= 0.05, agentTimeout <= 300 else {
      throw reader.fail("agentTimeout", "must be between 0.05 and 300 seconds, got \(agentTimeout)")
    }
    let mtu = try reader.int("mtu") ?? defaultMTU
    guard (68...65535).contains(mtu) else {
      throw reader.fail("mtu", "must be between 68 and 65535, got \(mtu)")
    }
    let logFile = try reader.string("logFile")
    if let logFile, !logFile.hasPrefix("/") {
      throw reader.fail("logFile", "must be an absolute path, got \"\(logFile)\"")
    }
    let levelText = try reader.string("logLevel") ?? LogLevel.info.rawValue
    guard let logLevel = LogLevel(rawValue: levelText) else {
      throw reader.fail(
        "logLevel",
        "must be one of " + LogLevel.allCases.map(\.rawValue).joined(separator: ", ")
          + ", got \"\(levelText)\"")
    }

    var ipamType: String?
    if let ipam = try reader.object("ipam") {
      let type = try ipam.requiredString("type")
      if type.contains("/") || type == "." || type == ".." {
        throw ipam.fail("type", "must be a plugin name found on CNI_PATH, got \"\(type)\"")
      }
      ipamType = type
      // Only on ADD: DEL and GC must release what an older, looser config allocated.
      if command == .add, type == "host-local" { try HostLocalRanges.validate(ipam) }
    }
    if mode == .native, ipamType == nil, command != .version {
      throw reader.fail(
        "ipam", "is required in native mode (for example {\"type\": \"host-local\", ...})")
    }

    var dns: CNIResult.DNS?
    if let dnsReader = try reader.object("dns") {
      let parsed = try CNIResult.DNS(reader: dnsReader)
      dns = parsed.isEmpty ? nil : parsed
    }

    var prevResult: CNIResult?
    if let value = object["prevResult"], value != .null {
      do {
        prevResult = try CNIResult(json: value)
      } catch {
        throw CNIError(.invalidConfig, "field \"prevResult\" is not a valid result: \(error.msg)")
      }
    }
    if command == .add {
      if mode == .native, prevResult != nil {
        throw reader.fail(
          "prevResult",
          "is not accepted in native mode: Junction creates the interface itself, so it must be "
            + "the first plugin of the list (use \"mode\": \"chained\" to run after another CNI)")
      }
      if mode == .chained, prevResult == nil {
        throw reader.fail(
          "prevResult",
          "is required in chained mode: put Junction after the plugin that creates the interface")
      }
    }

    var validAttachments: [Attachment]?
    for key in ["cni.dev/attachments", "cni.dev/valid-attachments"] where object[key] != nil {
      let items = try reader.objects(key)
      var list = validAttachments ?? []
      for item in items {
        list.append(
          Attachment(
            containerID: try item.requiredString("containerID"),
            ifname: try item.requiredString("ifname")))
      }
      validAttachments = list
    }

    return JunctionConfig(
      cniVersion: version, name: name, type: try reader.requiredString("type"), mode: mode,
      agentSocket: agentSocket, agentTimeout: agentTimeout, mtu: mtu, logFile: logFile,
      logLevel: logLevel, ipamType: ipamType,
      dns: dns, prevResult: prevResult, validAttachments: validAttachments, raw: raw)
  }

  /// The same configuration with another `cniVersion`, for a delegated plugin that stops
  /// at an older version than the runtime asked for.
  public func raw(withVersion version: CNIVersion) -> JSONValue {
    guard var object = raw.objectValue else { return raw }
    object["cniVersion"] = .string(version.description)
    return .object(object)
  }
}
