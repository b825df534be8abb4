import Dispatch
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

/// Until the datapath half (ServiceManager accepting redirects, branch envoy-dp) is merged,
/// the redirects are only logged: Envoy serves on its listeners, Service traffic stays on BPF.
struct LoggedProxyRedirects: ProxyRedirectTarget {
  let logger: Logger

  func setProxyRedirects(_ redirects: [ProxyRedirect]) async {
    logger.info(
      "proxy redirects (not programmed: the datapath half is not merged)",
      metadata: ["redirects": "\(redirects.map(\.description))"])
  }
}

/// Feeds the ProxyManager from the node's resources and planned backends. Updates run on one
/// queue, off the ServiceManager actor (validation runs `envoy --mode validate`), and are
/// coalesced: while one runs, only the newest waiting input is kept. L4 never waits on it.
final class ProxyWiring: Sendable {
  let manager: ProxyManager
  private let queue = DispatchQueue(label: "junction.proxy")
  private let pending = Mutex<(inputs: L7Inputs?, scheduled: Bool)>((nil, false))
  /// Whether the last inputs had any L7 resource (an empty update is still sent once, to
  /// remove what the last config served).
  private let hadL7 = Atomic<Bool>(false)

  init(manager: ProxyManager) { self.manager = manager }

  /// Called by the ServiceManager after every committed change.
  func resourcesChanged(_ resources: ResourceSet, frontends: some Collection<ServiceFrontend>) {
    let configs = resources.envoyConfigs
    let ingresses = resources.ingresses
    let any = !configs.isEmpty || !ingresses.isEmpty
    guard any || hadL7.exchange(false, ordering: .relaxed) else { return }
    if any { hadL7.store(true, ordering: .relaxed) }
    let inputs = L7Inputs(
      envoyConfigs: configs, ingresses: ingresses, secrets: resources.tlsSecrets,
      backends: any ? ServiceEndpoints.backendSets(frontends) : [])
    let schedule = pending.withLock { state -> Bool in
      state.inputs = inputs
      if state.scheduled { return false }
      state.scheduled = true
      return true
    }
    guard schedule else { return }
    queue.async { [self] in
      while let next = pending.withLock({ state -> L7Inputs? in
        let value = state.inputs
        state.inputs = nil
        if value == nil { state.scheduled = false }
        return value
      }) {
        manager.update(next)
      }
    }
  }
}
