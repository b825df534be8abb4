import AgentAPI
import FoundationEssentials

/// Why a PUT /v1/endpoints/{id} body was refused. Every case maps to a 4xx and a message
/// that names the offending field, so a client can fix its request without reading code.
public enum EndpointRequestError: Error, Equatable, Sendable, CustomStringConvertible {
  /// Not JSON at all.
  case malformedJSON(String)
  /// JSON, but not an object.
  case notAnObject
  case unknownFields([String])
  case missingField(String)
  case wrongType(field: String, expected: String)
  /// Well-formed and well-typed, but values break the rules (each problem listed).
  case invalidValues([String])
  /// The id in the URL is not the body's containerID:ifname.
  case idMismatch(path: String, body: String)

  public var description: String {
    switch self {
    case .malformedJSON(let detail): "malformed JSON: \(detail)"
    case .notAnObject: "the body must be a JSON object (an EndpointSpec)"
    case .unknownFields(let names):
      "unknown field\(names.count == 1 ? "" : "s") \(names.map { "'\($0)'" }.joined(separator: ", "))"
        + "; an EndpointSpec has \(EndpointSpec.fieldNames.sorted().joined(separator: ", "))"
    case .missingField(let name): "missing required field '\(name)'"
    case .wrongType(let field, let expected): "field '\(field)' must be \(expected)"
    case .invalidValues(let problems): "invalid endpoint: " + problems.joined(separator: "; ")
    case .idMismatch(let path, let body):
      "the id in the path (\(NameRules.printable(path))) is not the body's containerID:ifname "
        + "(\(NameRules.printable(body)))"
    }
  }
}

/// Turns the raw body of a PUT into an EndpointSpec, or says exactly what is wrong with it:
/// syntax first, then the set of keys (against `EndpointSpec.fieldNames`), then types,
/// then values. Nothing here touches state.
public enum EndpointRequest {
  /// Bodies above this are refused (413) before they are parsed.
  public static let maximumBodySize = 1 << 20

  public static func decode(_ body: [UInt8], pathID: String? = nil) throws(EndpointRequestError)
    -> EndpointSpec
  {
    let data = Data(body)
    let keys: [String]
    do {
      keys = try JSONDecoder().decode(ObjectKeys.self, from: data).keys
    } catch let error as DecodingError {
      switch error {
      case .typeMismatch(_, let context), .valueNotFound(_, let context):
        if context.codingPath.isEmpty { throw .notAnObject }
      default: break
      }
      throw .malformedJSON(describe(error))
    } catch {
      throw .malformedJSON("\(error)")
    }
    let unknown = keys.filter { !EndpointSpec.fieldNames.contains($0) }.sorted()
    if !unknown.isEmpty { throw .unknownFields(unknown) }

    let spec: EndpointSpec
    do {
      spec = try JSONDecoder().decode(EndpointSpec.self, from: data)
    } catch let error as DecodingError {
      if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
        // The syntax passed above, so this is a number that does not fit its integer field
        // (1.5, 1e40); FoundationEssentials does not say which, so look.
        let field = (try? JSONDecoder().decode(IntegerFieldProbe.self, from: data))?.badField
        throw .wrongType(
          field: field ?? "hostIfindex, podInterfaceIndex or netnsCookie", expected: "an integer")
      }
      throw classify(error)
    } catch {
      throw .malformedJSON("\(error)")
    }
    let problems = EndpointValidation.problems(spec)
    if !problems.isEmpty { throw .invalidValues(problems) }
    if let pathID, pathID != spec.id { throw .idMismatch(path: pathID, body: spec.id) }
    return spec
  }

  static func classify(_ error: DecodingError) -> EndpointRequestError {
    switch error {
    case .keyNotFound(let key, let context):
      return .missingField(fieldPath(context.codingPath + [key]))
    case .valueNotFound(let type, let context):
      if context.codingPath.isEmpty { return .notAnObject }
      return .wrongType(field: fieldPath(context.codingPath), expected: expectation(type))
    case .typeMismatch(let type, let context):
      if context.codingPath.isEmpty { return .notAnObject }
      return .wrongType(field: fieldPath(context.codingPath), expected: expectation(type))
    case .dataCorrupted(let context):
      // Numbers that do not fit (1.5 or 1e40 for an Int) land here with the field's path.
      if context.codingPath.isEmpty { return .malformedJSON(describe(error)) }
      return .wrongType(
        field: fieldPath(context.codingPath),
        expected: "a valid value (\(context.debugDescription))")
    @unknown default:
      return .malformedJSON(describe(error))
    }
  }

  /// "ips[1]", "hostIfindex".
  static func fieldPath(_ path: [any CodingKey]) -> String {
    var result = ""
    for key in path {
      if let index = key.intValue {
        result += "[\(index)]"
      } else {
        result += result.isEmpty ? key.stringValue : ".\(key.stringValue)"
      }
    }
    return result
  }

  static func expectation(_ type: Any.Type) -> String {
    let name = String(describing: type)
    if name.hasPrefix("Int") || name.hasPrefix("UInt") { return "an integer" }
    if name.hasPrefix("String") { return "a string" }
    if name.hasPrefix("Array") { return "an array" }
    if name.hasPrefix("Dictionary") { return "an object" }
    if name.hasPrefix("Bool") { return "true or false" }
    if name.hasPrefix("Double") || name.hasPrefix("Float") { return "a number" }
    return "a \(name)"
  }

  static func describe(_ error: DecodingError) -> String {
    switch error {
    case .dataCorrupted(let context):
      if let underlying = context.underlyingError {
        return "\(context.debugDescription) (\(underlying))"
      }
      return context.debugDescription
    default:
      return "\(error)"
    }
  }
}

