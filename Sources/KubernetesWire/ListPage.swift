import CNIKit

/// One page of a LIST: its items (without `kind`/`apiVersion`), the list's version, and the
/// token for the next page (nil on the last).
///
/// A page read from the server keeps its body and where each item is in it, and builds an
/// item's tree only when it is read (`makeItemIterator`): the API server answers a LIST at
/// resourceVersion 0 from its watch cache in one page, however many objects there are, and
/// 10,000 EndpointSlices as trees were 40 MiB at once (bench/results/agent-memory.md).
public struct ListPage: Equatable, Sendable {
  fileprivate enum Items: Sendable {
    case values([JSONValue])
    /// The body and each item's byte range in it (each already parsed once: valid JSON).
    case body([UInt8], ranges: [Range<Int>])
  }

  private var storage: Items
  public var resourceVersion: String
  public var continueToken: String?

  public init(items: [JSONValue], resourceVersion: String, continueToken: String?) {
    storage = .values(items)
    self.resourceVersion = resourceVersion
    self.continueToken = continueToken
  }

  public var itemCount: Int {
    switch storage {
    case .values(let values): values.count
    case .body(_, let ranges): ranges.count
    }
  }

  /// Every item as a tree (all at once: for tests and small lists).
  public var items: [JSONValue] {
    var iterator = makeItemIterator()
    var items: [JSONValue] = []
    items.reserveCapacity(itemCount)
    while let item = iterator.next() { items.append(item) }
    return items
  }

  /// The items one at a time, each built as it is reached.
  public func makeItemIterator() -> ItemIterator { ItemIterator(storage: storage) }

  public struct ItemIterator: IteratorProtocol {
    fileprivate let storage: Items
    private var position = 0

    fileprivate init(storage: Items) { self.storage = storage }

    public mutating func next() -> JSONValue? {
      defer { position += 1 }
      switch storage {
      case .values(let values):
        return position < values.count ? values[position] : nil
      case .body(let bytes, let ranges):
        guard position < ranges.count else { return nil }
        do {
          return try JSONReader.parse(bytes, in: ranges[position])
        } catch {
          // `decode` parsed this very range already.
          preconditionFailure("a LIST item parsed once fails again: \(error)")
        }
      }
    }
  }

  public static func == (lhs: ListPage, rhs: ListPage) -> Bool {
    lhs.resourceVersion == rhs.resourceVersion && lhs.continueToken == rhs.continueToken
      && lhs.items == rhs.items
  }

  /// A `*List` body → its page.
  public static func decode(_ body: [UInt8]) throws(APIError) -> ListPage {
    let value: JSONValue
    let ranges: [Range<Int>]?
    do {
      (value, ranges) = try JSONReader.parseList(body)
    } catch {
      throw .malformed(detail: "LIST body is not JSON")
    }
    guard ranges != nil || value["items"] == .null else {
      throw .malformed(detail: "LIST body without items")
    }
    let continueToken = value["metadata"]?["continue"]?.stringValue
    var page = ListPage(
      items: [], resourceVersion: value["metadata"]?["resourceVersion"]?.stringValue ?? "",
      continueToken: (continueToken?.isEmpty ?? true) ? nil : continueToken)
    if let ranges, !ranges.isEmpty { page.storage = .body(body, ranges: ranges) }
    return page
  }
}
