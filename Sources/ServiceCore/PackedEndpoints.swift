import CNIKit

/// An EndpointSlice's endpoints as the node keeps them: one byte string, unpacked into
/// `Endpoint`s only while a Service is planned (or listed).
///
/// Why: the node holds every slice of every Service for as long as it exists, and as
/// `Endpoint` values each endpoint took a 112-byte slot (two optional strings, two arrays, an
/// optional `targetRef` of three strings) plus an array and an address buffer of its own:
/// ≈ 190 bytes, 19 MiB at 10,000 Services × 10 endpoints, a fifth of the agent's heap
/// (bench/results/agent-memory.md). Packed, an endpoint is its address and the few bytes of
/// what it names (≈ 20 bytes without a targetRef).
///
/// The encoding is private to the process (never stored or sent) and deterministic, so two
/// slices are equal when their packed bytes are (byte for byte: a name spelled with other but
/// canonically equivalent Unicode counts as a change, which costs only a re-plan).
struct PackedEndpoints: Hashable, Sendable {
  private(set) var bytes: [UInt8]

  /// Flag bits of an endpoint's first byte.
  private enum Flag {
    static let ready: UInt8 = 1 << 0
    static let serving: UInt8 = 1 << 1
    static let terminating: UInt8 = 1 << 2
    static let nodeName: UInt8 = 1 << 3
    static let zone: UInt8 = 1 << 4
    static let target: UInt8 = 1 << 5
  }

  init(_ endpoints: [Endpoint]) {
    var out: [UInt8] = []
    Self.appendCount(endpoints.count, to: &out)
    for endpoint in endpoints {
      var flags: UInt8 = 0
      if endpoint.ready { flags |= Flag.ready }
      if endpoint.serving { flags |= Flag.serving }
      if endpoint.terminating { flags |= Flag.terminating }
      if endpoint.nodeName != nil { flags |= Flag.nodeName }
      if endpoint.zone != nil { flags |= Flag.zone }
      if endpoint.target != nil { flags |= Flag.target }
      out.append(flags)
      Self.appendCount(endpoint.addresses.count, to: &out)
      for address in endpoint.addresses {
        out.append(UInt8(address.bytes.count))
        out.append(contentsOf: address.bytes)
      }
      if let nodeName = endpoint.nodeName { Self.appendString(nodeName, to: &out) }
      if let zone = endpoint.zone { Self.appendString(zone, to: &out) }
      for list in [endpoint.hintZones, endpoint.hintNodes] {
        Self.appendCount(list.count, to: &out)
        for item in list { Self.appendString(item, to: &out) }
      }
      if let target = endpoint.target {
        for text in [target.kind, target.namespace, target.name] {
          Self.appendString(text, to: &out)
        }
      }
    }
    // Exact-size: the buffer grew by doubling while it was written.
    bytes = [UInt8](unsafeUninitializedCapacity: out.count) { buffer, count in
      count = buffer.initialize(fromContentsOf: out)
    }
  }

  var endpoints: [Endpoint] {
    var reader = Reader(bytes: bytes)
    let count = reader.count()
    var endpoints: [Endpoint] = []
    endpoints.reserveCapacity(count)
    for _ in 0..<count {
      let flags = reader.byte()
      var addresses: [IPAddress] = []
      let addressCount = reader.count()
      addresses.reserveCapacity(addressCount)
      for _ in 0..<addressCount {
        let length = Int(reader.byte())
        // Packed from valid addresses only, so this cannot fail.
        addresses.append(IPAddress(bytes: reader.bytes(length))!)
      }
      let nodeName = flags & Flag.nodeName != 0 ? reader.string() : nil
      let zone = flags & Flag.zone != 0 ? reader.string() : nil
      let hintZones = (0..<reader.count()).map { _ in reader.string() }
      let hintNodes = (0..<reader.count()).map { _ in reader.string() }
      let target =
        flags & Flag.target != 0
        ? EndpointTarget(kind: reader.string(), namespace: reader.string(), name: reader.string())
        : nil
      endpoints.append(
        Endpoint(
          addresses: addresses, ready: flags & Flag.ready != 0,
          serving: flags & Flag.serving != 0, terminating: flags & Flag.terminating != 0,
          nodeName: nodeName, zone: zone, hintZones: hintZones, hintNodes: hintNodes,
          target: target))
    }
    return endpoints
  }

  /// LEB128, as counts and lengths are mostly below 128: one byte.
  private static func appendCount(_ value: Int, to out: inout [UInt8]) {
    var rest = UInt(value)
    while rest >= 0x80 {
      out.append(UInt8(rest & 0x7F) | 0x80)
      rest >>= 7
    }
    out.append(UInt8(rest))
  }

  private static func appendString(_ text: String, to out: inout [UInt8]) {
    appendCount(text.utf8.count, to: &out)
    out.append(contentsOf: text.utf8)
  }

  /// Reads back what `init` wrote (and only that: it traps on anything else).
  private struct Reader {
    let bytes: [UInt8]
    var offset = 0

    mutating func byte() -> UInt8 {
      defer { offset += 1 }
      return bytes[offset]
    }

    mutating func count() -> Int {
      var value: UInt = 0
      var shift: UInt = 0
      while true {
        let next = byte()
        value |= UInt(next & 0x7F) << shift
        if next < 0x80 { return Int(value) }
        shift += 7
      }
    }

    mutating func bytes(_ length: Int) -> [UInt8] {
      defer { offset += length }
      return Array(bytes[offset..<offset + length])
    }

    mutating func string() -> String {
      let length = count()
      defer { offset += length }
      return String(decoding: bytes[offset..<offset + length], as: UTF8.self)
    }
  }
}
