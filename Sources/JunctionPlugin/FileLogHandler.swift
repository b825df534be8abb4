import CNIKit
import Logging

#if canImport(Glibc)
  import Glibc
#endif

/// swift-log handler that appends one line per message to the `logFile` of the network
/// configuration. The CNI binary's stdout belongs to the protocol, so diagnostics go here
/// (or to stderr when no file is configured, errors only).
struct FileLogHandler: LogHandler {
  var metadata: Logger.Metadata = [:]
  var logLevel: Logger.Level
  private let fd: Int32

  /// Opens `path` for appending; nil when it cannot be opened (logging must never fail a call).
  init?(path: String, level: Logger.Level) {
    let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
    guard fd >= 0 else { return nil }
    self.fd = fd
    self.logLevel = level
  }

  /// Standard error.
  init(stderrAt level: Logger.Level) {
    fd = 2
    logLevel = level
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    var fields = metadata
    if let extra = event.metadata { fields.merge(extra, uniquingKeysWith: { _, new in new }) }
    let rendered = fields.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
    let line = "\(Self.timestamp()) \(event.level) \(event.message)\(rendered)\n"
    // O_APPEND makes each line one atomic write, so concurrent calls do not interleave.
    _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
  }

  private static func timestamp() -> String {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    var parts = tm()
    var seconds = now.tv_sec
    gmtime_r(&seconds, &parts)
    var buffer = [CChar](repeating: 0, count: 32)
    let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
    let millis = Int(now.tv_nsec / 1_000_000)
    let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
    return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
      + ".\(fraction)Z"
  }
}

extension Logger.Level {
  init(_ level: JunctionConfig.LogLevel) {
    switch level {
    case .error: self = .error
    case .warning: self = .warning
    case .info: self = .info
    case .debug: self = .debug
    }
  }
}
