import KubernetesClient
import Logging
import ProxyManager
import ServiceCore

/// The write side of Ingress where an API server is followed (IngressPublishing plans the
/// writes): creates `junction-ingress-<name>` in the API and copies its LB address into the
/// Ingress's status. Runs apart from the datapath and the watches: `update` only stores the
/// newest resources and wakes the loop; a failed write is logged and the whole plan is
/// retried from the newest resources after a backoff (1 s doubling to 30 s).
actor IngressPublisher {
  private let writer: any APIWriter
  private let logger: Logger
  /// Whether the follower has synced: before that the resources are the stored state, which
  /// may name Ingresses deleted while the agent was down.
  private let isReady: @Sendable () async -> Bool
  private var latest: ResourceSet?
  private var running = false
  private var failures = 0

  init(writer: any APIWriter, logger: Logger, isReady: @escaping @Sendable () async -> Bool) {
    self.writer = writer
    self.logger = logger
    self.isReady = isReady
  }

  nonisolated func update(_ resources: ResourceSet) {
    Task { await self.store(resources) }
  }

  private func store(_ resources: ResourceSet) {
    latest = resources
    guard !running else { return }
    running = true
    Task { await self.loop() }
  }

  private func loop() async {
    while let resources = latest {
      latest = nil
      guard await isReady() else {
        // Synced soon; the sync's commit calls `update` again, but keep these meanwhile.
        if latest == nil { latest = resources }
        try? await Task.sleep(for: .milliseconds(200))
        continue
      }
      let actions = IngressPublishing.plan(
        ingresses: resources.ingresses, services: resources.services)
      if await perform(actions) {
        failures = 0
      } else {
        failures += 1
        let delay = min(30, 1 << min(failures - 1, 5))
        logger.info("Ingress writes to the API: retrying in \(delay) s")
        try? await Task.sleep(for: .seconds(delay))
        if latest == nil { latest = resources }
      }
    }
    running = false
  }

  /// Every action is tried; false when one failed.
  private func perform(_ actions: [IngressPublishing.Action]) async -> Bool {
    var ok = true
    for action in actions {
      do {
        switch action {
        case .createService(let namespace, let name, let object):
          let outcome = try await writer.create(
            APIResource.services, namespace: namespace, object: object)
          if outcome == .created { logger.info("created Service \(namespace)/\(name)") }
        case .patchIngressStatus(let namespace, let name, let patch):
          try await writer.mergePatch(
            APIResource.ingresses, namespace: namespace, name: name, patch: patch, status: true)
          logger.info("wrote the status of Ingress \(namespace)/\(name)")
        }
      } catch {
        ok = false
        logger.error("Ingress write to the API failed: \(error)")
      }
    }
    return ok
  }
}
