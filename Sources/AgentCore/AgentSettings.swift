import DatapathABI
import FoundationEssentials

/// The agent's settings as a `--config` file gives them: a JSON object whose keys are the
/// long flag names ("node-name", "socket", "state-dir", "bpf-fs", "bpf-objects", "devices",
/// "log-level", "lb-mode", "node-port-range", "snat-port-range", "cgroup-root", "socket-lb" (a
/// JSON boolean), and the map sizes "lb-services-max", "lb-backends-max", "conntrack-max",
/// "affinity-max" as JSON numbers, the Kubernetes API's "kubeconfig", "k8s-api-server",
/// "k8s-service-proxy-name", the flows' "monitor-level" and "flow-buffer-size" (a JSON
/// number), "proxy-redirect" (an array of NS/NAME[:PORT,...]=PROXYPORT strings), "envoy"
/// (the Envoy binary for L7) and "tc-hook"). Flags given on the command line win over the file.
public struct AgentConfigFile: Equatable, Sendable {
  public var nodeName: String?
  public var socket: String?
  public var stateDir: String?
  public var bpfFS: String?
  public var bpfObjects: String?
  public var devices: [String]?
  public var logLevel: String?
  public var lbServicesMax: Int?
  public var lbBackendsMax: Int?
  public var conntrackMax: Int?
  public var affinityMax: Int?
  public var lbMode: String?
  public var nodePortRange: String?
  public var snatPortRange: String?
  public var socketLB: Bool?
  public var cgroupRoot: String?
  public var kubeconfig: String?
  public var k8sAPIServer: String?
  public var k8sServiceProxyName: String?
  public var monitorLevel: String?
  public var flowBufferSize: Int?
  public var envoy: String?
  public var proxyRedirects: [String]?
  public var tcHook: String?

  public init(
    nodeName: String? = nil, socket: String? = nil, stateDir: String? = nil, bpfFS: String? = nil,
    bpfObjects: String? = nil, devices: [String]? = nil, logLevel: String? = nil,
    lbServicesMax: Int? = nil, lbBackendsMax: Int? = nil, conntrackMax: Int? = nil,
    affinityMax: Int? = nil, lbMode: String? = nil, nodePortRange: String? = nil,
    snatPortRange: String? = nil, socketLB: Bool? = nil, cgroupRoot: String? = nil,
    kubeconfig: String? = nil, k8sAPIServer: String? = nil, k8sServiceProxyName: String? = nil,
    monitorLevel: String? = nil, flowBufferSize: Int? = nil, proxyRedirects: [String]? = nil,
    envoy: String? = nil, tcHook: String? = nil
  ) {
    self.tcHook = tcHook
    self.envoy = envoy
    self.proxyRedirects = proxyRedirects
    self.kubeconfig = kubeconfig
    self.k8sAPIServer = k8sAPIServer
    self.k8sServiceProxyName = k8sServiceProxyName
    self.monitorLevel = monitorLevel
    self.flowBufferSize = flowBufferSize
    self.lbMode = lbMode
    self.nodePortRange = nodePortRange
    self.snatPortRange = snatPortRange
    self.socketLB = socketLB
    self.cgroupRoot = cgroupRoot
    self.lbServicesMax = lbServicesMax
    self.lbBackendsMax = lbBackendsMax
    self.conntrackMax = conntrackMax
    self.affinityMax = affinityMax
    self.nodeName = nodeName
    self.socket = socket
    self.stateDir = stateDir
    self.bpfFS = bpfFS
    self.bpfObjects = bpfObjects
    self.devices = devices
    self.logLevel = logLevel
  }

  public static let keys: [String] = [
    "node-name", "socket", "state-dir", "bpf-fs", "bpf-objects", "devices", "log-level",
    "lb-services-max", "lb-backends-max", "conntrack-max", "affinity-max", "lb-mode",
    "node-port-range", "snat-port-range", "socket-lb", "cgroup-root", "kubeconfig",
    "k8s-api-server", "k8s-service-proxy-name", "monitor-level", "flow-buffer-size",
    "proxy-redirect", "envoy", "tc-hook",
  ]

