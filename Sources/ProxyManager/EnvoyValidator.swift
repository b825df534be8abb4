import Foundation

/// Runs `envoy --mode validate` on a bootstrap: nil when Envoy accepts it, else Envoy's own
/// error message (the lines after its "error initializing configuration").
public struct EnvoyValidator: Sendable {
  public var envoyPath: String
  public var scratchDirectory: String

  public init(envoyPath: String, scratchDirectory: String) {
    self.envoyPath = envoyPath
    self.scratchDirectory = scratchDirectory
  }

  public func validate(bootstrap: String) throws -> String? {
    try FileManager.default.createDirectory(
      atPath: scratchDirectory, withIntermediateDirectories: true)
    let path = "\(scratchDirectory)/validate-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).json"
    try Data(bootstrap.utf8).write(to: URL(fileURLWithPath: path))
    defer { unlink(path) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: envoyPath)
    process.arguments = [
      "--mode", "validate", "-c", path, "--log-level", "error", "--disable-hot-restart",
      "--use-dynamic-base-id",
    ]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    if process.terminationStatus == 0 { return nil }
    return Self.message(String(decoding: data, as: UTF8.self))
  }

  /// Envoy's error, without its log prefixes and the generic lines around it.
  static func message(_ output: String) -> String {
    let lines = output.split(separator: "\n").map { line -> String in
      // "[2026-...][123][critical][main] [source/...:123] error initializing config '...': X"
      var text = Substring(line)
      while text.hasPrefix("["), let end = text.firstIndex(of: "]") {
        text = text[text.index(after: end)...].drop { $0 == " " }
      }
      return String(text)
    }.filter { !$0.isEmpty && !$0.hasPrefix("exiting") && !$0.hasPrefix("Previous") }
    // "Unable to parse JSON as proto (INVALID_ARGUMENT: ...): {the whole bootstrap}": the
    // reason without the document.
    if let line = lines.first(where: { $0.contains("Unable to parse JSON as proto") }),
      let start = line.range(of: "Unable to parse JSON as proto")
    {
      let reason = line[start.lowerBound...]
      if let end = reason.range(of: "): {") { return String(reason[..<end.lowerBound]) + ")" }
      return String(reason)
    }
    if let line = lines.first(where: { $0.contains("error initializing config") }) {
      if let range = line.range(of: "': ") { return String(line[range.upperBound...]) }
      return line
    }
    return lines.suffix(3).joined(separator: "\n")
  }
}
