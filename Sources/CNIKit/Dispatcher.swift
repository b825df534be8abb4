/// What a CNI plugin implements. The dispatcher has already validated the environment
/// and the configuration for the command, and gated the command on `cniVersion`.
public protocol CNIPlugin {
  func add(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) -> CNIResult
  func del(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError)
  func check(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError)
  /// `valid` is the runtime's list of attachments still in use; remove everything else.
  func gc(_ request: CNIRequest, _ config: JunctionConfig, valid: [Attachment]) throws(CNIError)
  func status(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError)
}

/// What the binary writes and how it exits.
public struct CNIResponse: Equatable, Sendable {
  public var stdout: [UInt8]
  public var exitCode: Int32

  public static func success(_ json: JSONValue?) -> CNIResponse {
    CNIResponse(stdout: json.map { $0.serialized() + [0x0A] } ?? [], exitCode: 0)
  }

  public static func failure(_ error: CNIError, cniVersion: String) -> CNIResponse {
    CNIResponse(stdout: error.json(cniVersion: cniVersion).serialized() + [0x0A], exitCode: 1)
  }
}

/// Spec section 2 as a pure function: environment + stdin in, stdout + exit code out.
public enum CNIDispatcher {
  /// `makePlugin` runs once the configuration is valid, so the plugin can set up logging
  /// from it; it is not called for VERSION or for bad input.
  public static func run<Plugin: CNIPlugin>(
    environment: [String: String], stdin: [UInt8],
    makePlugin: (JunctionConfig) -> Plugin
  ) -> CNIResponse {
    // Errors before the configuration is read still answer in the caller's version
    // when stdin names one we speak. Worked out only then: parsing stdin twice on every
    // call would cost the success path a millisecond.
    var replyVersion: String {
      declaredVersion(stdin)?.description ?? CNIVersion.latest.description
    }
    let request: CNIRequest
    do {
      request = try CNIRequest.from(environment: environment)
    } catch {
      return .failure(error, cniVersion: replyVersion)
    }
    if request.command == .version {
      return .success(versionInfo(stdin))
    }
    let config: JunctionConfig
    do {
      config = try JunctionConfig.parse(stdin, for: request.command)
    } catch {
      return .failure(error, cniVersion: replyVersion)
    }
    let version = config.cniVersion.description
    let minimum = CNIVersion.minimum(for: request.command)
    guard config.cniVersion >= minimum else {
      return .failure(
        CNIError(
          .incompatibleVersion,
          "\(request.command.rawValue) needs cniVersion \(minimum) or later, the configuration says \(version)"
        ), cniVersion: version)
    }
    let plugin = makePlugin(config)
    do {
      switch request.command {
      case .add:
        return .success(try plugin.add(request, config).json(for: config.cniVersion))
      case .del:
        try plugin.del(request, config)
      case .check:
        try plugin.check(request, config)
      case .gc:
        try plugin.gc(request, config, valid: config.validAttachments ?? [])
      case .status:
        try plugin.status(request, config)
      case .version:
        break
      }
      return .success(nil)
    } catch {
      return .failure(error, cniVersion: version)
    }
  }

  /// VERSION: echo the caller's `cniVersion` (or the latest) and list what Junction speaks.
  public static func versionInfo(_ stdin: [UInt8]) -> JSONValue {
    let echoed =
      (try? JSONValue.parse(stdin))?["cniVersion"]?.stringValue ?? CNIVersion.latest.description
    return [
      "cniVersion": .string(echoed),
      "supportedVersions": .array(CNIVersion.supported.map { .string($0.description) }),
    ]
  }

  private static func declaredVersion(_ stdin: [UInt8]) -> CNIVersion? {
    guard let text = (try? JSONValue.parse(stdin))?["cniVersion"]?.stringValue,
      let version = CNIVersion(text), version.isSupported
    else { return nil }
    return version
  }
}
