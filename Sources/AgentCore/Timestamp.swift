#if canImport(Glibc)
  import Glibc
#endif

/// RFC 3339 timestamps in UTC with milliseconds ("2025-11-23T03:00:00.123Z"): fixed width,
/// so they also sort as strings.
public enum Timestamp {
  public static func now() -> String {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return format(seconds: Int(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000))
  }

  public static func format(seconds: Int, milliseconds: Int = 0) -> String {
    var parts = tm()
    var time = time_t(seconds)
    gmtime_r(&time, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
      let text = String(value)
      return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
      + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
      + ".\(pad(Int32(milliseconds), 3))Z"
  }
}