  public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
  }

  /// Parses the file's bytes. `devices` may be an array of names or one comma-separated string.
  public static func parse(_ bytes: [UInt8]) throws(Failure) -> AgentConfigFile {
    let data = Data(bytes)
    let keys: [String]
    do {
      keys = try JSONDecoder().decode(ObjectKeys.self, from: data).keys
    } catch {
      switch error {
      case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
        if context.codingPath.isEmpty {
          throw Failure(description: "must be a JSON object whose keys are flag names")
        }
      default: break
      }
      throw Failure(description: "is not valid JSON")
    }
    let unknown = keys.filter { !Self.keys.contains($0) }.sorted()
    if !unknown.isEmpty {
      throw Failure(
        description:
          "unknown key\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", "))"
          + " (known: \(Self.keys.joined(separator: ", ")))")
    }
    do {
      return try JSONDecoder().decode(FileShape.self, from: data).settings
    } catch let error as DecodingError {
      switch error {
      case .typeMismatch(_, let context), .valueNotFound(_, let context),
        .dataCorrupted(let context):
        let key = context.codingPath.first?.stringValue ?? "?"
        let description =
          if key == "devices" {
            "'devices' must be an array of interface names or a comma-separated string"
          } else if key == "proxy-redirect" {
            "'proxy-redirect' must be an array of NS/NAME[:PORT,...]=PROXYPORT strings"
          } else if key == "socket-lb" {
            "'socket-lb' must be true or false"
          } else if MapSizes.flags.contains(where: { $0.flag == "--" + key })
            || key == "flow-buffer-size"
          {
            "'\(key)' must be a whole number"
          } else {
            "'\(key)' must be a string"
          }
        throw Failure(description: description)
      default:
        throw Failure(description: "\(error)")
      }
    } catch {
      throw Failure(description: "\(error)")
    }
  }

  /// "eth0,eth1" → ["eth0", "eth1"]; blanks dropped.
  public static func splitDevices(_ text: String) -> [String] {
    text.split(separator: ",").map {
      String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
    .filter { !$0.isEmpty }
  }

  private struct FileShape: Decodable {
    var settings: AgentConfigFile

    init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: AnyKey.self)
      func string(_ key: String) throws -> String? {
        try container.decodeIfPresent(String.self, forKey: AnyKey(stringValue: key))
      }
      var devices: [String]?
      let devicesKey = AnyKey(stringValue: "devices")
      if container.contains(devicesKey) {
        if let list = try? container.decode([String].self, forKey: devicesKey) {
          devices = list
        } else {
          devices = AgentConfigFile.splitDevices(
            try container.decode(String.self, forKey: devicesKey))
        }
      }
      func number(_ key: String) throws -> Int? {
        let codingKey = AnyKey(stringValue: key)
        do {
          return try container.decodeIfPresent(Int.self, forKey: codingKey)
        } catch {
          // 1.5 fails as dataCorrupted without the key in its path: name the key.
          throw DecodingError.typeMismatch(
            Int.self, .init(codingPath: [codingKey], debugDescription: "not a whole number"))
        }
      }
      settings = AgentConfigFile(
        nodeName: try string("node-name"), socket: try string("socket"),
        stateDir: try string("state-dir"), bpfFS: try string("bpf-fs"),
        bpfObjects: try string("bpf-objects"), devices: devices, logLevel: try string("log-level"),
        lbServicesMax: try number("lb-services-max"), lbBackendsMax: try number("lb-backends-max"),
        conntrackMax: try number("conntrack-max"), affinityMax: try number("affinity-max"),
        lbMode: try string("lb-mode"), nodePortRange: try string("node-port-range"),
        snatPortRange: try string("snat-port-range"),
        socketLB: try container.decodeIfPresent(
          Bool.self, forKey: AnyKey(stringValue: "socket-lb")),
        cgroupRoot: try string("cgroup-root"), kubeconfig: try string("kubeconfig"),
        k8sAPIServer: try string("k8s-api-server"),
        k8sServiceProxyName: try string("k8s-service-proxy-name"),
        monitorLevel: try string("monitor-level"), flowBufferSize: try number("flow-buffer-size"),
        proxyRedirects: try container.decodeIfPresent(
          [String].self, forKey: AnyKey(stringValue: "proxy-redirect")),
        envoy: try string("envoy"), tcHook: try string("tc-hook"))
    }
  }
}

