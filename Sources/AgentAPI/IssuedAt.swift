#if canImport(Glibc)
  import Glibc
#endif

/// When the CNI plugin issued a request about an endpoint: its CLOCK_BOOTTIME reading in
/// nanoseconds, sent as the `Junction-Issued-At` header of PUT and DELETE
/// /v1/endpoints/{id}. The agent orders each endpoint's requests by it (AgentCore's
/// `RequestOrder`), because it may read them out of order: a frozen agent answers its
/// socket's backlog when it thaws. CLOCK_BOOTTIME, not the wall clock: it never steps back,
/// and every process on the node reads the same one.
public enum IssuedAt {
  public static let header = "Junction-Issued-At"

  public static func now() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_BOOTTIME, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }

  static func headers(_ issuedAt: UInt64?) -> [(String, String)] {
    issuedAt.map { [(header, String($0))] } ?? []
  }

  /// The header's value, or nil when it is absent or not a decimal number of at most 20
  /// digits.
  public static func parse(_ value: String?) -> UInt64? {
    guard let value, !value.isEmpty, value.utf8.count <= 20,
      value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
    else { return nil }
    return UInt64(value)
  }
}
