import Foundation

/// `--name value` pairs, nothing else: the wrappers pass every value explicitly, so a
/// typo is an error rather than a silently ignored default.
struct Options {
  struct Invalid: Error, CustomStringConvertible {
    var description: String
  }

  private var values: [String: String] = [:]

  init(parsing arguments: [String]) throws {
    var rest = arguments[...]
    while let flag = rest.popFirst() {
      guard flag.hasPrefix("--"), let value = rest.popFirst() else {
        throw Invalid(description: "expected --name value, got \(flag)")
      }
      values[String(flag.dropFirst(2))] = value
    }
  }

  func string(_ name: String) -> String? { values[name] }

  func int(_ name: String, default fallback: Int) throws -> Int {
    guard let text = values[name] else { return fallback }
    guard let value = Int(text), value >= 0 else {
      throw Invalid(description: "--\(name): \(text) is not a non-negative integer")
    }
    return value
  }

  /// A comma-separated list of positive integers.
  func ints(_ name: String, default fallback: [Int]) throws -> [Int] {
    guard let text = values[name] else { return fallback }
    let parsed = text.split(separator: ",").map { Int($0) }
    guard !parsed.isEmpty, parsed.allSatisfy({ ($0 ?? 0) > 0 }) else {
      throw Invalid(description: "--\(name): \(text) is not a list of positive integers")
    }
    return parsed.map { $0! }
  }

  /// The datapath object: --object, else $JUNCTION_BPF_OBJECT.
  func objectPath() throws -> String {
    if let path = values["object"] ?? getenv("JUNCTION_BPF_OBJECT").map({ String(cString: $0) }) {
      return path
    }
    throw Invalid(description: "no datapath object: pass --object PATH (install/build-bpf.sh DIR)")
  }

  /// The bpffs the wrapper mounted for this run (libbpf pins the object's maps by name, so
  /// they must go somewhere private, never /sys/fs/bpf).
  func bpffs() throws -> String {
    guard let path = values["bpffs"] else {
      throw Invalid(description: "--bpffs DIR (a bpffs mounted for this run) is required")
    }
    return path
  }
}

func standardError(_ text: String) {
  var line = text
  if !line.hasSuffix("\n") { line += "\n" }
  FileHandle.standardError.write(Data(line.utf8))
}
