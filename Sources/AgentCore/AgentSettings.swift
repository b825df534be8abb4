import FoundationEssentials

/// The agent's settings as a `--config` file gives them: a JSON object whose keys are the
/// long flag names ("node-name", "socket", "state-dir", "bpf-fs", "bpf-objects", "devices",
/// "log-level"). Flags given on the command line win over the file.
public struct AgentConfigFile: Equatable, Sendable {
  public var nodeName: String?
  public var socket: String?
  public var stateDir: String?
  public var bpfFS: String?
  public var bpfObjects: String?
  public var devices: [String]?
  public var logLevel: String?

  public init(
    nodeName: String? = nil, socket: String? = nil, stateDir: String? = nil, bpfFS: String? = nil,
    bpfObjects: String? = nil, devices: [String]? = nil, logLevel: String? = nil
  ) {
    self.nodeName = nodeName
    self.socket = socket
    self.stateDir = stateDir
    self.bpfFS = bpfFS
    self.bpfObjects = bpfObjects
    self.devices = devices
    self.logLevel = logLevel
  }

  public static let keys: [String] = [
    "node-name", "socket", "state-dir", "bpf-fs", "bpf-objects", "devices", "log-level",
  ]

  public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
  }

  /// Parses the file's bytes. `devices` may be an array of names or one comma-separated string.
  public static func parse(_ bytes: [UInt8]) throws(Failure) -> AgentConfigFile {
    let data = Data(bytes)
    let keys: [String]
    do {
      keys = try JSONDecoder().decode(ObjectKeys.self, from: data).keys
    } catch {
      switch error {
      case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
        if context.codingPath.isEmpty {
          throw Failure(description: "must be a JSON object whose keys are flag names")
        }
      default: break
      }
      throw Failure(description: "is not valid JSON")
    }
    let unknown = keys.filter { !Self.keys.contains($0) }.sorted()
    if !unknown.isEmpty {
      throw Failure(
        description:
          "unknown key\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", "))"
          + " (known: \(Self.keys.joined(separator: ", ")))")
    }
    do {
      return try JSONDecoder().decode(FileShape.self, from: data).settings
    } catch let error as DecodingError {
      switch error {
      case .typeMismatch(_, let context), .valueNotFound(_, let context),
        .dataCorrupted(let context):
        let key = context.codingPath.first?.stringValue ?? "?"
        throw Failure(
          description: key == "devices"
            ? "'devices' must be an array of interface names or a comma-separated string"
            : "'\(key)' must be a string")
      default:
        throw Failure(description: "\(error)")
      }
    } catch {
      throw Failure(description: "\(error)")
    }
  }

  /// "eth0,eth1" → ["eth0", "eth1"]; blanks dropped.
  public static func splitDevices(_ text: String) -> [String] {
    text.split(separator: ",").map {
      String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
    .filter { !$0.isEmpty }
  }

  private struct FileShape: Decodable {
    var settings: AgentConfigFile

    init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: AnyKey.self)
      func string(_ key: String) throws -> String? {
        try container.decodeIfPresent(String.self, forKey: AnyKey(stringValue: key))
      }
      var devices: [String]?
      let devicesKey = AnyKey(stringValue: "devices")
      if container.contains(devicesKey) {
        if let list = try? container.decode([String].self, forKey: devicesKey) {
          devices = list
        } else {
          devices = AgentConfigFile.splitDevices(
            try container.decode(String.self, forKey: devicesKey))
        }
      }
      settings = AgentConfigFile(
        nodeName: try string("node-name"), socket: try string("socket"),
        stateDir: try string("state-dir"), bpfFS: try string("bpf-fs"),
        bpfObjects: try string("bpf-objects"), devices: devices, logLevel: try string("log-level"))
    }
  }
}

/// The agent's effective settings and their checks.
public struct AgentSettings: Equatable, Sendable {
  public var nodeName: String
  public var socket: String
  public var stateDir: String
  public var bpfFS: String
  public var bpfObjects: String
  public var devices: [String]
  public var logLevel: String

  public static let defaultSocket = "/run/junction/junction.sock"
  public static let defaultStateDir = "/var/lib/junction"
  public static let defaultBPFFS = "/sys/fs/bpf/junction"
  public static let defaultBPFObjects = "/usr/local/lib/junction/bpf"
  public static let defaultLogLevel = "info"
  public static let logLevels = [
    "trace", "debug", "info", "notice", "warning", "error", "critical",
  ]
  /// sizeof(sockaddr_un.sun_path) - 1.
  public static let maximumSocketPathLength = 107

  public init(
    nodeName: String, socket: String, stateDir: String, bpfFS: String, bpfObjects: String,
    devices: [String], logLevel: String
  ) {
    self.nodeName = nodeName
    self.socket = socket
    self.stateDir = stateDir
    self.bpfFS = bpfFS
    self.bpfObjects = bpfObjects
    self.devices = devices
    self.logLevel = logLevel
  }

  /// Flag, else config file, else environment (`JUNCTION_SOCKET`), else the default.
  public static func resolve(
    flags: AgentConfigFile, file: AgentConfigFile?, environment: [String: String], hostname: String
  ) -> AgentSettings {
    let file = file ?? AgentConfigFile()
    let socketFromEnvironment = environment["JUNCTION_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    return AgentSettings(
      nodeName: flags.nodeName ?? file.nodeName ?? hostname,
      socket: flags.socket ?? file.socket ?? socketFromEnvironment ?? defaultSocket,
      stateDir: flags.stateDir ?? file.stateDir ?? defaultStateDir,
      bpfFS: flags.bpfFS ?? file.bpfFS ?? defaultBPFFS,
      bpfObjects: flags.bpfObjects ?? file.bpfObjects ?? defaultBPFObjects,
      devices: flags.devices ?? file.devices ?? [],
      logLevel: flags.logLevel ?? file.logLevel ?? defaultLogLevel)
  }

  /// The first problem with these settings, or nil.
  public var problem: String? {
    if nodeName.isEmpty { return "the node name must not be empty" }
    if nodeName.utf8.count > 253 { return "the node name is longer than 253 bytes" }
    for (flag, path) in [
      ("--socket", socket), ("--state-dir", stateDir), ("--bpf-fs", bpfFS),
      ("--bpf-objects", bpfObjects),
    ] {
      if path.isEmpty { return "\(flag) must not be empty" }
      if path.utf8.contains(0) { return "\(flag) must not contain NUL bytes" }
    }
    if socket.utf8.count > Self.maximumSocketPathLength {
      return "socket path \(socket) is longer than \(Self.maximumSocketPathLength) bytes"
    }
    if socket.hasSuffix("/") { return "socket path \(socket) names a directory" }
    for device in devices {
      if let problem = NameRules.interfaceName(device) { return "device \(problem)" }
    }
    if !Self.logLevels.contains(logLevel) {
      return "log level \"\(logLevel)\" is not one of \(Self.logLevels.joined(separator: ", "))"
    }
    return nil
  }
}
