/// A CNI specification version Junction speaks, with what each one allows.
public struct CNIVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
  public let major: Int
  public let minor: Int
  public let patch: Int

  public static let v030 = CNIVersion(0, 3, 0)
  public static let v031 = CNIVersion(0, 3, 1)
  public static let v040 = CNIVersion(0, 4, 0)
  public static let v100 = CNIVersion(1, 0, 0)
  public static let v110 = CNIVersion(1, 1, 0)

  /// Oldest first. 0.1.0 and 0.2.0 predate multi-IP results and are not offered.
  public static let supported: [CNIVersion] = [.v030, .v031, .v040, .v100, .v110]
  public static let latest = CNIVersion.v110

  public init(_ major: Int, _ minor: Int, _ patch: Int) {
    self.major = major
    self.minor = minor
    self.patch = patch
  }

  /// Parses "X.Y.Z"; nil for anything else.
  public init?(_ text: String) {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
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
    case .check: .v040
    case .gc, .status: .v110
    case .add, .del, .version: .v030
    }
  }

  /// Results before 1.0.0 carry `"version"` on each IP.
  public var resultHasIPVersionField: Bool { self < .v100 }
  /// Interface mtu/socketPath/pciID and route mtu/advmss/priority/table/scope are 1.1.0 fields.
  public var resultHasExtendedFields: Bool { self >= .v110 }

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

extension Character {
  var isASCIIDigit: Bool { isASCII && isNumber }
}
