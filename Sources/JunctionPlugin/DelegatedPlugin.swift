import CNIKit

#if canImport(Glibc)
  import Glibc
#endif

/// A delegated plugin (IPAM) found on CNI_PATH, run per spec section 4: same environment,
/// the complete network configuration on stdin.
struct DelegatedPlugin {
  let type: String
  let executable: String
  /// Our own environment; each call overrides CNI_COMMAND (and, for GC's releases, the
  /// attachment variables).
  let environment: [String: String]

  /// Finds `type` in the CNI_PATH directories, first match wins, as libcni does.
  static func find(_ type: String, in searchPath: [String], environment: [String: String])
    -> DelegatedPlugin?
  {
    for directory in searchPath where !directory.isEmpty {
      let candidate = directory.hasSuffix("/") ? directory + type : directory + "/" + type
      if access(candidate, X_OK) == 0 {
        return DelegatedPlugin(type: type, executable: candidate, environment: environment)
      }
    }
    return nil
  }

  static func require(_ type: String, in searchPath: [String], environment: [String: String])
    throws(CNIError) -> DelegatedPlugin
  {
    guard let plugin = find(type, in: searchPath, environment: environment) else {
      throw CNIError(
        .delegatedPluginFailed, "IPAM plugin \"\(type)\" not found on CNI_PATH",
        details: "searched: "
          + (searchPath.isEmpty ? "(CNI_PATH is empty)" : searchPath.joined(separator: ":")))
    }
    return plugin
  }

  /// ADD: the IPAM result.
  func add(_ config: JunctionConfig) throws(CNIError) -> CNIResult {
    let output = try call(.add, config)
    do {
      return try CNIResult(json: try JSONValue.parse(output))
    } catch let error as CNIError {
      throw CNIError(
        .delegatedPluginFailed, "IPAM plugin \"\(type)\" returned a bad result: \(error.msg)")
    } catch {
      throw CNIError(
        .delegatedPluginFailed, "IPAM plugin \"\(type)\" returned a result that is not JSON")
    }
  }

  func call(
    _ command: CNICommand, _ config: JunctionConfig, overrides: [String: String] = [:]
  ) throws(CNIError) -> [UInt8] {
    do {
      return try exec(command, config.raw, overrides: overrides)
    } catch let error where error.code == CNIErrorCode.incompatibleVersion.rawValue {
      // An IPAM plugin older than the request (host-local 1.1.x stops at 1.0.0): ask what it
      // speaks and repeat the call in the newest version we share.
      guard let version = try? negotiatedVersion(below: config.cniVersion),
        version != config.cniVersion
      else { throw error }
      return try exec(command, config.raw(withVersion: version), overrides: overrides)
    }
  }

  /// The versions the plugin lists in answer to VERSION.
  func supportedVersions(asking version: CNIVersion) throws(CNIError) -> [String] {
    let output = try exec(
      .version, ["cniVersion": .string(version.description)],
      overrides: [:], environment: ["CNI_PATH": environment["CNI_PATH"] ?? ""])
    return (try? JSONValue.parse(output))?["supportedVersions"]?.arrayValue?.compactMap(
      \.stringValue) ?? []
  }

  func negotiatedVersion(below ceiling: CNIVersion) throws(CNIError) -> CNIVersion? {
    CNIVersion.negotiate(ceiling: ceiling, peer: try supportedVersions(asking: ceiling))
  }

  private func exec(
    _ command: CNICommand, _ stdin: JSONValue, overrides: [String: String],
    environment base: [String: String]? = nil
  ) throws(CNIError) -> [UInt8] {
    var environment = base ?? self.environment
    environment["CNI_COMMAND"] = command.rawValue
    for (key, value) in overrides { environment[key] = value }
    let outcome: ProcessRunner.Outcome
    do {
      outcome = try ProcessRunner.run(
        executable, environment: environment, stdin: stdin.serialized())
    } catch {
      throw CNIError(.delegatedPluginFailed, "IPAM plugin \"\(type)\": \(error)")
    }
    guard outcome.exitStatus == 0 else {
      // Pass the delegate's own code through, so a runtime sees "no addresses left" as
      // host-local said it, prefixed with who said it.
      if var error = CNIError.decode(outcome.stdout) {
        error.msg = "IPAM plugin \"\(type)\" \(command.rawValue): \(error.msg)"
        throw error
      }
      throw CNIError(
        .delegatedPluginFailed,
        "IPAM plugin \"\(type)\" \(command.rawValue) exited with status \(outcome.exitStatus)",
        details: String(decoding: outcome.stdout.prefix(1024), as: UTF8.self))
    }
    return outcome.stdout
  }
}
