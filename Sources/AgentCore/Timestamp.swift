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
    format(seconds: seconds, fraction: pad(milliseconds, 3))
  }

  /// With nanoseconds: "2026-12-06T03:08:02.123456789Z" (flows).
  public static func format(nanoseconds: Int64) -> String {
    let (seconds, fraction) = split(nanoseconds)
    return format(seconds: Int(seconds), fraction: pad(Int(fraction), 9))
  }

  /// The UTC calendar of `nanoseconds` since the epoch (gmtime_r): month 1-12, day,
  /// hour, minute, second, and the nanoseconds past the second. (Plain integers: no C
  /// struct crosses the module boundary.)
  public static func utc(nanoseconds: Int64) -> UTC {
    let (seconds, fraction) = split(nanoseconds)
    var parts = tm()
    var time = time_t(seconds)
    gmtime_r(&time, &parts)
    return UTC(
      month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday), hour: Int(parts.tm_hour),
      minute: Int(parts.tm_min), second: Int(parts.tm_sec), nanoseconds: Int(fraction))
  }

  public struct UTC: Equatable, Sendable {
    public var month, day, hour, minute, second, nanoseconds: Int
  }

  /// "2026-12-06T03:08:02Z", with up to 9 fraction digits, → nanoseconds since the epoch;
  /// nil for anything else (UTC "Z" only).
  public static func parse(_ text: String) -> Int64? {
    let bytes = Array(text.utf8)
    guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
    func number(_ range: Range<Int>) -> Int32? {
      guard range.upperBound <= bytes.count, !range.isEmpty,
        bytes[range].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
      else { return nil }
      return bytes[range].reduce(0) { $0 * 10 + Int32($1 - UInt8(ascii: "0")) }
    }
    guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
      bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
      bytes[16] == UInt8(ascii: ":"),
      let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
      let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
      (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
    else { return nil }
    var nanoseconds: Int64 = 0
    if bytes.count > 20 {
      let digits = bytes.count - 21
      guard bytes[19] == UInt8(ascii: "."), (1...9).contains(digits),
        let fraction = number(20..<(bytes.count - 1))
      else { return nil }
      nanoseconds = Int64(fraction) * (0..<(9 - digits)).reduce(1) { value, _ in value * 10 }
    }
    var parts = tm()
    parts.tm_year = year - 1900
    parts.tm_mon = month - 1
    parts.tm_mday = day
    parts.tm_hour = hour
    parts.tm_min = minute
    parts.tm_sec = second
    // Nanoseconds since the epoch fit an Int64 only from 1677 to 2262: a time outside is not
    // one we can hold (an unchecked product trapped on `since=3519-...`, found by
    // schemathesis, issue 16).
    let (scaled, overflow) = Int64(timegm(&parts)).multipliedReportingOverflow(by: 1_000_000_000)
    let (total, carry) = scaled.addingReportingOverflow(nanoseconds)
    return overflow || carry ? nil : total
  }

  private static func format(seconds: Int, fraction: String) -> String {
    var parts = tm()
    var time = time_t(seconds)
    gmtime_r(&time, &parts)
    return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-"
      + "\(pad(Int(parts.tm_mday), 2))T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):"
      + "\(pad(Int(parts.tm_sec), 2)).\(fraction)Z"
  }

  /// Whole seconds (rounded down) and the nanoseconds past them.
  private static func split(_ nanoseconds: Int64) -> (seconds: Int64, fraction: Int64) {
    let seconds =
      nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000
    return (seconds, nanoseconds - seconds * 1_000_000_000)
  }

  static func pad(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, width - text.count)) + text
  }
}
