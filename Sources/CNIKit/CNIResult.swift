/// The ADD success result (spec section 5), held in the newest shape and printed in
/// whichever version the caller asked for.
public struct CNIResult: Equatable, Sendable {
  public struct Interface: Equatable, Sendable {
    public var name: String
    public var mac: String?
    public var mtu: Int?
    /// The netns path for interfaces inside the container; nil on the host.
    public var sandbox: String?
    public var socketPath: String?
    public var pciID: String?

    public init(
      name: String, mac: String? = nil, mtu: Int? = nil, sandbox: String? = nil,
      socketPath: String? = nil, pciID: String? = nil
    ) {
      self.name = name
      self.mac = mac
      self.mtu = mtu
      self.sandbox = sandbox
      self.socketPath = socketPath
      self.pciID = pciID
    }
  }

  public struct IPConfig: Equatable, Sendable {
    public var address: IPPrefix
    public var gateway: IPAddress?
    /// Index into `interfaces`; IPAM results leave it out.
    public var interface: Int?

    public init(address: IPPrefix, gateway: IPAddress? = nil, interface: Int? = nil) {
      self.address = address
      self.gateway = gateway
      self.interface = interface
    }
  }

  public struct Route: Equatable, Sendable {
    public var dst: IPPrefix
    public var gw: IPAddress?
    public var mtu: Int?
    public var advmss: Int?
    public var priority: Int?
    public var table: Int?
    public var scope: Int?

    public init(
      dst: IPPrefix, gw: IPAddress? = nil, mtu: Int? = nil, advmss: Int? = nil,
      priority: Int? = nil, table: Int? = nil, scope: Int? = nil
    ) {
      self.dst = dst
      self.gw = gw
      self.mtu = mtu
      self.advmss = advmss
      self.priority = priority
      self.table = table
      self.scope = scope
    }
  }

  public struct DNS: Equatable, Sendable {
    public var nameservers: [String] = []
    public var domain: String?
    public var search: [String] = []
    public var options: [String] = []

    public init(
      nameservers: [String] = [], domain: String? = nil, search: [String] = [],
      options: [String] = []
    ) {
      self.nameservers = nameservers
      self.domain = domain
      self.search = search
      self.options = options
    }

    public var isEmpty: Bool {
      nameservers.isEmpty && domain == nil && search.isEmpty && options.isEmpty
    }
  }

  public var interfaces: [Interface]
  public var ips: [IPConfig]
  public var routes: [Route]
  public var dns: DNS

  public init(
    interfaces: [Interface] = [], ips: [IPConfig] = [], routes: [Route] = [], dns: DNS = DNS()
  ) {
    self.interfaces = interfaces
    self.ips = ips
    self.routes = routes
    self.dns = dns
  }

  // MARK: - Printing

  /// The result as the given version prints it: "version" on each IP before 1.0.0, the
  /// 1.1.0-only interface and route fields left out before 1.1.0.
  public func json(for version: CNIVersion) -> JSONValue {
    var object: [String: JSONValue] = ["cniVersion": .string(version.description)]
    if !interfaces.isEmpty {
      object["interfaces"] = .array(interfaces.map { $0.json(for: version) })
    }
    if !ips.isEmpty { object["ips"] = .array(ips.map { $0.json(for: version) }) }
    if !routes.isEmpty { object["routes"] = .array(routes.map { $0.json(for: version) }) }
    object["dns"] = dns.json
    return .object(object)
  }

  // MARK: - Reading

  /// Reads a result of any supported version: an IPAM plugin's, or `prevResult`.
  public init(json: JSONValue) throws(CNIError) {
    guard let object = json.objectValue else {
      throw CNIError(.decodeFailure, "result is \(json.typeName), expected an object")
    }
    let reader = FieldReader(object: object, path: "result")
    interfaces = try reader.objects("interfaces").map { item throws(CNIError) in
      Interface(
        name: try item.requiredString("name"), mac: try item.string("mac"),
        mtu: try item.int("mtu"),
        sandbox: try item.string("sandbox"), socketPath: try item.string("socketPath"),
        pciID: try item.string("pciID"))
    }
    ips = try reader.objects("ips").map { item throws(CNIError) in
      IPConfig(
        address: try item.prefix("address"), gateway: try item.address("gateway"),
        interface: try item.int("interface"))
    }
    routes = try reader.objects("routes").map { item throws(CNIError) in
      Route(
        dst: try item.prefix("dst"), gw: try item.address("gw"), mtu: try item.int("mtu"),
        advmss: try item.int("advmss"), priority: try item.int("priority"),
        table: try item.int("table"), scope: try item.int("scope"))
    }
    dns = DNS()
    if let dnsObject = try reader.object("dns") {
      dns = try DNS(reader: dnsObject)
    }
  }
}

extension CNIResult.Interface {
  func json(for version: CNIVersion) -> JSONValue {
    var object: [String: JSONValue] = ["name": .string(name)]
    if let mac { object["mac"] = .string(mac) }
    // Older readers expect sandbox present on container interfaces only.
    if let sandbox { object["sandbox"] = .string(sandbox) }
    if version.resultHasExtendedFields {
      if let mtu { object["mtu"] = .number(Double(mtu)) }
      if let socketPath { object["socketPath"] = .string(socketPath) }
      if let pciID { object["pciID"] = .string(pciID) }
    }
    return .object(object)
  }
}

extension CNIResult.IPConfig {
  func json(for version: CNIVersion) -> JSONValue {
    var object: [String: JSONValue] = ["address": .string(address.description)]
    if version.resultHasIPVersionField {
      object["version"] = .string(address.address.isIPv4 ? "4" : "6")
    }
    if let gateway { object["gateway"] = .string(gateway.description) }
    if let interface { object["interface"] = .number(Double(interface)) }
    return .object(object)
  }
}

extension CNIResult.Route {
  func json(for version: CNIVersion) -> JSONValue {
    var object: [String: JSONValue] = ["dst": .string(dst.description)]
    if let gw { object["gw"] = .string(gw.description) }
    if version.resultHasExtendedFields {
      for (key, value) in [
        ("mtu", mtu), ("advmss", advmss), ("priority", priority), ("table", table),
        ("scope", scope),
      ] {
        if let value { object[key] = .number(Double(value)) }
      }
    }
    return .object(object)
  }
}

extension CNIResult.DNS {
  init(reader: FieldReader) throws(CNIError) {
    self.init(
      nameservers: try reader.strings("nameservers"), domain: try reader.string("domain"),
      search: try reader.strings("search"), options: try reader.strings("options"))
  }

  var json: JSONValue {
    var object: [String: JSONValue] = [:]
    if !nameservers.isEmpty { object["nameservers"] = .array(nameservers.map(JSONValue.string)) }
    if let domain { object["domain"] = .string(domain) }
    if !search.isEmpty { object["search"] = .array(search.map(JSONValue.string)) }
    if !options.isEmpty { object["options"] = .array(options.map(JSONValue.string)) }
    return .object(object)
  }
}
