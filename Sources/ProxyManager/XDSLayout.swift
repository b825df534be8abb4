import ServiceCore

/// Where Envoy's filesystem xDS files live and how resources point at them.
///
/// Why filesystem xDS (not gRPC ADS or REST polling): Envoy watches the directory with inotify
/// and reloads on rename, so an update reaches it within milliseconds with no server, no
/// protobuf/gRPC stack in the agent, and no polling delay; the files are also what an operator
/// reads to see exactly what Envoy was given. Its costs: no ACK/NACK channel (the agent
/// validates candidates with `envoy --mode validate` first), and no ordering beyond what the
/// writer does (it writes EDS and RDS files before the CDS and LDS files that reference them).
public struct XDSLayout: Sendable, Hashable {
  /// The watched directory holding lds.json, cds.json, rds-*.json and eds-*.json.
  public var directory: String
  /// Envoy's JSON access log (read back as L7 flows).
  public var accessLogPath: String

  public init(directory: String, accessLogPath: String) {
    self.directory = directory
    self.accessLogPath = accessLogPath
  }

  public var ldsPath: String { "\(directory)/lds.json" }
  public var cdsPath: String { "\(directory)/cds.json" }
  public func rdsPath(_ routeName: String) -> String {
    "\(directory)/rds-\(fileTag(routeName)).json"
  }
  public func edsPath(_ clusterName: String) -> String {
    "\(directory)/eds-\(fileTag(clusterName)).json"
  }

  /// A file-name-safe, collision-safe tag for a resource name ("default/web:80").
  func fileTag(_ name: String) -> String {
    let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }.prefix(60))
    return safe + "-" + String(stableHash(name) & 0xffff_ffff, radix: 16)
  }

  /// A `ConfigSource` reading `path`, reloaded when a file is renamed into the directory.
  public func configSource(_ path: String) -> YAMLValue {
    .map([
      "resource_api_version": .string("V3"),
      "path_config_source": .map([
        "path": .string(path),
        "watched_directory": .map(["path": .string(directory)]),
      ]),
    ])
  }

  /// A file's content: what Envoy's filesystem subscription reads (a DiscoveryResponse).
  public static func discoveryResponse(version: String, resources: [YAMLValue]) -> String {
    EnvoyJSON.encode(.map(["version_info": .string(version), "resources": .list(resources)]))
  }
}

/// Listener ports for listeners that name no address: derived from the listener's qualified
/// name, so the same config gets the same port after an agent or Envoy restart; collisions
/// (and ports already taken by explicit listeners) probe to the next free one in name order.
public struct ProxyPortAllocator: Sendable, Hashable {
  public var range: ClosedRange<UInt16>

  public init(range: ClosedRange<UInt16> = 10000...19999) { self.range = range }

  public func allocate(_ names: [String], taken: Set<UInt16> = []) -> [String: UInt16] {
    var used = taken
    var result: [String: UInt16] = [:]
    let size = UInt64(range.count)
    for name in Set(names).sorted() {
      var offset = stableHash(name) % size
      for _ in 0..<size {
        let port = range.lowerBound + UInt16(offset)
        if !used.contains(port) {
          used.insert(port)
          result[name] = port
          break
        }
        offset = (offset + 1) % size
      }
    }
    return result
  }
}