/// The agent's effective settings and their checks.
public struct AgentSettings: Equatable, Sendable {
  public var nodeName: String
  public var socket: String
  public var stateDir: String
  public var bpfFS: String
  public var bpfObjects: String
  public var devices: [String]
  public var logLevel: String
  public var mapSizes: MapSizes
  public var northSouth: NorthSouthSettings
  /// Why a north-south value could not be read ("--lb-mode \"x\" is not ..."), else nil.
  public var northSouthProblem: String?
  /// The Kubernetes API: `--kubeconfig`, `--k8s-api-server` (the API server's real address,
  /// overriding the kubeconfig's or the in-cluster one), `--k8s-service-proxy-name`.
  public var kubeconfig: String?
  public var k8sAPIServer: String?
  public var k8sServiceProxyName: String?
  public var flows: FlowSettings
  /// `--envoy PATH`: the Envoy binary the agent runs for CiliumEnvoyConfig and Ingress; nil:
  /// L7 resources are stored but not served.
  public var envoy: String?
  /// `--proxy-redirect` (ProxyRedirectFlag); `proxyRedirectProblem` says why one could not
  /// be read.
  public var proxyRedirects: [ProxyRedirectFlag] = []
  public var proxyRedirectProblem: String?
  /// `--tc-hook`: where the endpoint and north-south programs attach (TCHookChoice).
  public var tcHook: TCHookChoice = .clsact
  public var tcHookProblem: String?

  public static let defaultSocket = "/run/junction/junction.sock"
  public static let defaultStateDir = "/var/lib/junction"
  public static let defaultBPFFS = "/sys/fs/bpf/junction"
  public static let defaultBPFObjects = "/usr/local/lib/junction/bpf"
  public static let defaultLogLevel = "info"
  public static let logLevels = [
    "trace", "debug", "info", "notice", "warning", "error", "critical",
  ]
  /// sizeof(sockaddr_un.sun_path) - 1.
  public static let maximumSocketPathLength = 107

  public init(
    nodeName: String, socket: String, stateDir: String, bpfFS: String, bpfObjects: String,
    devices: [String], logLevel: String, mapSizes: MapSizes = MapSizes(),
    northSouth: NorthSouthSettings = NorthSouthSettings(), northSouthProblem: String? = nil,
    kubeconfig: String? = nil, k8sAPIServer: String? = nil, k8sServiceProxyName: String? = nil,
    flows: FlowSettings = FlowSettings(), envoy: String? = nil
  ) {
    self.envoy = envoy
    self.kubeconfig = kubeconfig
    self.k8sAPIServer = k8sAPIServer
    self.k8sServiceProxyName = k8sServiceProxyName
    self.flows = flows
    self.mapSizes = mapSizes
    self.northSouth = northSouth
    self.northSouthProblem = northSouthProblem
    self.nodeName = nodeName
    self.socket = socket
    self.stateDir = stateDir
    self.bpfFS = bpfFS
    self.bpfObjects = bpfObjects
    self.devices = devices
    self.logLevel = logLevel
  }

