import CNIKit
import ServiceCore

/// The synthetic cluster every benchmark uses, so the BPF maps, the agent's YAML and the
/// iptables/nft rule files (bench/lbrules.py, which restates these formulas) describe the
/// same services: service i (0-based) is bench/svc-i, ClusterIP 10.96.0.0 + i + 1, port
/// 80/TCP named "http", targetPort 8080; its backend j is pod 10.128.0.0 + i × B + j + 1
/// on port 8080. The one-backend change replaces service 0's first backend by 10.200.0.1.
/// The IPv6 layout (per-packet --families) is the same with ClusterIP fd00:96:: + i + 1 and
/// backends fd00:128:: + i × B + j + 1 (bench/lbprog.py's --family ipv6).
struct ServiceLayout {
  enum Family: String, CaseIterable {
    case ipv4, ipv6
  }

  let services: Int
  let backendsPerService: Int
  var family = Family.ipv4
  /// The YAML's endpoints also carry what the EndpointSlice controller writes in a cluster:
  /// `nodeName` and a `targetRef` to their Pod (`--pod-refs 1`; without, only addresses and
  /// conditions).
  var podRefs = false

  static let changedBackend: UInt32 = 0x0AC8_0001  // 10.200.0.1

  /// The layout every command takes from `--services` (default 10,000) and `--backends`
  /// (per Service, default 10).
  init(_ options: Options) throws {
    self.init(
      services: try options.int("services", default: 10000),
      backendsPerService: try options.int("backends", default: 10))
    podRefs = try options.int("pod-refs", default: 0) != 0
  }

  init(services: Int, backendsPerService: Int, family: Family = .ipv4) {
    self.services = services
    self.backendsPerService = backendsPerService
    self.family = family
  }

  func vip(_ service: Int) -> UInt32 { 0x0A60_0000 + UInt32(service) + 1 }

  func backend(_ service: Int, _ index: Int, variant: Int = 0) -> UInt32 {
    if variant == 1, service == 0, index == 0 { return Self.changedBackend }
    return 0x0A80_0000 + UInt32(service * backendsPerService + index) + 1
  }

  /// Service i's ClusterIP in this layout's family, network-order bytes.
  func vipAddress(_ service: Int) -> [UInt8] {
    family == .ipv6 ? ipv6(0xfd00_0096, UInt32(service) + 1) : Frames.bytes(vip(service))
  }

  /// Backend j of service i in this layout's family, network-order bytes.
  func backendAddress(_ service: Int, _ index: Int) -> [UInt8] {
    family == .ipv6
      ? ipv6(0xfd00_0128, UInt32(service * backendsPerService + index) + 1)
      : Frames.bytes(backend(service, index))
  }

  /// `prefix`::`low`: the first 32 bits and the last 32 bits of an IPv6 address.
  private func ipv6(_ prefix: UInt32, _ low: UInt32) -> [UInt8] {
    Frames.bytes(prefix) + [UInt8](repeating: 0, count: 8) + Frames.bytes(low)
  }

  /// The desired state the planner would produce for these services (ids as its allocator
  /// hands them out to a fresh node: rev-NAT id i + 1, backend ids in order), without the
  /// YAML round trip: the per-packet benchmark only needs the maps as the agent fills them.
  func desiredState() -> DesiredState {
    var frontends: [ServiceFrontend] = []
    frontends.reserveCapacity(services)
    for service in 0..<services {
      let backends = (0..<backendsPerService).map { index in
        ServiceBackend(
          id: UInt32(service * backendsPerService + index) + 1,
          key: BackendKey(
            address: IPAddress(bytes: backendAddress(service, index))!, port: 8080, proto: .tcp),
          state: .active)
      }
      frontends.append(
        ServiceFrontend(
          id: UInt16(service + 1),
          key: FrontendKey(
            address: IPAddress(bytes: vipAddress(service))!, port: 80, proto: .tcp),
          type: .clusterIP, service: NamespacedName(namespace: "bench", name: "svc-\(service)"),
          portName: "http", backends: backends))
    }
    return DesiredState(frontends: frontends)
  }

  /// Every Service and its EndpointSlice, as `kubectl get -o yaml` would list them.
  func fullYAML() -> String {
    var text = ""
    text.reserveCapacity(services * (400 + 70 * backendsPerService))
    for service in 0..<services {
      text += serviceYAML(service)
      text += sliceYAML(service, variant: 0)
    }
    return text
  }

  /// Service 0's EndpointSlice alone, with its first backend replaced (variant 1) or back
  /// to the original (variant 0): what an EndpointSlice watch would deliver for one pod.
  func changedSliceYAML(variant: Int) -> String { sliceYAML(0, variant: variant) }

  private func serviceYAML(_ service: Int) -> String {
    """
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: svc-\(service), namespace: bench}
    spec:
      clusterIP: \(dotted(vip(service)))
      ports:
      - {name: http, port: 80, protocol: TCP, targetPort: 8080}

    """
  }

  private func sliceYAML(_ service: Int, variant: Int) -> String {
    var text = """
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: svc-\(service)-1
        namespace: bench
        labels: {kubernetes.io/service-name: svc-\(service)}
      addressType: IPv4
      ports:
      - {name: http, port: 8080, protocol: TCP}
      endpoints:

      """
    for index in 0..<backendsPerService {
      text += "- addresses: [\"\(dotted(backend(service, index, variant: variant)))\"]\n"
      text += "  conditions: {ready: true, serving: true, terminating: false}\n"
      if podRefs {
        // A Deployment's pod name (hash, random suffix) and a uid, as long as real ones.
        let pod = service * backendsPerService + index
        let suffix = String(String(pod, radix: 36).reversed()).padding(toLength: 5, with: "0")
        let uid = String(pod, radix: 16).leftPadded(toLength: 12)
        text += "  nodeName: node-\(pod % 50)\n"
        text += "  targetRef: {kind: Pod, name: svc-\(service)-5f7d8c9b4-\(suffix), "
        text += "namespace: bench, uid: 3f2a9c1e-7b4d-4e8a-9c6f-\(uid)}\n"
      }
    }
    return text
  }
}

func dotted(_ address: UInt32) -> String {
  "\(address >> 24).\(address >> 16 & 0xff).\(address >> 8 & 0xff).\(address & 0xff)"
}

/// An address's text, either family.
func text(_ bytes: [UInt8]) -> String { IPAddress(bytes: bytes)?.description ?? "\(bytes)" }

extension String {
  /// Cut or padded with `pad` at the end to `length` characters.
  fileprivate func padding(toLength length: Int, with pad: Character) -> String {
    count >= length ? String(prefix(length)) : self + String(repeating: pad, count: length - count)
  }

  /// Padded with zeros in front to `length` characters.
  fileprivate func leftPadded(toLength length: Int) -> String {
    count >= length ? self : String(repeating: "0", count: length - count) + self
  }
}
