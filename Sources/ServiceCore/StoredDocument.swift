import FoundationEssentials

/// An object's document as the agent keeps it: its compact JSON, the very bytes
/// `DocumentWriter` writes into the journal and the snapshot, deflated in memory
/// (`DocumentCompression`: 14.6 MiB → ≈ 1.5 MiB at 10,000 Services × 10).
///
/// Why not the `YAMLValue` tree: the agent keeps every object's document only to write it to
/// disk again (journal records, snapshots). As trees, 10,000 Services × 10 backends held
/// ≈ 70 MiB of small dictionaries and strings (heaptrack, bench/results/agent-memory.md); as
/// JSON they are about the size of the YAML (≈ 0.7 KB per object, a tenth of that deflated),
/// and writing a record or a snapshot inflates each into the output, no tree rebuilt. The
/// tree is read back (`value`) only when needed.
public struct StoredDocument: Hashable, Sendable {
  private enum Storage: Hashable, Sendable {
    /// The JSON deflated (`DocumentCompression`), and its length inflated: how documents are
    /// kept (a tenth of the bytes or less).
    case deflated([UInt8], size: Int)
    /// The JSON as it is, when deflating it saves nothing.
    case json([UInt8])
    /// A document holding a float JSON cannot (infinity, NaN; YAML's `.inf`): kept as the
    /// tree so that writing it still throws where it did, when it is journaled.
    case tree(YAMLValue)
  }

  private let storage: Storage

  public init(_ value: YAMLValue) {
    var scratch: [UInt8] = []
    do {
      try DocumentWriter.append(value, to: &scratch)
    } catch {
      storage = .tree(value)
      return
    }
    if let deflated = DocumentCompression.deflate(scratch) {
      storage = .deflated(deflated, size: scratch.count)
      return
    }
    // An exact-size copy: the writer's buffer grew by doubling, up to twice the bytes.
    storage = .json(
      [UInt8](unsafeUninitializedCapacity: scratch.count) { buffer, count in
        count = buffer.initialize(fromContentsOf: scratch)
      })
  }

  /// The document's JSON, inflated if need be.
  private func json() throws -> [UInt8] {
    var bytes: [UInt8] = []
    try append(to: &bytes)
    return bytes
  }

  /// The document as a tree again (JSON is YAML, so this is what parsing it gives).
  public var value: YAMLValue {
    get throws {
      switch storage {
      case .json, .deflated: try JSONDecoder().decode(YAMLValue.self, from: Data(json()))
      case .tree(let value): value
      }
    }
  }

  /// Appends the document's JSON; throws for a float JSON cannot hold (see `Storage.tree`).
  func append(to out: inout [UInt8]) throws {
    switch storage {
    case .json(let bytes): out.append(contentsOf: bytes)
    case .deflated(let bytes, let size):
      guard DocumentCompression.inflate(bytes, size: size, appendingTo: &out) else {
        throw StoredDocumentDamaged()
      }
    case .tree(let value): try DocumentWriter.append(value, to: &out)
    }
  }
}

extension StoredDocument: Codable {
  public init(from decoder: any Decoder) throws {
    self.init(try YAMLValue(from: decoder))
  }

  public func encode(to encoder: any Encoder) throws {
    try value.encode(to: encoder)
  }
}

/// A kept document that does not inflate: never expected (the bytes never leave memory);
/// thrown rather than trapping, so the change that would write it is refused.
struct StoredDocumentDamaged: Error, CustomStringConvertible {
  var description: String { "a stored document does not inflate (a bug in Junction)" }
}
