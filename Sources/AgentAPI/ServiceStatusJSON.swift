/// GET /v1/services written straight into bytes: the JSON JSONEncoder with `.sortedKeys`
/// gives for `[ServiceStatus]`, byte for byte (AgentAPITests compare them). At 10,000
/// Services × 10 backends JSONEncoder boxed every value first: one listing took the agent's
/// peak from ≈ 145 to 198 MiB (bench/results/agent-memory.md); this writes the ≈ 10 MB body
/// and nothing else. A field added to ServiceStatus must be added here, in sorted place.
extension ServiceStatus {
  /// The JSON array of `statuses`, followed by "\n" as the API's bodies are.
  public static func jsonArray(_ statuses: [ServiceStatus]) -> [UInt8] {
    jsonArray(
      statuses, frontends: statuses.count,
      backends: statuses.reduce(0) { $0 + $1.backends.count })
  }

  /// The same from statuses made one at a time (a lazy map), for a caller that knows how many
  /// `frontends` and `backends` they hold: the agent's listing never has all 10,000 statuses
  /// and their 100,000 backend strings alive at once, only the body they are written into.
  public static func jsonArray(
    _ statuses: some Sequence<ServiceStatus>, frontends: Int, backends: Int
  ) -> [UInt8] {
    var w = SortedKeyJSONWriter()
    // ≈ 100 bytes per backend and 250 per frontend: one allocation for most listings.
    w.out.reserveCapacity(2 + 250 * frontends + 100 * backends)
    w.openArray()
    for status in statuses {
      w.element()
      w.status(status)
    }
    w.closeArray()
    w.out.append(UInt8(ascii: "\n"))
    return w.out
  }
}

extension SortedKeyJSONWriter {
  fileprivate mutating func status(_ status: ServiceStatus) {
    open()
    number("affinityTimeout", status.affinityTimeout)
    string("algorithm", status.algorithm)
    key("backends")
    openArray()
    for backend in status.backends {
      element()
      open()
      string("address", backend.address)
      number("id", backend.id)
      bool("local", backend.local)
      string("state", backend.state)
      close()
    }
    closeArray()
    string("frontend", status.frontend)
    number("id", status.id)
    string("mode", status.mode)
    string("portName", status.portName)
    number("proxyPort", status.proxyPort)
    string("service", status.service)
    string("trafficPolicy", status.trafficPolicy)
    string("type", status.type)
    close()
  }
}
