import Dispatch
import FlowPipeline
import Foundation
import Logging
import ProxyManager
import ServiceCore
import Synchronization

/// Where the L7 side's Service redirects go: the one call point between ProxyManager (which
/// produces `[ProxyRedirect]` from CiliumEnvoyConfigs and Ingresses) and the service side
/// (which flags those frontends for the proxy in the datapath).
protocol ProxyRedirectTarget: Sendable {
  func setProxyRedirects(_ redirects: [ProxyRedirect]) async
}

/// The service side: ServiceManager re-plans the named Services' frontends with their
/// redirects (flagged for the proxy in the datapath) in one change. A failure is logged; the
/// next change of the L7 resources tries again.
struct ServiceManagerRedirects: ProxyRedirectTarget {
  let services: ServiceManager
  let logger: Logger

  func setProxyRedirects(_ redirects: [ProxyRedirect]) async {
    do {
      let notes = try await services.setProxyRedirects(redirects)
      for note in notes { logger.info("\(note)") }
    } catch {
      logger.error("cannot program the proxy redirects: \(error)")
    }
  }
}

/// Calls `target` from the proxy's queue and waits for it, so redirect sets reach the
/// service side in the order ProxyManager produced them.
func orderedRedirectSink(_ target: any ProxyRedirectTarget) -> @Sendable ([ProxyRedirect]) -> Void {
  { redirects in
    let done = DispatchSemaphore(value: 0)
    Task {
      await target.setProxyRedirects(redirects)
      done.signal()
    }
    done.wait()
  }
}

/// Feeds the ProxyManager from the node's resources and planned backends. Updates run on one
/// queue, off the ServiceManager actor (validation runs `envoy --mode validate`), and are
/// coalesced: while one runs, only the newest waiting input is kept. L4 never waits on it.
final class ProxyWiring: Sendable {
  let manager: ProxyManager
  private let queue = DispatchQueue(label: "junction.proxy")
  private let pending = Mutex<(inputs: L7Inputs?, resources: ResourceSet?, scheduled: Bool)>(
    (nil, nil, false))
  /// Whether the last inputs had any L7 resource (an empty update is still sent once, to
  /// remove what the last config served).
  private let hadL7 = Atomic<Bool>(false)

  /// Standalone (no API server followed): applies the generated Services (Ingress →
  /// `junction-ingress-<name>`) to the node's Services: upserts, and removals of keys
  /// generated before.
  let applyGenerated: @Sendable ([ResourceEdit]) -> Void
  private let generated = Mutex<Set<ResourceKey>>([])

  /// Where an API server is followed: the generated Services are created in the API instead
  /// (the followed Service, with the address the LB provider gave it, is what the datapath
  /// serves), and no local duplicate is made.
  let publisher: IngressPublisher?

  init(
    manager: ProxyManager, publisher: IngressPublisher? = nil,
    applyGenerated: @escaping @Sendable ([ResourceEdit]) -> Void
  ) {
    self.manager = manager
    self.publisher = publisher
    self.applyGenerated = applyGenerated
  }

  /// The edits that bring the generated Services to what `inputs` asks for; none when they
  /// are already so (the apply that follows calls back here, and must settle).
  private func generatedEdits(_ inputs: L7Inputs, current: ResourceSet?) -> [ResourceEdit] {
    let decoded = ResourceDecoder.decode(documents: manager.generatedServices(inputs))
    var edits: [ResourceEdit] = []
    var keys: Set<ResourceKey> = []
    for (resource, document) in zip(decoded.resources, decoded.documents) {
      keys.insert(resource.key)
      if current?.objects[resource.key] != resource {
        edits.append(.upsert(resource, document: document))
      }
    }
    let previous = generated.withLock { state in
      defer { state = keys }
      return state
    }
    for key in previous.subtracting(keys).sorted() { edits.append(.remove(key)) }
    return edits
  }

  /// Called by the ServiceManager after every committed change.
  func resourcesChanged(_ resources: ResourceSet, frontends: some Collection<ServiceFrontend>) {
    let configs = resources.envoyConfigs
    let ingresses = resources.ingresses
    let any = !configs.isEmpty || !ingresses.isEmpty
    guard any || hadL7.exchange(false, ordering: .relaxed) else { return }
    if any { hadL7.store(true, ordering: .relaxed) }
    publisher?.update(resources)
    let inputs = L7Inputs(
      envoyConfigs: configs, ingresses: ingresses, secrets: resources.tlsSecrets,
      backends: any ? ServiceEndpoints.backendSets(frontends) : [])
    let schedule = pending.withLock { state -> Bool in
      state.inputs = inputs
      state.resources = resources
      if state.scheduled { return false }
      state.scheduled = true
      return true
    }
    guard schedule else { return }
    queue.async { [self] in
      while let (next, resources) = pending.withLock({ state -> (L7Inputs, ResourceSet?)? in
        guard let value = state.inputs else {
          state.scheduled = false
          return nil
        }
        state.inputs = nil
        return (value, state.resources)
      }) {
        manager.update(next)
        guard publisher == nil else { continue }
        let edits = generatedEdits(next, current: resources)
        if !edits.isEmpty { applyGenerated(edits) }
      }
    }
  }
}

/// Envoy's access log → the flow buffer, polled every `interval` until shutdown: each request
/// becomes an `http-request` and an `http-response` L7 flow (`junctionctl observe --type l7`).
/// Envoy flushes the file every 500 ms (EnvoySupervisor), so flows are at most ~0.75 s late.
struct AccessLogFlows {
  let follower: AccessLogFollower
  let flows: FlowBuffer
  var interval: Duration = .milliseconds(250)

  func run() async {
    while !Task.isCancelled {
      for request in follower.poll() { flows.append(contentsOf: Self.records(request)) }
      try? await Task.sleep(for: interval)
    }
  }

  static func records(_ request: L7Request) -> [FlowRecord] {
    let start = Self.nanoseconds(request.startTime) ?? Int64(Date().timeIntervalSince1970 * 1e9)
    return FlowRecord.httpExchange(
      startNanoseconds: start, durationMilliseconds: request.durationMilliseconds,
      method: request.method, url: request.url, protocolName: request.protocolName ?? "HTTP/1.1",
      status: request.status, client: request.downstreamRemote, server: request.downstreamLocal)
  }

  /// Envoy's %START_TIME% ("2026-12-06T08:00:00.123Z") → Unix nanoseconds.
  static func nanoseconds(_ text: String) -> Int64? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.date(from: text).map { Int64($0.timeIntervalSince1970 * 1e9) }
  }
}
