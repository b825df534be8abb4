import BPFKit
import CNIKit
import Logging

/// The `junction` plugin: routes each call to the configured mode.
public struct JunctionCNIPlugin: CNIPlugin {
  let environment: [String: String]
  let logger: Logger

  /// Logging goes to the configuration's `logFile` at its `logLevel`; without one, only
  /// errors reach stderr. stdout is reserved for the protocol.
  public init(config: JunctionConfig, environment: [String: String]) {
    self.environment = environment
    let level = Logger.Level(config.logLevel)
    let path = config.logFile
    var logger = Logger(label: "junction-cni") { _ in
      if let path, let handler = FileLogHandler(path: path, level: level) { return handler }
      return FileLogHandler(stderrAt: .error)
    }
    logger[metadataKey: "network"] = "\(config.name)"
    if let id = environment["CNI_CONTAINERID"] { logger[metadataKey: "container"] = "\(id)" }
    if let command = environment["CNI_COMMAND"] { logger[metadataKey: "command"] = "\(command)" }
    self.logger = logger
    // libbpf writes to stderr by default, including harmless notes on every attach
    // ("exclusivity flag on, cannot modify" when the clsact exists): route it to our log.
    let bpfLogger = logger
    LibBPF.setLogHandler { level, message in
      bpfLogger.log(
        level: level == .debug ? .trace : .debug, "libbpf: \(message)",
        metadata: ["libbpf_level": "\(level)"])
    }
  }

  /// Each mode owns ADD, DEL, CHECK, GC and STATUS for its attachments; what they share
  /// (the agent session, the endpoint programs, the pod namespace) sits beside them.
  private var native: NativeMode { NativeMode(environment: environment, logger: logger) }
  private var chained: ChainedMode { ChainedMode(environment: environment, logger: logger) }

  /// Runs one command and logs its failure, so the log file tells the whole story even
  /// when the runtime only keeps the error's message.
  private func logged<T>(_ body: () throws(CNIError) -> T) throws(CNIError) -> T {
    do {
      return try body()
    } catch {
      logger.error(
        "\(error.msg)", metadata: ["code": "\(error.code)", "details": "\(error.details)"])
      throw error
    }
  }

  public func add(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) -> CNIResult {
    try logged { () throws(CNIError) in
      switch config.mode {
      case .native: return try native.add(request, config)
      case .chained: return try chained.add(request, config)
      }
    }
  }

  public func del(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    try logged { () throws(CNIError) in
      switch config.mode {
      case .native: try native.del(request, config)
      case .chained: try chained.del(request, config)
      }
    }
  }

  public func check(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    try logged { () throws(CNIError) in
      switch config.mode {
      case .native: try native.check(request, config)
      case .chained: try chained.check(request, config)
      }
    }
  }

  public func gc(_ request: CNIRequest, _ config: JunctionConfig, valid: [Attachment])
    throws(CNIError)
  {
    try logged { () throws(CNIError) in
      switch config.mode {
      case .native: try native.gc(request, config, valid: valid)
      case .chained: try chained.gc(request, config, valid: valid)
      }
    }
  }

  public func status(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
    try logged { () throws(CNIError) in
      switch config.mode {
      case .native: try native.status(request, config)
      case .chained: try chained.status(request, config)
      }
    }
  }
}