  /// Flag, else config file, else environment (`JUNCTION_SOCKET`), else the default.
  public static func resolve(
    flags: AgentConfigFile, file: AgentConfigFile?, environment: [String: String], hostname: String
  ) -> AgentSettings {
    let file = file ?? AgentConfigFile()
    let socketFromEnvironment = environment["JUNCTION_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    var northSouth = NorthSouthSettings(
      socketLB: flags.socketLB ?? file.socketLB ?? false,
      cgroupRoot: flags.cgroupRoot ?? file.cgroupRoot ?? NorthSouthSettings.defaultCgroupRoot)
    var northSouthProblem: String?
    if let text = flags.lbMode ?? file.lbMode {
      if let mode = LBMode(rawValue: text) {
        northSouth.lbMode = mode
      } else {
        northSouthProblem =
          "--lb-mode \"\(text)\" is not one of \(LBMode.allCases.map(\.rawValue).joined(separator: ", "))"
      }
    }
    for (flag, text, path) in [
      (
        "--node-port-range", flags.nodePortRange ?? file.nodePortRange,
        \NorthSouthSettings.nodePortRange
      ),
      (
        "--snat-port-range", flags.snatPortRange ?? file.snatPortRange,
        \NorthSouthSettings.snatPortRange
      ),
    ] {
      guard let text else { continue }
      if let range = PortRange.parse(text) {
        northSouth[keyPath: path] = range
      } else if northSouthProblem == nil {
        northSouthProblem = "\(flag) \"\(text)\" is not LOW-HIGH with 1 <= LOW <= HIGH <= 65535"
      }
    }
    var settings = AgentSettings(
      nodeName: flags.nodeName ?? file.nodeName ?? hostname,
      socket: flags.socket ?? file.socket ?? socketFromEnvironment ?? defaultSocket,
      stateDir: flags.stateDir ?? file.stateDir ?? defaultStateDir,
      bpfFS: flags.bpfFS ?? file.bpfFS ?? defaultBPFFS,
      bpfObjects: flags.bpfObjects ?? file.bpfObjects ?? defaultBPFObjects,
      devices: flags.devices ?? file.devices ?? [],
      logLevel: flags.logLevel ?? file.logLevel ?? defaultLogLevel,
      mapSizes: MapSizes(
        lbServices: flags.lbServicesMax ?? file.lbServicesMax ?? MapSizes.defaultLBServices,
        lbBackends: flags.lbBackendsMax ?? file.lbBackendsMax ?? MapSizes.defaultLBBackends,
        conntrack: flags.conntrackMax ?? file.conntrackMax ?? MapSizes.defaultConntrack,
        affinity: flags.affinityMax ?? file.affinityMax ?? MapSizes.defaultAffinity),
      northSouth: northSouth, northSouthProblem: northSouthProblem,
      kubeconfig: flags.kubeconfig ?? file.kubeconfig,
      k8sAPIServer: flags.k8sAPIServer ?? file.k8sAPIServer,
      k8sServiceProxyName: flags.k8sServiceProxyName ?? file.k8sServiceProxyName,
      flows: FlowSettings(
        levelText: flags.monitorLevel ?? file.monitorLevel ?? FlowSettings.defaultLevel.rawValue,
        bufferSize: flags.flowBufferSize ?? file.flowBufferSize ?? FlowSettings.defaultBufferSize))
    settings.envoy = flags.envoy ?? file.envoy
    if let text = flags.tcHook ?? file.tcHook {
      if let choice = TCHookChoice(rawValue: text) {
        settings.tcHook = choice
      } else {
        settings.tcHookProblem =
          "--tc-hook \"\(text)\" is not one of \(TCHookChoice.allCases.map(\.rawValue).joined(separator: ", "))"
      }
    }
    for text in flags.proxyRedirects ?? file.proxyRedirects ?? [] {
      switch ProxyRedirectFlag.parse(text) {
      case .success(let redirect): settings.proxyRedirects.append(redirect)
      case .failure(let error):
        if settings.proxyRedirectProblem == nil {
          settings.proxyRedirectProblem = error.description
        }
      }
    }
    return settings
  }

