/// A CNI specification version Junction speaks, with what each one allows.
public struct CNIVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
  public let major: Int
  public let minor: Int
  public let patch: Int

  public static let v0_3_0 = CNIVersion(0, 3, 0)
  public static let v0_3_1 = CNIVersion(0, 3, 1)
  public static let v0_4_0 = CNIVersion(0, 4, 0)
  public static let v1_0_0 = CNIVersion(1, 0, 0)
  public static let v1_1_0 = CNIVersion(1, 1, 0)

  /// Oldest first. 0.1.0 and 0.2.0 predate multi-IP results and are not offered.
  public static let supported: [CNIVersion] = [.v0_3_0, .v0_3_1, .v0_4_0, .v1_0_0, .v1_1_0]
  public static let latest = CNIVersion.v1_1_0

  public init(_ major: Int, _ minor: Int, _ patch: Int) {
    self.major = major
    self.minor = minor
    self.patch = patch
  }

  /// Parses "X.Y.Z"; nil for anything else.
  public init?(_ text: String) {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3,
      let major = Int(parts[0]), let minor = Int(parts[1]), let patch = Int(parts[2]),
      major >= 0, minor >= 0, patch >= 0
    else { return nil }
    self.init(major, minor, patch)
  }

  public var description: String { "\(major).\(minor).\(patch)" }
  public var isSupported: Bool { CNIVersion.supported.contains(self) }

  /// CHECK exists from 0.4.0; GC and STATUS from 1.1.0.
  public static func minimum(for command: CNICommand) -> CNIVersion {
    switch command {
    case .check: .v0_4_0
    case .gc, .status: .v1_1_0
    case .add, .del, .version: .v0_3_0
    }
  }

  /// Results before 1.0.0 carry `"version"` on each IP.
  public var resultHasIPVersionField: Bool { self < .v1_0_0 }
  /// Interface mtu/socketPath/pciID and route mtu/advmss/priority/table/scope are 1.1.0 fields.
  public var resultHasExtendedFields: Bool { self >= .v1_1_0 }

  public static func < (lhs: CNIVersion, rhs: CNIVersion) -> Bool {
    (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
  }

  /// Spec section 1 "version selection": the highest version listed in `cniVersion` and
  /// `cniVersions` that `supported` also contains; nil when they share none.
  public static func select(
    cniVersion: String?, cniVersions: [String], supported: [CNIVersion] = CNIVersion.supported
  ) -> CNIVersion? {
    let offered = ([cniVersion].compactMap { $0 } + cniVersions).compactMap(CNIVersion.init)
    return offered.filter(supported.contains).max()
  }

  /// The highest version both sides support that is not above `ceiling`: how Junction
  /// talks to a delegated plugin older than the request (host-local 1.1.x stops at 1.0.0).
  public static func negotiate(ceiling: CNIVersion, peer: [String]) -> CNIVersion? {
    peer.compactMap(CNIVersion.init).filter { $0 <= ceiling && $0.isSupported }.max()
  }
}
