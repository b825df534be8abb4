import AgentAPI
import FoundationEssentials

/// Where an agent keeps its endpoints: `<state-dir>/endpoints/<id>.json`, one file each.
/// Ids never contain '/' or "..", so an id is always a plain file name.
public struct StateLayout: Equatable, Sendable {
  public let stateDirectory: String

  public init(stateDirectory: String) { self.stateDirectory = stateDirectory }

  public var endpointsDirectory: String { PathNames.join(stateDirectory, "endpoints") }

  public func endpointFile(id: String) -> String {
    PathNames.join(endpointsDirectory, Self.fileName(forEndpoint: id))
  }

  public static func fileName(forEndpoint id: String) -> String { "\(id).json" }

  /// The id a state file holds, or nil for anything else (temporary files start with '.').
  public static func endpointID(fromFileName name: String) -> String? {
    guard name.hasSuffix(".json"), !name.hasPrefix(".") else { return nil }
    let id = String(name.dropLast(5))
    return EndpointID.problem(id) == nil ? id : nil
  }
}

/// Durable storage for endpoints. The agent changes memory only after the store succeeded.
public protocol EndpointStore {
  func save(_ endpoint: Endpoint) throws(FileError)
  /// False when there was nothing stored under the id.
  @discardableResult func remove(id: String) throws(FileError) -> Bool
  /// Everything stored, and a description of each file that could not be used.
  func loadAll() throws(FileError) -> (endpoints: [Endpoint], problems: [String])
}

/// The endpoints as JSON files under `StateLayout.endpointsDirectory`, written atomically.
public struct FileEndpointStore: EndpointStore, Sendable {
  public let layout: StateLayout

  public init(layout: StateLayout) { self.layout = layout }

  public func prepare() throws(FileError) {
    try AtomicFile.makeDirectory(layout.stateDirectory, mode: 0o700)
    try AtomicFile.makeDirectory(layout.endpointsDirectory, mode: 0o700)
  }

  public func save(_ endpoint: Endpoint) throws(FileError) {
    var stored = endpoint
    stored.counters = nil
    stored.datapathAttached = nil
    let bytes: [UInt8]
    do {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      bytes = Array(try encoder.encode(stored)) + [UInt8(ascii: "\n")]
    } catch {
      throw FileError("encode endpoint \(endpoint.id) for", layout.endpointFile(id: endpoint.id), 0)
    }
    // No fsync: an endpoint record only matters while its pod's network namespace exists,
    // and no namespace survives a power loss (reconcile drops the records whose namespace is
    // gone). A crash of the agent alone keeps the page cache, so the renamed file is there.
    // This keeps a millisecond of fsync off every pod's ADD.
    try AtomicFile.write(bytes, to: layout.endpointFile(id: endpoint.id), durability: .processCrash)
  }

  @discardableResult
  public func remove(id: String) throws(FileError) -> Bool {
    // Not fsynced either, for the reason `save` gives.
    try AtomicFile.remove(layout.endpointFile(id: id), durability: .processCrash)
  }

  public func loadAll() throws(FileError) -> (endpoints: [Endpoint], problems: [String]) {
    var endpoints: [Endpoint] = []
    var problems: [String] = []
    for name in try AtomicFile.list(layout.endpointsDirectory) {
      let path = PathNames.join(layout.endpointsDirectory, name)
      if name.hasPrefix("."), name.contains(".tmp-") {
        // A write that a crash interrupted before its rename: never the current state.
        _ = try? AtomicFile.remove(path)
        continue
      }
      guard let id = StateLayout.endpointID(fromFileName: name) else {
        problems.append("\(path): not an endpoint file name, ignored")
        continue
      }
      do {
        let bytes = try AtomicFile.read(path)
        let endpoint = try JSONDecoder().decode(Endpoint.self, from: Data(bytes))
        guard endpoint.id == id, endpoint.spec.id == id else {
          problems.append("\(path): holds endpoint \(endpoint.id), not \(id); ignored")
          continue
        }
        let invalid = EndpointValidation.problems(endpoint.spec)
        guard invalid.isEmpty else {
          problems.append("\(path): \(invalid.joined(separator: "; ")); ignored")
          continue
        }
        endpoints.append(endpoint)
      } catch {
        problems.append("\(path): \(error); ignored")
      }
    }
    return (endpoints, problems)
  }
}

/// The agent's endpoints in memory, changed only through the store: a change that cannot
/// be persisted throws and leaves the table exactly as it was.
public struct EndpointTable: Sendable {
  public private(set) var endpoints: [String: Endpoint] = [:]

  public init(_ endpoints: [Endpoint] = []) {
    for endpoint in endpoints { self.endpoints[endpoint.id] = endpoint }
  }

  public enum PutOutcome: Equatable, Sendable {
    case created(Endpoint)
    /// An existing registration was replaced (or re-sent unchanged); createdAt is kept.
    case replaced(Endpoint, previous: Endpoint)

    public var endpoint: Endpoint {
      switch self {
      case .created(let endpoint), .replaced(let endpoint, _): endpoint
      }
    }
  }

  public var count: Int { endpoints.count }

  public var sorted: [Endpoint] { endpoints.values.sorted { $0.id < $1.id } }

  public subscript(id: String) -> Endpoint? { endpoints[id] }

  public mutating func put(_ spec: EndpointSpec, now: String, store: some EndpointStore)
    throws(FileError) -> PutOutcome
  {
    if let existing = endpoints[spec.id] {
      let updated = Endpoint(id: spec.id, spec: spec, createdAt: existing.createdAt)
      // Re-sending the same registration (a retried ADD) costs no write.
      if existing.spec != spec { try store.save(updated) }
      endpoints[spec.id] = updated
      return .replaced(updated, previous: existing)
    }
    let created = Endpoint(id: spec.id, spec: spec, createdAt: now)
    try store.save(created)
    endpoints[spec.id] = created
    return .created(created)
  }

  /// The removed endpoint, or nil when the id was unknown (and nothing was touched).
  public mutating func delete(id: String, store: some EndpointStore) throws(FileError) -> Endpoint?
  {
    guard let existing = endpoints[id] else { return nil }
    try store.remove(id: id)
    endpoints[id] = nil
    return existing
  }
}
