/// Typed reads from a JSON object that name the offending field by its full path when the
/// value is missing or of the wrong type ("ipam.type", "result.ips[0].address").
public struct FieldReader: Sendable {
  public let object: [String: JSONValue]
  /// The path of this object, for messages.
  public let path: String
  /// The error code a bad field yields: 7 for configuration, 6 for results.
  public let code: CNIErrorCode

  public init(object: [String: JSONValue], path: String, code: CNIErrorCode = .decodeFailure) {
    self.object = object
    self.path = path
    self.code = code
  }

  public func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

  public func fail(_ key: String, _ problem: String) -> CNIError {
    CNIError(code, "field \"\(fieldPath(key))\" \(problem)")
  }

  private func present(_ key: String) -> JSONValue? {
    guard let value = object[key], value != .null else { return nil }
    return value
  }

  public func string(_ key: String) throws(CNIError) -> String? {
    guard let value = present(key) else { return nil }
    guard let text = value.stringValue else {
      throw fail(key, "must be a string, got \(value.typeName)")
    }
    return text
  }

  public func requiredString(_ key: String) throws(CNIError) -> String {
    guard let text = try string(key), !text.isEmpty else {
      throw fail(key, "is required")
    }
    return text
  }

  public func int(_ key: String) throws(CNIError) -> Int? {
    guard let value = present(key) else { return nil }
    guard case .number(let number) = value, number.rounded() == number,
      abs(number) <= Double(Int32.max)
    else {
      throw fail(
        key, "must be a whole number, got \(String(decoding: value.serialized(), as: UTF8.self))")
    }
    return Int(number)
  }

  public func number(_ key: String) throws(CNIError) -> Double? {
    guard let value = present(key) else { return nil }
    guard case .number(let number) = value else {
      throw fail(key, "must be a number, got \(value.typeName)")
    }
    return number
  }

  public func bool(_ key: String) throws(CNIError) -> Bool? {
    guard let value = present(key) else { return nil }
    guard case .bool(let flag) = value else {
      throw fail(key, "must be true or false, got \(value.typeName)")
    }
    return flag
  }

  public func strings(_ key: String) throws(CNIError) -> [String] {
    guard let value = present(key) else { return [] }
    guard let items = value.arrayValue else {
      throw fail(key, "must be a list of strings, got \(value.typeName)")
    }
    var result: [String] = []
    for (index, item) in items.enumerated() {
      guard let text = item.stringValue else {
        throw fail("\(key)[\(index)]", "must be a string, got \(item.typeName)")
      }
      result.append(text)
    }
    return result
  }

  public func object(_ key: String) throws(CNIError) -> FieldReader? {
    guard let value = present(key) else { return nil }
    guard let members = value.objectValue else {
      throw fail(key, "must be an object, got \(value.typeName)")
    }
    return FieldReader(object: members, path: fieldPath(key), code: code)
  }

  public func objects(_ key: String) throws(CNIError) -> [FieldReader] {
    guard let value = present(key) else { return [] }
    guard let items = value.arrayValue else {
      throw fail(key, "must be a list, got \(value.typeName)")
    }
    var readers: [FieldReader] = []
    for (index, item) in items.enumerated() {
      guard let members = item.objectValue else {
        throw fail("\(key)[\(index)]", "must be an object, got \(item.typeName)")
      }
      readers.append(FieldReader(object: members, path: fieldPath("\(key)[\(index)]"), code: code))
    }
    return readers
  }

  public func address(_ key: String) throws(CNIError) -> IPAddress? {
    guard let text = try string(key), !text.isEmpty else { return nil }
    guard let address = IPAddress(text) else {
      throw fail(key, "is not an IP address: \"\(text)\"")
    }
    return address
  }

  public func prefix(_ key: String) throws(CNIError) -> IPPrefix {
    let text = try requiredString(key)
    guard let prefix = IPPrefix(text) else {
      throw fail(key, "is not an address in CIDR notation: \"\(text)\"")
    }
    return prefix
  }
}
