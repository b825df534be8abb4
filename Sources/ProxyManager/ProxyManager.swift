import AgentAPI
import Foundation
import Logging
import ServiceCore

/// What the node's Envoy is configured from: the L7 resources and Junction's backends.
public struct L7Inputs: Sendable, Hashable {
  public var envoyConfigs: [EnvoyConfigResource]
  public var ingresses: [IngressResource]
  public var secrets: [TLSSecret]
  public var backends: [ServiceBackendSet]

  public init(
    envoyConfigs: [EnvoyConfigResource] = [], ingresses: [IngressResource] = [],
    secrets: [TLSSecret] = [], backends: [ServiceBackendSet] = []
  ) {
    self.envoyConfigs = envoyConfigs
    self.ingresses = ingresses
    self.secrets = secrets
    self.backends = backends
  }
}

public struct ProxySettings: Sendable {
  public var envoyPath: String
  /// The agent's run directory: xds/, the bootstrap, the admin socket, the access log.
  public var runDirectory: String
  public var nodeID: String
  public var translation: TranslationSettings
  public var ports: ProxyPortAllocator

  public init(
    envoyPath: String, runDirectory: String, nodeID: String, listenAddress: String = "0.0.0.0",
    ports: ProxyPortAllocator = ProxyPortAllocator()
  ) {
    self.envoyPath = envoyPath
    self.runDirectory = runDirectory
    self.nodeID = nodeID
    self.translation = TranslationSettings(
      layout: XDSLayout(
        directory: "\(runDirectory)/envoy-xds", accessLogPath: "\(runDirectory)/envoy-access.log"),
      listenAddress: listenAddress)
    self.ports = ports
  }

  public var adminSocket: String { "\(runDirectory)/envoy-admin.sock" }
  public var bootstrapPath: String { "\(runDirectory)/envoy-bootstrap.json" }
  /// Unique per run directory, so agents sharing a machine never share Envoy's base id.
  public var baseID: UInt32 {
    UInt32(truncatingIfNeeded: stableHash(runDirectory) % 1_000_000) + 1000
  }
}

/// The L7 side of the agent: L7 resources → validated Envoy config on disk → Envoy, and the
/// Services to redirect to it. Envoy is started when the first config appears and never
/// stopped for lack of configs (an empty config costs nothing); L4 never waits on it.
public final class ProxyManager: @unchecked Sendable {
  public let settings: ProxySettings
  let logger: Logger
  let writer: XDSWriter
  let validator: EnvoyValidator
  public let supervisor: EnvoySupervisor
  /// Called with every Service redirect whenever the set changes: the one call point where
  /// the service side learns which frontends go to Envoy.
  let redirectSink: @Sendable ([ProxyRedirect]) -> Void

  private let lock = NSLock()
  private var accepted: [ResourceKey: TranslatedConfig] = [:]
  private var statuses: [ResourceKey: EnvoyConfigStatus] = [:]
  private var verdicts: [String: String?] = [:]
  private var redirects: [ProxyRedirect] = []
  private var generation = 0

  public init(
    settings: ProxySettings, logger: Logger,
    redirectSink: @escaping @Sendable ([ProxyRedirect]) -> Void
  ) throws {
    self.settings = settings
    self.logger = logger
    self.redirectSink = redirectSink
    try FileManager.default.createDirectory(
      atPath: settings.runDirectory, withIntermediateDirectories: true)
    writer = try XDSWriter(layout: settings.translation.layout)
    validator = EnvoyValidator(
      envoyPath: settings.envoyPath, scratchDirectory: "\(settings.runDirectory)/envoy-validate")
    supervisor = EnvoySupervisor(
      options: .init(
        envoyPath: settings.envoyPath, bootstrapPath: settings.bootstrapPath,
        baseID: settings.baseID), logger: logger)
    supervisor.endLeftover()
    let bootstrap = Bootstrap.live(
      nodeID: settings.nodeID, adminSocket: settings.adminSocket,
      layout: settings.translation.layout)
    try Data(bootstrap.utf8).write(to: URL(fileURLWithPath: settings.bootstrapPath))
  }

