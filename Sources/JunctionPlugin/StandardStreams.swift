#if canImport(Glibc)
  import Glibc
#endif

/// The process's environment and standard streams, read and written without Foundation.
public enum ProcessEnvironment {
  public static func current() -> [String: String] {
    var result: [String: String] = [:]
    var cursor = environ
    while let entry = cursor.pointee {
      let text = String(cString: entry)
      if let equals = text.firstIndex(of: "=") {
        result[String(text[..<equals])] = String(text[text.index(after: equals)...])
      }
      cursor += 1
    }
    return result
  }
}

public enum StandardStreams {
  /// All of stdin; stops at EOF or on a read error (an empty config is reported later).
  public static func readStdin() -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = read(0, &buffer, buffer.count)
      if count < 0, errno == EINTR { continue }
      if count <= 0 { break }
      result.append(contentsOf: buffer[..<count])
    }
    return result
  }

  public static func writeStdout(_ bytes: [UInt8]) { writeAll(1, bytes) }
  public static func writeStderr(_ bytes: [UInt8]) { writeAll(2, bytes) }

  private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
      let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if written < 0, errno == EINTR { continue }
      if written <= 0 { return }
      offset += written
    }
  }
}