  /// The first problem with these settings, or nil.
  public var problem: String? {
    if nodeName.isEmpty { return "the node name must not be empty" }
    if nodeName.utf8.count > 253 { return "the node name is longer than 253 bytes" }
    for (flag, path) in [
      ("--socket", socket), ("--state-dir", stateDir), ("--bpf-fs", bpfFS),
      ("--bpf-objects", bpfObjects),
    ] {
      if path.isEmpty { return "\(flag) must not be empty" }
      if path.utf8.contains(0) { return "\(flag) must not contain NUL bytes" }
    }
    if socket.utf8.count > Self.maximumSocketPathLength {
      return "socket path \(socket) is longer than \(Self.maximumSocketPathLength) bytes"
    }
    if socket.hasSuffix("/") { return "socket path \(socket) names a directory" }
    for device in devices {
      if let problem = NameRules.interfaceName(device) { return "device \(problem)" }
    }
    if !Self.logLevels.contains(logLevel) {
      return "log level \"\(logLevel)\" is not one of \(Self.logLevels.joined(separator: ", "))"
    }
    if let problem = northSouthProblem ?? northSouth.problem { return problem }
    if let problem = flows.problem { return problem }
    if let problem = proxyRedirectProblem { return problem }
    if let problem = tcHookProblem { return problem }
    return mapSizes.problem
  }
}

/// max_entries of the datapath maps the agent sizes (bpf/junction_abi.h), applied before the
/// object is loaded. The defaults are the header's. Each size is that of an IPv4 map and of
/// its IPv6 twin (jnc_lb6_svc, jnc_lb6_be, jnc_ct6, jnc_lb6_aff) alike.
public struct MapSizes: Equatable, Sendable {
  /// jnc_lb4_svc: one entry per frontend plus one per backend slot, so it must hold
  /// frontends × (1 + backends).
  public var lbServices: Int
  /// jnc_lb4_be: one entry per backend (shared by the frontends that name it).
  public var lbBackends: Int
  /// jnc_ct4 and jnc_ct6: two entries per connection through a service (both directions).
  public var conntrack: Int
  /// jnc_lb4_aff (LRU): one entry per client and ClientIP-affinity frontend.
  public var affinity: Int

  /// The ABI header's defaults (bpf/junction_abi.h), never restated here.
  public static let defaultLBServices = Int(JUNCTION_LB4_SERVICES_MAX)
  public static let defaultLBBackends = Int(JUNCTION_LB4_BACKENDS_MAX)
  public static let defaultConntrack = Int(JUNCTION_CT4_MAX)
  public static let defaultAffinity = Int(JUNCTION_LB4_AFFINITY_MAX)
  /// The largest size accepted for any of them (2^24, as Cilium's table limit): beyond
  /// that a map costs gigabytes of kernel memory.
  public static let maximum = 1 << 24

  public init(
    lbServices: Int = defaultLBServices, lbBackends: Int = defaultLBBackends,
    conntrack: Int = defaultConntrack, affinity: Int = defaultAffinity
  ) {
    self.lbServices = lbServices
    self.lbBackends = lbBackends
    self.conntrack = conntrack
    self.affinity = affinity
  }

  /// The flag and the map of each size, in the order they are checked.
  public static let flags: [(flag: String, map: String)] = [
    ("--lb-services-max", JUNCTION_MAP_LB4_SERVICES),
    ("--lb-backends-max", JUNCTION_MAP_LB4_BACKENDS),
    ("--conntrack-max", JUNCTION_MAP_CT4), ("--affinity-max", JUNCTION_MAP_LB4_AFFINITY),
  ]

  /// Each flag's IPv6 twin, sized alike: a flag sizes its table for both families (as
  /// Cilium's bpf-ct-global-tcp-max sizes its CT4 and CT6 maps alike), in `flags`' order.
  public static let ipv6Twins: [String] = [
    JUNCTION_MAP_LB6_SERVICES, JUNCTION_MAP_LB6_BACKENDS, JUNCTION_MAP_CT6,
    JUNCTION_MAP_LB6_AFFINITY,
  ]

