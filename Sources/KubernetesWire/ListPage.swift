import CNIKit

/// One page of a LIST: its items (without `kind`/`apiVersion`), the list's version, and the
/// token for the next page (nil on the last).
public struct ListPage: Equatable, Sendable {
  public var items: [JSONValue]
  public var resourceVersion: String
  public var continueToken: String?

  public init(items: [JSONValue], resourceVersion: String, continueToken: String?) {
    self.items = items
    self.resourceVersion = resourceVersion
    self.continueToken = continueToken
  }

  /// A `*List` body → its page.
  public static func decode(_ body: [UInt8]) throws(APIError) -> ListPage {
    let value: JSONValue
    do {
      value = try JSONReader.parse(body)
    } catch {
      throw .malformed(detail: "LIST body is not JSON")
    }
    guard let items = value["items"]?.arrayValue ?? (value["items"] == .null ? [] : nil) else {
      throw .malformed(detail: "LIST body without items")
    }
    let continueToken = value["metadata"]?["continue"]?.stringValue
    return ListPage(
      items: items, resourceVersion: value["metadata"]?["resourceVersion"]?.stringValue ?? "",
      continueToken: (continueToken?.isEmpty ?? true) ? nil : continueToken)
  }
}
