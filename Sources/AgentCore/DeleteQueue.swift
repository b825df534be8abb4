import AgentAPI
import FoundationEssentials

#if canImport(Glibc)
  import Glibc
#endif

/// Deletions the CNI plugin could not deliver because the agent was down.
///
/// DEL must succeed even then, so the plugin writes one small JSON file per endpoint into
/// `<dirname(socket)>/delete-queue/<id>.json`; the agent replays the queue at start
/// (deregisters those endpoints) and removes the files. It also replays it every
/// `replayInterval` seconds while it runs: an agent that was frozen (SIGSTOP, a stalled
/// disk) past the plugin's timeout never restarts, and its queued deletions would wait
/// for a restart that may not come (issue 16's soak found them left). Both sides use this type, so the
/// path and the format cannot drift apart.
///
/// Agents whose sockets share a directory share the queue directory: each record names the
/// socket it was meant for, and an agent replays only records for its own socket (records
/// without one are everyone's).
public enum DeleteQueue {
  public static let directoryName = "delete-queue"
  /// The queue is bounded: beyond this many records `enqueue` refuses (a DEL storm against
  /// a dead agent must not fill the disk).
  public static let maximumRecords = 4096
  /// A record file is tiny; anything bigger is not one.
  public static let maximumRecordSize = 4096
  /// Seconds between replays while the agent runs: one directory listing, almost always
  /// of an empty directory. (`--delete-queue-interval`, hidden, for tests.)
  public static let replayInterval: Double = 5

  /// What a replay does with one record of its socket.
  public enum ReplayAction: Equatable, Sendable {
    /// Deregister the endpoint, then remove the record.
    case deregister
    /// Only remove the record: nothing is registered under the id, or what is was
    /// registered after the deletion was queued and its host interface still runs the
    /// endpoint programs.
    case dropRecord
  }

  /// The action for `record`, given the endpoint registered under its id now (its
  /// `createdAt` and whether its host interface exists and runs the endpoint programs),
  /// or nil.
  ///
  /// A registration newer than the record is a later ADD of the same container and
  /// interface (CNI allows ADD again after DEL), which the old deletion must not undo (an
  /// ADD attaches the programs before it registers), unless its host interface is gone or
  /// runs no endpoint programs: then it is a registration the agent got to late, after the
  /// ADD that sent it had given up and rolled back (an agent frozen past the plugin's
  /// timeout answers its backlog when it thaws; in chained mode the interface is bridge's
  /// and outlives the rollback, only the programs go). Timestamps are RFC 3339 of one
  /// fixed width (`Timestamp`), so they compare as strings.
  ///
  /// `newestApplied`: the `IssuedAt` reading of the newest request for this endpoint the
  /// agent applied since it started (`RequestOrder`), when it knows one. With the record's
  /// own reading it settles the question exactly, whatever order the agent read them in:
  /// a DEL issued after it deregisters, one issued before it is a later ADD's to keep.
  /// (Only this process's readings compare with the record's: the same boot.)
  public static func action(
    for record: Record, registeredAt createdAt: String?, hostInterfaceAttached: Bool,
    newestApplied: UInt64? = nil
  ) -> ReplayAction {
    guard let createdAt else { return .dropRecord }
    if let issued = record.issuedAt, let newestApplied, issued != newestApplied {
      return issued > newestApplied ? .deregister : .dropRecord
    }
    if createdAt <= record.queuedAt || !hostInterfaceAttached { return .deregister }
    return .dropRecord
  }

  public struct Record: Codable, Equatable, Sendable {
    public var id: String
    public var containerID: String
    public var ifname: String
    /// RFC 3339 (`Timestamp.now()`).
    public var queuedAt: String
    /// The agent socket the deletion was meant for.
    public var socket: String?
    /// The plugin's CLOCK_BOOTTIME reading when it sent the DEL (`RequestOrder`): a
    /// registration issued before it that the agent gets to later is refused.
    public var issuedAt: UInt64?

    public init(
      containerID: String, ifname: String, queuedAt: String = Timestamp.now(),
      socket: String? = nil,
      issuedAt: UInt64? = nil
    ) {
      self.issuedAt = issuedAt
      self.id = EndpointID.make(containerID: containerID, ifname: ifname)
      self.containerID = containerID
      self.ifname = ifname
      self.queuedAt = queuedAt
      self.socket = socket
    }