  /// Translates, validates what changed, writes the files and starts Envoy when needed.
  /// Returns the statuses (also kept for `list()`).
  @discardableResult
  public func update(_ inputs: L7Inputs) -> [EnvoyConfigStatus] {
    lock.lock()
    defer { lock.unlock() }
    let candidates = Self.translate(inputs, settings: settings)
    let endpoints = ServiceEndpoints.assignments(inputs.backends)
    var nextAccepted: [ResourceKey: TranslatedConfig] = [:]
    var nextStatuses: [ResourceKey: EnvoyConfigStatus] = [:]
    for candidate in candidates {
      var message: String?
      if !candidate.problems.isEmpty {
        message = candidate.problems.joined(separator: "; ")
      } else if accepted[candidate.key]?.fingerprint != candidate.fingerprint {
        message = verdict(candidate, endpoints: endpoints)
      }
      if message == nil {
        nextAccepted[candidate.key] = candidate
      } else if let previous = accepted[candidate.key] {
        nextAccepted[candidate.key] = previous
      }
      let served = nextAccepted[candidate.key]
      nextStatuses[candidate.key] = EnvoyConfigStatus(
        kind: candidate.key.kind.rawValue, namespace: candidate.key.namespace,
        name: candidate.key.name,
        services: (served ?? candidate).redirects.map {
          "\($0.service) (\($0.ports.isEmpty ? "all ports" : $0.ports.sorted().map(String.init).joined(separator: ","))) → :\($0.proxyPort)"
        },
        listeners: (served ?? candidate).listenerPorts, accepted: message == nil,
        serving: served != nil, message: message, notes: candidate.notes)
      if let message { logger.warning("envoy refused \(candidate.owner): \(message)") }
    }
    accepted = nextAccepted
    statuses = nextStatuses
    generation += 1
    let served = accepted.keys.sorted().map { accepted[$0]! }
    let files = XDSFiles.build(
      configs: served, serviceEndpoints: endpoints, layout: settings.translation.layout,
      version: String(generation))
    do {
      try writer.write(files)
    } catch {
      logger.error("envoy config not written: \(error)")
    }
    if !candidates.isEmpty { supervisor.start() }
    let nextRedirects = served.flatMap(\.redirects).sorted()
    if nextRedirects != redirects {
      redirects = nextRedirects
      redirectSink(nextRedirects)
    }
    return nextStatuses.keys.sorted().map { nextStatuses[$0]! }
  }

  /// nil when Envoy accepts the candidate; cached per content.
  private func verdict(_ candidate: TranslatedConfig, endpoints: [String: YAMLValue]) -> String? {
    let key = candidate.fingerprint
    if let known = verdicts[key] { return known }
    var all = endpoints
    for (name, assignment) in candidate.endpoints { all[name] = assignment }
    let result: String?
    do {
      result = try validator.validate(bootstrap: Bootstrap.validation(candidate, endpoints: all))
    } catch {
      result = "validation could not run: \(error)"
    }
    if verdicts.count > 256 { verdicts.removeAll() }
    verdicts[key] = result
    return result
  }

  /// Every config's translation, ports allocated over all of them.
  static func translate(_ inputs: L7Inputs, settings: ProxySettings) -> [TranslatedConfig] {
    var explicit: Set<UInt16> = []
    for config in inputs.envoyConfigs {
      for resource in config.resources {
        if case .int(let port) = resource["address"]?["socket_address"]?["port_value"],
          (1...65535).contains(port)
        {
          explicit.insert(UInt16(port))
        }
      }
    }
    let served = inputs.ingresses.filter(\.isServed)
    let names =
      inputs.envoyConfigs.flatMap(CECTranslation.unaddressedListeners)
      + served.map(IngressTranslation.listenerName)
    let ports = settings.ports.allocate(names, taken: explicit)
    var secrets: [NamespacedName: TLSSecret] = [:]
    for secret in inputs.secrets { secrets[secret.meta.namespacedName] = secret }
    var result = inputs.envoyConfigs.map {
      CECTranslation.translate($0, ports: ports, settings: settings.translation)
    }
    for ingress in served {
      let name = IngressTranslation.listenerName(ingress)
      guard let port = ports[name] else { continue }
      result.append(
        IngressTranslation.translate(
          ingress, secrets: secrets, port: port, settings: settings.translation))
    }
    return result
  }

  public func list() -> EnvoyListResponse {
    let configs = lock.withLock { statuses.keys.sorted().map { statuses[$0]! } }
    return EnvoyListResponse(pid: supervisor.pid, starts: supervisor.startCount, configs: configs)
  }

  public var currentRedirects: [ProxyRedirect] { lock.withLock { redirects } }

  /// Generated Services (one LoadBalancer Service per served Ingress), as documents.
  public func generatedServices(_ inputs: L7Inputs) -> [YAMLValue] {
    Self.translate(inputs, settings: settings).compactMap(\.generatedServiceDocument)
  }

  public func stop() { supervisor.stop() }
}
