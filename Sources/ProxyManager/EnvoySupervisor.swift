import Foundation
import Logging

/// Runs Envoy and keeps it running: restarted with exponential backoff (0.2 s doubling to
/// 10 s, back to 0.2 s once a run lasted 30 s) whenever it exits while wanted. Its stderr log
/// goes line by line to the agent's logger. Hot restart is off (the agent restarts it cold;
/// listeners come back from the xDS files), drains are short, and the base id is unique per
/// agent so several agents on one machine (the lab) never share Envoy's shared memory.
public final class EnvoySupervisor: @unchecked Sendable {
  public struct Options: Sendable {
    public var envoyPath: String
    public var bootstrapPath: String
    public var baseID: UInt32
    public var drainSeconds: Int = 5
    /// How often Envoy flushes its access log file (default 10 s): ~0.5 s keeps flows live.
    public var flushIntervalMilliseconds: Int = 500
    public var logLevel: String = "warning"

    public init(envoyPath: String, bootstrapPath: String, baseID: UInt32) {
      self.envoyPath = envoyPath
      self.bootstrapPath = bootstrapPath
      self.baseID = baseID
    }

    var arguments: [String] {
      [
        "-c", bootstrapPath, "--disable-hot-restart", "--base-id", String(baseID),
        "--drain-time-s", String(drainSeconds), "--drain-strategy", "immediate",
        "--file-flush-interval-msec", String(flushIntervalMilliseconds),
        "--log-level", logLevel, "--log-format", "[%l][%n] %v",
      ]
    }
  }

  let options: Options
  let logger: Logger
  private let lock = NSLock()
  private var process: Process?
  private var wanted = false
  private var backoff: Double = 0.2
  private var starts = 0

  public init(options: Options, logger: Logger) {
    self.options = options
    self.logger = logger
  }

  /// The running Envoy's pid, nil while it is down.
  public var pid: Int32? {
    lock.withLock { process.flatMap { $0.isRunning ? $0.processIdentifier : nil } }
  }
  /// How many times Envoy was started (1 + restarts).
  public var startCount: Int { lock.withLock { starts } }

  /// Where the running Envoy's pid is kept: an agent killed without its clean shutdown leaves
  /// its Envoy running (still serving, and still holding the listener ports); the next agent
  /// ends that one before starting its own.
  var pidFile: String { options.bootstrapPath + ".pid" }

  /// Ends an Envoy a previous agent left behind: the pid in `pidFile`, if that process still
  /// runs our Envoy with our bootstrap (so a recycled pid is never signalled).
  public func endLeftover() {
    guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
      let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
      let command = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))
    else { return }
    let arguments = command.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    guard arguments.first == options.envoyPath, arguments.contains(options.bootstrapPath) else {
      return
    }
    logger.info("ending the Envoy a previous agent left running", metadata: ["pid": "\(pid)"])
    kill(pid, SIGTERM)
    for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
    if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    unlink(pidFile)
  }

  /// Starts Envoy if it is not running (idempotent).
  public func start() {
    lock.withLock {
      guard !wanted else { return }
      wanted = true
      launchLocked()
    }
  }

  public func stop() {
    let running: Process? = lock.withLock {
      wanted = false
      return process
    }
    guard let running, running.isRunning else { return }
    running.terminate()
    let deadline = Date().addingTimeInterval(5)
    while running.isRunning && Date() < deadline { usleep(20_000) }
    if running.isRunning { kill(running.processIdentifier, SIGKILL) }
    running.waitUntilExit()
    unlink(pidFile)
  }

  private func launchLocked() {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: options.envoyPath)
    child.arguments = options.arguments
    let errors = Pipe()
    child.standardError = errors
    child.standardOutput = errors
    let logger = self.logger
    errors.fileHandleForReading.readabilityHandler = { handle in
      let data = handle.availableData
      guard !data.isEmpty else {
        handle.readabilityHandler = nil
        return
      }
      for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        Self.log(line, to: logger)
      }
    }
    let started = Date()
    child.terminationHandler = { [weak self] ended in
      self?.ended(ended, after: Date().timeIntervalSince(started))
    }
    do {
      try child.run()
      process = child
      starts += 1
      try? Data("\(child.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: pidFile))
      logger.info("envoy started", metadata: ["pid": "\(child.processIdentifier)"])
    } catch {
      logger.error("envoy could not start: \(error)")
      scheduleLocked()
    }
  }

  private func ended(_ child: Process, after seconds: TimeInterval) {
    lock.withLock {
      guard wanted, process === child else { return }
      logger.warning(
        "envoy exited; restarting",
        metadata: [
          "status": "\(child.terminationStatus)", "reason": "\(child.terminationReason.rawValue)",
        ])
      if seconds > 30 { backoff = 0.2 }
      scheduleLocked()
    }
  }

  private func scheduleLocked() {
    let delay = backoff
    backoff = min(backoff * 2, 10)
    DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [weak self] in
      guard let self else { return }
      self.lock.withLock {
        guard self.wanted, !(self.process?.isRunning ?? false) else { return }
        self.launchLocked()
      }
    }
  }

  /// "[warning][config] message" → the agent's log at that level.
  static func log(_ line: Substring, to logger: Logger) {
    var level = Logger.Level.info
    var text = line
    if text.hasPrefix("["), let end = text.firstIndex(of: "]") {
      switch text[text.index(after: text.startIndex)..<end] {
      case "trace": level = .trace
      case "debug": level = .debug
      case "warning": level = .warning
      case "error": level = .error
      case "critical": level = .critical
      default: level = .info
      }
      text = text[text.index(after: end)...]
    }
    logger.log(level: level, "envoy: \(text)")
  }
}