    /// Why this record must not be acted on, or nil.
    public var problem: String? {
      if let problem = EndpointID.problem(id) {
        return "id \"\(NameRules.printable(id))\" \(problem)"
      }
      if id != EndpointID.make(containerID: containerID, ifname: ifname) {
        return "id \"\(id)\" is not containerID:ifname"
      }
      return nil
    }
  }

  public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
    case full(directory: String, limit: Int)
    case invalid(String)
    case file(FileError)

    public var description: String {
      switch self {
      case .full(let directory, let limit):
        "the deletion queue \(directory) is full (\(limit) records)"
      case .invalid(let problem): "invalid deletion record: \(problem)"
      case .file(let error): "\(error)"
      }
    }
  }

  public static func directory(forSocket socketPath: String) -> String {
    PathNames.join(PathNames.directory(of: socketPath), directoryName)
  }

  public static func fileName(forEndpoint id: String) -> String { "\(id).json" }

  public static func path(forSocket socketPath: String, id: String) -> String {
    PathNames.join(directory(forSocket: socketPath), fileName(forEndpoint: id))
  }

  public static func encode(_ record: Record) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    // Five strings and a number cannot fail to encode.
    return ((try? encoder.encode(record)).map(Array.init) ?? []) + [UInt8(ascii: "\n")]
  }

  public static func decode(_ bytes: [UInt8]) throws(Failure) -> Record {
    guard bytes.count <= maximumRecordSize else {
      throw .invalid("larger than \(maximumRecordSize) bytes")
    }
    let record: Record
    do {
      record = try JSONDecoder().decode(Record.self, from: Data(bytes))
    } catch {
      throw .invalid("\(error)")
    }
    if let problem = record.problem { throw .invalid(problem) }
    return record
  }

  /// Writes (or rewrites) the record for `record.id`, atomically, creating the directory
  /// (mode 0700) when missing. A record without `socket` is stamped with `socketPath`, so
  /// only that agent replays it.
  public static func enqueue(_ record: Record, socketPath: String) throws(Failure) {
    if let problem = record.problem { throw .invalid(problem) }
    var record = record
    if record.socket == nil { record.socket = socketPath }
    let directory = directory(forSocket: socketPath)
    let path = path(forSocket: socketPath, id: record.id)
    do throws(FileError) {
      try AtomicFile.makeDirectory(directory, mode: 0o700)
      if !AtomicFile.exists(path) {
        let queued = try AtomicFile.list(directory).filter { !$0.hasPrefix(".") }.count
        if queued >= maximumRecords { throw FileError("", "", ENOSPC) }
      }
      try AtomicFile.write(encode(record), to: path)
    } catch {
      if error.code == ENOSPC && error.path.isEmpty {
        throw .full(directory: directory, limit: maximumRecords)
      }
      throw .file(error)
    }
  }

  /// One file found in the queue.
  public struct Entry: Sendable {
    public var path: String
    /// The record, or why the file is not one.
    public var record: Result<Record, Failure>
  }

  /// Every record file in the queue directory (temporary files skipped), oldest name first.
  public static func entries(socketPath: String) throws(FileError) -> [Entry] {
    let directory = directory(forSocket: socketPath)
    var result: [Entry] = []
    for name in try AtomicFile.list(directory) where !name.hasPrefix(".") {
      let path = PathNames.join(directory, name)
      do throws(FileError) {
        let bytes = try AtomicFile.read(path, limit: maximumRecordSize)
        do throws(Failure) {
          result.append(Entry(path: path, record: .success(try decode(bytes))))
        } catch {
          result.append(Entry(path: path, record: .failure(error)))
        }
      } catch {
        result.append(Entry(path: path, record: .failure(.file(error))))
      }
    }
    return result
  }

  /// Whether the agent serving `socketPath` should act on `record`.
  public static func belongs(_ record: Record, toSocket socketPath: String) -> Bool {
    guard let socket = record.socket else { return true }
    return socket == socketPath
  }
}
