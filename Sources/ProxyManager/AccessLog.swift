import Foundation

/// One request from Envoy's JSON access log (the format TranslationSettings.accessLog sets).
public struct L7Request: Sendable, Hashable, Codable {
  public var startTime: String
  public var method: String
  public var path: String
  public var authority: String?
  public var protocolName: String?
  public var status: Int
  public var responseFlags: String?
  public var durationMilliseconds: Int
  public var upstreamHost: String?
  public var upstreamCluster: String?
  public var downstreamRemote: String?
  public var downstreamLocal: String?

  /// One log line; nil for anything that is not such a JSON object.
  public init?(line: Substring) {
    guard let data = line.data(using: .utf8),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return nil }
    func text(_ key: String) -> String? {
      guard let value = object[key] as? String, value != "-" else { return nil }
      return value
    }
    func number(_ key: String) -> Int? {
      if let value = object[key] as? Int { return value }
      if let value = object[key] as? String { return Int(value) }
      return nil
    }
    guard let method = text("method") else { return nil }
    self.method = method
    startTime = text("start_time") ?? ""
    path = text("path") ?? ""
    authority = text("authority")
    protocolName = text("protocol")
    status = number("response_code") ?? 0
    responseFlags = text("response_flags")
    durationMilliseconds = number("duration_ms") ?? 0
    upstreamHost = text("upstream_host")
    upstreamCluster = text("upstream_cluster")
    downstreamRemote = text("downstream_remote")
    downstreamLocal = text("downstream_local")
  }

  /// The URL as Hubble shows it: http://authority/path.
  public var url: String { "http://\(authority ?? "")\(path)" }
}

/// Follows the access log file: returns the complete lines appended since the last read
/// (Envoy flushes every --file-flush-interval-msec). A truncated or replaced file starts over.
public final class AccessLogFollower: @unchecked Sendable {
  let path: String
  private var offset: UInt64 = 0
  private var partial = Data()

  public init(path: String, fromEnd: Bool = true) {
    self.path = path
    if fromEnd, let attributes = try? FileManager.default.attributesOfItem(atPath: path) {
      offset = (attributes[.size] as? UInt64) ?? 0
    }
  }

  public func poll() -> [L7Request] {
    guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
    defer { try? handle.close() }
    let size = (try? handle.seekToEnd()) ?? 0
    if size < offset {
      offset = 0
      partial = Data()
    }
    guard size > offset else { return [] }
    try? handle.seek(toOffset: offset)
    let data = handle.readData(ofLength: Int(size - offset))
    offset += UInt64(data.count)
    partial.append(data)
    guard let last = partial.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
    let complete = partial[partial.startIndex...last]
    partial = Data(partial[partial.index(after: last)...])
    return String(decoding: complete, as: UTF8.self).split(separator: "\n").compactMap {
      L7Request(line: $0)
    }
  }
}
