import AgentCore
import DatapathABI

extension FlowRecord {
  /// One HTTP exchange through the node's Envoy as two L7 records, Hubble-style: the request
  /// (at its start) and the response (at start + duration, with the status and latency).
  /// `client` is Envoy's downstream peer (the real client under TPROXY-style redirects),
  /// `server` its downstream local address (the Service address the client dialled), both
  /// "a.b.c.d:port"; anything else (IPv6, "-") leaves the address 0.
  public static func httpExchange(
    startNanoseconds: Int64, durationMilliseconds: Int, method: String, url: String,
    protocolName: String, status: Int, client: String?, server: String?
  ) -> [FlowRecord] {
    let (source, sourcePort) = endpoint(client)
    let (destination, destinationPort) = endpoint(server)
    let latency = Int64(durationMilliseconds) * 1_000_000
    var request = FlowRecord(
      time: startNanoseconds, kind: .l7, point: 0, verdict: 1, proto: 6, source: source,
      sourcePort: sourcePort, destination: destination, destinationPort: destinationPort)
    // Both are shown from the client's side (client -> Service), as Hubble shows L7 flows.
    request.flags = UInt8(JUNCTION_FLOW_F_REPLY_KNOWN)
    request.http = HTTP(method: method, url: url, protocolName: protocolName, isResponse: false)
    var response = request
    response.time = startNanoseconds + latency
    response.http = HTTP(
      method: method, url: url, protocolName: protocolName, code: status,
      latencyNanoseconds: latency, isResponse: true)
    return [request, response]
  }

  /// "10.0.0.5:8080" → host-order address and port.
  static func endpoint(_ text: String?) -> (UInt32, UInt16) {
    guard let text, let colon = text.lastIndex(of: ":"),
      let port = UInt16(text[text.index(after: colon)...])
    else { return (0, 0) }
    let octets = text[..<colon].split(separator: ".").compactMap { UInt8($0) }
    guard octets.count == 4 else { return (0, 0) }
    return (octets.reduce(0) { $0 << 8 | UInt32($1) }, port)
  }
}