  /// Each flag's own (IPv4) map, its name and the size asked for it: the maps whose pinned
  /// size an operator's change is checked against.
  public var byMap: [(flag: String, map: String, maxEntries: Int)] {
    zip(Self.flags, [lbServices, lbBackends, conntrack, affinity]).map { ($0.flag, $0.map, $1) }
  }

  /// Every map the sizes apply to, both families': what an object is sized with before it
  /// is loaded.
  public var allMaps: [(flag: String, map: String, maxEntries: Int)] {
    byMap + zip(byMap, Self.ipv6Twins).map { ($0.flag, $1, $0.maxEntries) }
  }

  /// The size asked for map `name` (either family), or nil for a map the agent does not size.
  public func maxEntries(of name: String) -> Int? {
    allMaps.first { $0.map == name }?.maxEntries
  }

  /// The first size out of range, or nil.
  public var problem: String? {
    for (flag, _, size) in byMap where size < 1 || size > Self.maximum {
      return "\(flag) \(size) is out of range: it must be 1 to \(Self.maximum)"
    }
    return nil
  }
}

/// What the datapath reports as flows (--monitor-level) and how many the agent keeps
/// (--flow-buffer-size).
public struct FlowSettings: Equatable, Sendable {
  /// junction_monitor_level (bpf/junction_abi.h) by name.
  public enum Level: String, CaseIterable, Sendable {
    /// Nothing written; GET /v1/flows stays empty.
    case off
    /// A connection's first packet (with its translation), TCP FIN and RST, every drop,
    /// socket LB connects. Established packets write nothing.
    case flows
    /// Every packet the endpoint programs pass, every drop and socket translation: for
    /// debugging, costly at high packet rates.
    case all

    /// The value for jnc_mon_cfg.
    public var code: UInt32 {
      switch self {
      case .off: JUNCTION_MONITOR_OFF.rawValue
      case .flows: JUNCTION_MONITOR_FLOWS.rawValue
      case .all: JUNCTION_MONITOR_ALL.rawValue
      }
    }
  }

  public var level: Level
  public var bufferSize: Int
  /// The level text when it names no level (reported by `problem`).
  public var badLevel: String?

  public static let defaultLevel = Level.flows
  /// Hubble's default ring capacity.
  public static let defaultBufferSize = 4095
  public static let maximumBufferSize = 1 << 20

  public init(level: Level = defaultLevel, bufferSize: Int = defaultBufferSize) {
    self.level = level
    self.bufferSize = bufferSize
  }

  public init(levelText: String, bufferSize: Int) {
    self.init(level: Level(rawValue: levelText) ?? Self.defaultLevel, bufferSize: bufferSize)
    if Level(rawValue: levelText) == nil { badLevel = levelText }
  }

  public var problem: String? {
    if let badLevel {
      return "--monitor-level \"\(badLevel)\" is not one of "
        + Level.allCases.map(\.rawValue).joined(separator: ", ")
    }
    if bufferSize < 1 || bufferSize > Self.maximumBufferSize {
      return
        "--flow-buffer-size \(bufferSize) is out of range: it must be 1 to \(Self.maximumBufferSize)"
    }
    return nil
  }
}

/// `--tc-hook`: the kernel hook Junction's tc programs attach to on pods' veths and on
/// `--devices`. `clsact` (the default) is a clsact qdisc with a cls_bpf filter, on every
/// kernel; `tcx` is the kernel's tcx hook (6.6 and later), which skips the qdisc and
/// classifier layers (about 1.3 µs less per pod connection, bench/veth-prog-cost.sh) but
/// whose every attach and detach waits for an RCU grace period in the kernel (8-16 ms here:
/// about 30 ms more per CNI ADD and DEL, bench/results/cni-latency.md); `auto` takes tcx
/// where the kernel has it. The agent resolves it at start and tells the CNI plugin
/// (GET /v1/config, `tcHook`); re-attaching moves Junction's programs from the other hook.
public enum TCHookChoice: String, Sendable, CaseIterable {
  case auto
  case clsact
  case tcx
}
