import AgentAPI
import FoundationEssentials

/// The agent's configuration as a file beside its socket, `<socket>.config.json`: what the
/// CNI plugin needs before a pod's ADD (the pinned programs' paths) without an HTTP round
/// trip on every pod. The agent writes it once its socket listens and removes it when it
/// stops; the plugin's final PUT still proves the agent is alive, so a file left by a
/// crashed agent only delays the (complete) rollback to that point.
public enum AgentDiscovery {
  public static func path(forSocket socketPath: String) -> String { socketPath + ".config.json" }

  public static func write(_ config: AgentConfig, socketPath: String) throws(FileError) {
    let path = path(forSocket: socketPath)
    let bytes: [UInt8]
    do {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      bytes = Array(try encoder.encode(config)) + [UInt8(ascii: "\n")]
    } catch {
      throw FileError("encode the agent config for", path, 0)
    }
    // Rewritten at every start, so a power loss costs nothing worth an fsync.
    try AtomicFile.write(bytes, to: path, durability: .processCrash)
  }

  /// The published configuration; nil when no agent has published one at this socket.
  public static func read(socketPath: String) throws(FileError) -> AgentConfig? {
    let path = path(forSocket: socketPath)
    guard AtomicFile.exists(path) else { return nil }
    let bytes = try AtomicFile.read(path, limit: 64 << 10)
    do {
      return try JSONDecoder().decode(AgentConfig.self, from: Data(bytes))
    } catch {
      throw FileError("decode \(error) in", path, 0)
    }
  }

  public static func remove(socketPath: String) {
    _ = try? AtomicFile.remove(path(forSocket: socketPath), durability: .processCrash)
  }
}
