#if canImport(Glibc)
  import Glibc
#endif

/// /proc/sys/net is per network namespace: a write lands in the namespace of the thread
/// that opens the file.
public enum Sysctl {
  /// Writes `value` to /proc/sys/`key` ("net/ipv4/ip_forward"), skipping the write when
  /// the value is already set, so concurrent pods do not fight over global keys.
  public static func set(_ key: String, _ value: String) throws(NetKitError) {
    let path = "/proc/sys/" + key
    if let current = read(key), current == value { return }
    let fd = open(path, O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .system("open \(path)", errno) }
    defer { close(fd) }
    let bytes = Array(value.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count else {
      throw .system("write \(path)", errno)
    }
  }

  public static func read(_ key: String) -> String? {
    let fd = open("/proc/sys/" + key, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let count = Glibc.read(fd, &buffer, buffer.count)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self)
      .trimmingSuffix(while: { $0 == "\n" || $0 == " " })
  }
}

extension String {
  func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
    var text = self
    while let last = text.last, predicate(last) { text.removeLast() }
    return text
  }
}
