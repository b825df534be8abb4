import Foundation
import ServiceCore

/// The files Envoy reads, from the configs being served: path → content.
public struct XDSFiles: Sendable, Equatable {
  public var files: [String: String] = [:]
  /// Which files to write first: the ones later files reference (EDS, RDS, then CDS, LDS).
  public var order: [String] = []

  public static func build(
    configs: [TranslatedConfig], serviceEndpoints: [String: YAMLValue], layout: XDSLayout,
    version: String
  ) -> XDSFiles {
    var result = XDSFiles()
    var eds: [String: YAMLValue] = [:]
    var routes: [String: YAMLValue] = [:]
    var clusters: [YAMLValue] = []
    var listeners: [YAMLValue] = []
    for config in configs {
      for name in config.serviceClusters {
        eds[name] = serviceEndpoints[name] ?? .map(["endpoints": .list([])])
      }
      for (name, assignment) in config.endpoints { eds[name] = assignment }
      for route in config.routes {
        if let name = route["name"]?.stringValue { routes[name] = route }
      }
      clusters.append(contentsOf: config.clusters)
      listeners.append(contentsOf: config.listeners)
    }
    func add(_ path: String, _ resources: [YAMLValue]) {
      result.files[path] = XDSLayout.discoveryResponse(version: version, resources: resources)
      result.order.append(path)
    }
    for name in eds.keys.sorted() {
      guard var assignment = eds[name]?.mapValue else { continue }
      assignment["@type"] = .string(TranslationSettings.endpointType)
      assignment["cluster_name"] = .string(name)
      add(layout.edsPath(name), [.map(assignment)])
    }
    for name in routes.keys.sorted() { add(layout.rdsPath(name), [routes[name]!]) }
    add(layout.cdsPath, clusters)
    add(layout.ldsPath, listeners)
    return result
  }
}

/// Writes the files into the watched directory: each as a temporary file in the same
/// directory, then rename() over the target (Envoy reloads on the rename; an in-place write
/// is not seen). Unchanged files are not rewritten, so Envoy reloads only what changed.
public final class XDSWriter: @unchecked Sendable {
  let layout: XDSLayout
  private var written: [String: String] = [:]

  public init(layout: XDSLayout) throws {
    self.layout = layout
    try FileManager.default.createDirectory(
      atPath: layout.directory, withIntermediateDirectories: true)
  }

  /// Returns whether anything changed.
  @discardableResult
  public func write(_ files: XDSFiles) throws -> Bool {
    var changed = false
    for path in files.order {
      let content = files.files[path]!
      if written[path] == content, FileManager.default.fileExists(atPath: path) { continue }
      let temporary = "\(path).tmp-\(getpid())"
      try Data(content.utf8).write(to: URL(fileURLWithPath: temporary))
      guard rename(temporary, path) == 0 else {
        throw XDSWriteError(path: path, errno: errno)
      }
      written[path] = content
      changed = true
    }
    // Files no longer referenced: removed after the LDS/CDS that referenced them changed.
    for path in written.keys where files.files[path] == nil {
      unlink(path)
      written[path] = nil
      changed = true
    }
    return changed
  }
}

public struct XDSWriteError: Error, CustomStringConvertible {
  public var path: String
  public var errno: Int32
  public var description: String { "rename to \(path) failed: \(String(cString: strerror(errno)))" }
}
