import Foundation
import XCTest

/// The programs on a link's tc hooks whichever hook the agent uses (`--tc-hook`): tc(8)'s
/// filters and the tcx programs (TCXWitness, since Debian 12's tc cannot show tcx), and
/// taking them off behind Junction's back, as a person or another tool would.
enum HookPrograms {
  /// (ingress, egress): tc(8)'s filter listing of each direction, then a line
  /// "tcx: NAME NAME" when programs are on that direction's tcx hook.
  static func listing(
    in netns: String, link: String, file: StaticString = #filePath, line: UInt = #line
  ) throws -> (ingress: String, egress: String) {
    let tcx = try TCXWitness.programs(in: netns, link: link, file: file, line: line)
    func text(_ direction: String, _ names: [String]) throws -> String {
      try Shell.run(["tc", "-n", netns, "filter", "show", "dev", link, direction]).stdout
        + (names.isEmpty ? "" : "tcx: " + names.joined(separator: " ") + "\n")
    }
    return (try text("ingress", tcx.ingress), try text("egress", tcx.egress))
  }

  /// Every program off `direction` of `link`, on both hooks.
  static func remove(
    in netns: String, link: String, direction: String, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    _ = try Shell.run(["tc", "-n", netns, "filter", "del", "dev", link, direction])
    try TCXWitness.detachAll(in: netns, link: link, directions: [direction], file: file, line: line)
  }

  /// Everything off both directions of `link`: the clsact qdisc with its filters, and the
  /// tcx programs.
  static func flush(
    in netns: String, link: String, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    _ = try Shell.run(["tc", "-n", netns, "qdisc", "del", "dev", link, "clsact"])
    try TCXWitness.detachAll(in: netns, link: link, file: file, line: line)
  }
}
