import Foundation

/// What the agent made to have a cgroup2 at `--cgroup-root` (socket LB): whether it mounted
/// it and which directories it created. Kept in the state directory while the agent runs, so
/// that an agent restarted after a crash (SIGKILL skips the clean-up) knows that the mount and
/// directories it finds are its own to remove at its next stop, and never takes someone
/// else's.
public struct CgroupRootRecord: Codable, Equatable, Sendable {
  public var path: String
  public var mounted: Bool
  /// Outermost first.
  public var createdDirectories: [String]

  public static let fileName = "socket-lb-cgroup.json"

  public init(path: String, mounted: Bool, createdDirectories: [String]) {
    self.path = path
    self.mounted = mounted
    self.createdDirectories = createdDirectories
  }

  /// True when there is something to undo.
  public var ownsSomething: Bool { mounted || !createdDirectories.isEmpty }

  public func encoded() -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return Array((try? encoder.encode(self)) ?? Data())
  }

  /// nil for anything that is not a record (a torn or foreign file): nothing is then claimed.
  public static func decode(_ bytes: [UInt8]) -> CgroupRootRecord? {
    try? JSONDecoder().decode(CgroupRootRecord.self, from: Data(bytes))
  }
}