/// Value rules for an EndpointSpec whose shape is already right.
public enum EndpointValidation {
  /// Every problem found, in field order; empty when the spec is acceptable.
  public static func problems(_ spec: EndpointSpec) -> [String] {
    var problems: [String] = []
    func check(_ field: String, _ problem: String?) {
      if let problem { problems.append("\(field) \(problem)") }
    }
    check("containerID", NameRules.containerID(spec.containerID))
    check("ifname", NameRules.interfaceName(spec.ifname))
    if NameRules.containerID(spec.containerID) == nil, NameRules.interfaceName(spec.ifname) == nil,
      let problem = EndpointID.problem(spec.id)
    {
      problems.append("the id \"\(NameRules.printable(spec.id))\" \(problem)")
    }
    check("network", NameRules.networkName(spec.network))
    if let namespace = spec.podNamespace {
      check("podNamespace", NameRules.kubernetesName(namespace))
    }
    if let name = spec.podName { check("podName", NameRules.kubernetesName(name)) }
    if let uid = spec.podUID { check("podUID", NameRules.kubernetesUID(uid)) }
    check("netns", NameRules.absolutePath(spec.netns))
    check("hostInterface", NameRules.interfaceName(spec.hostInterface))
    if spec.hostIfindex <= 0 || spec.hostIfindex > Int(Int32.max) {
      problems.append("hostIfindex must be between 1 and \(Int32.max), not \(spec.hostIfindex)")
    }
    if let index = spec.podInterfaceIndex, index <= 0 || index > Int(Int32.max) {
      problems.append("podInterfaceIndex must be between 1 and \(Int32.max), not \(index)")
    }
    if spec.ips.count > 64 { problems.append("ips has \(spec.ips.count) entries; at most 64") }
    for (index, ip) in spec.ips.prefix(64).enumerated() {
      check("ips[\(index)]", AddressRules.cidr(ip))
    }
    // By value, not by text: an IPv6 address has many spellings.
    let keys = spec.ips.compactMap(AddressRules.cidrKey)
    if Set(spec.ips).count != spec.ips.count || Set(keys).count != keys.count {
      problems.append("ips has duplicates")
    }
    if let mac = spec.mac { check("mac", AddressRules.mac(mac)) }
    if let mac = spec.hostMAC { check("hostMAC", AddressRules.mac(mac)) }
    // No namespace has cookie 0 (the kernel's counter starts at 1): a 0 is a broken client.
    if spec.netnsCookie == 0 {
      problems.append("netnsCookie must be between 1 and \(UInt64.max), not 0")
    }
    return problems
  }
}

/// Finds the first integer field of an EndpointSpec whose number does not fit its type.
struct IntegerFieldProbe: Decodable {
  static let fields = ["hostIfindex", "podInterfaceIndex", "netnsCookie"]
  var badField: String?

  init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: AnyKey.self)
    for field in Self.fields {
      let key = AnyKey(stringValue: field)
      let fits =
        field == "netnsCookie"
        ? (try? container.decode(UInt64.self, forKey: key)) != nil
        : (try? container.decode(Int.self, forKey: key)) != nil
      if container.contains(key), (try? container.decodeNil(forKey: key)) != true, !fits {
        badField = field
        return
      }
    }
  }
}

/// The keys of a JSON object, whatever their values.
struct ObjectKeys: Decodable {
  var keys: [String]

  init(from decoder: any Decoder) throws {
    keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
  }
}

struct AnyKey: CodingKey {
  var stringValue: String
  var intValue: Int?

  init(stringValue: String) { self.stringValue = stringValue }
  init?(intValue: Int) {
    self.stringValue = String(intValue)
    self.intValue = intValue
  }
}
