/// The operations of CNI spec 1.1 section 2.
public enum CNICommand: String, Sendable, CaseIterable {
  case add = "ADD"
  case del = "DEL"
  case check = "CHECK"
  case gc = "GC"
  case status = "STATUS"
  case version = "VERSION"
}

/// One attachment, `(CNI_CONTAINERID, CNI_IFNAME)`, the unit GC reasons about.
public struct Attachment: Hashable, Sendable, Codable {
  public var containerID: String
  public var ifname: String

  public init(containerID: String, ifname: String) {
    self.containerID = containerID
    self.ifname = ifname
  }
}

/// The protocol parameters of one invocation, validated for its command.
public struct CNIRequest: Equatable, Sendable {
  public var command: CNICommand
  /// Set for ADD, DEL and CHECK.
  public var containerID: String
  /// An absolute path; empty when the runtime gave none (allowed for DEL).
  public var netns: String
  public var ifname: String
  /// CNI_ARGS, "K=V;K2=V2", in order.
  public var args: [(key: String, value: String)]
  public var path: [String]

  public static func == (lhs: CNIRequest, rhs: CNIRequest) -> Bool {
    lhs.command == rhs.command && lhs.containerID == rhs.containerID && lhs.netns == rhs.netns
      && lhs.ifname == rhs.ifname && lhs.path == rhs.path
      && lhs.args.map { "\($0.key)=\($0.value)" } == rhs.args.map { "\($0.key)=\($0.value)" }
  }

  /// The attachment this request acts on.
  public var attachment: Attachment { Attachment(containerID: containerID, ifname: ifname) }

  /// The value of a CNI_ARGS key (K8S_POD_NAMESPACE, K8S_POD_NAME, ...), if given.
  public func arg(_ key: String) -> String? {
    args.last(where: { $0.key == key })?.value
  }

  /// Reads and validates the CNI_* variables as the spec requires for the command:
  /// ADD and CHECK need a container id, netns and ifname; DEL needs the id and ifname
  /// (the netns may already be gone); GC, STATUS and VERSION need none.
  public static func from(environment env: [String: String]) throws(CNIError) -> CNIRequest {
    guard let rawCommand = env["CNI_COMMAND"], !rawCommand.isEmpty else {
      throw CNIError(.invalidEnvironment, "CNI_COMMAND is not set")
    }
    guard let command = CNICommand(rawValue: rawCommand) else {
      throw CNIError(
        .invalidEnvironment,
        "CNI_COMMAND \"\(rawCommand)\" is not one of "
          + CNICommand.allCases.map(\.rawValue).joined(separator: ", "))
    }
    var request = CNIRequest(
      command: command, containerID: "", netns: "", ifname: "", args: [],
      path: (env["CNI_PATH"] ?? "").split(separator: ":").map(String.init))
    guard command == .add || command == .del || command == .check else { return request }

    let containerID = env["CNI_CONTAINERID"] ?? ""
    if let problem = Validate.containerID(containerID) {
      throw CNIError(.invalidEnvironment, "CNI_CONTAINERID \(problem)")
    }
    let ifname = env["CNI_IFNAME"] ?? ""
    if let problem = Validate.interfaceName(ifname) {
      throw CNIError(.invalidEnvironment, "CNI_IFNAME \(problem)")
    }
    let netns = env["CNI_NETNS"] ?? ""
    if netns.isEmpty, command != .del {
      throw CNIError(.invalidEnvironment, "CNI_NETNS is required for \(command.rawValue)")
    }
    if !netns.isEmpty, !netns.hasPrefix("/") {
      throw CNIError(.invalidEnvironment, "CNI_NETNS must be an absolute path, got \"\(netns)\"")
    }
    request.containerID = containerID
    request.ifname = ifname
    request.netns = netns
    request.args = try parseArgs(env["CNI_ARGS"] ?? "")
    return request
  }

  /// CNI_ARGS: "K=V;K2=V2". A pair without "=" or with an empty key is an error (code 4).
  public static func parseArgs(_ text: String) throws(CNIError) -> [(key: String, value: String)] {
    var pairs: [(key: String, value: String)] = []
    for item in text.split(separator: ";") where !item.isEmpty {
      guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
        throw CNIError(
          .invalidEnvironment, "CNI_ARGS has \"\(item)\"; expected KEY=VALUE pairs separated by ;")
      }
      pairs.append((String(item[..<equals]), String(item[item.index(after: equals)...])))
    }
    return pairs
  }
}

/// Name rules shared by the environment and the config, each returning a reason or nil.
public enum Validate {
  /// Spec: non-empty; starts alphanumeric; then alphanumerics, '_', '.', '-'.
  public static func containerID(_ id: String) -> String? {
    if id.isEmpty { return "is required and must not be empty" }
    if !startsAlphanumeric(id) || !id.utf8.allSatisfy(isIDByte) {
      return "\"\(id)\" must start with a letter or digit and contain only letters, digits, "
        + "'_', '.' and '-'"
    }
    return nil
  }

  /// Linux IFNAMSIZ: at most 15 bytes; not "." or ".."; no '/', ':' or white space.
  public static func interfaceName(_ name: String) -> String? {
    if name.isEmpty { return "is required and must not be empty" }
    if name.utf8.count > 15 { return "\"\(name)\" is longer than 15 bytes" }
    if name == "." || name == ".." { return "must not be \"\(name)\"" }
    // The kernel's dev_valid_name: no '/', ':' or isspace() byte (which includes 0xA0).
    if name.utf8.contains(where: {
      $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 32 || $0 == 0x7F || $0 == 0xA0
    }) {
      return "\"\(name)\" must not contain '/', ':' or white space"
    }
    return nil
  }

  /// Network names follow the container id rule (libcni's ValidateNetworkName).
  public static func networkName(_ name: String) -> String? {
    containerID(name)
  }

  private static func startsAlphanumeric(_ text: String) -> Bool {
    guard let first = text.utf8.first else { return false }
    return isAlphanumeric(first)
  }

  private static func isAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
      || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
      || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
  }

  private static func isIDByte(_ byte: UInt8) -> Bool {
    isAlphanumeric(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
      || byte == UInt8(ascii: "-")
  }
}
