import CZlib
import Synchronization

/// Deflates the documents the agent keeps (`StoredDocument`) and inflates them when they are
/// written to the journal or a snapshot, or read back.
///
/// Why: the agent keeps every object's document only to write it to disk again, and as JSON
/// they were the largest single part of its resident heap (14.6 MiB of 75 at 10,000 Services
/// × 10 backends, bench/results/agent-memory.md). A document alone is too small for deflate
/// to find much to reuse (≈ 3×), so each is deflated against a preset dictionary of what
/// Kubernetes objects are made of (the field names in the order `DocumentWriter` sorts them,
/// the usual values): 10× and more on the benchmark's objects.
///
/// The settings are part of what is kept in memory only, never on disk: the journal and the
/// snapshots hold the inflated JSON, so they can change freely between versions.
enum DocumentCompression {
  /// Raw deflate (no zlib header or checksum: the bytes never leave the process) with a
  /// 4 KiB window, enough for a document and the dictionary, and little state per stream.
  private static let windowBits: Int32 = -12
  private static let memoryLevel: Int32 = 5
  /// The fastest level: an apply of 10,000 Services × 10 deflates 14 MB.
  private static let level: Int32 = 1

  /// Compact JSON fragments of Services, EndpointSlices and their metadata, most common
  /// last (deflate reaches the end of the window most cheaply). At most the window's size.
  static let dictionary: [UInt8] = Array(
    (#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":""},"#
      + #""creationTimestamp":"2026-01-01T00:00:00Z","generation":1,"managedFields":[{"#
      + #""apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"#
      + #"".":{}}},"f:spec":{"f:ports":{}}},"manager":"kube-controller-manager","#
      + #""operation":"Update","time":"2026-01-01T00:00:00Z"}],"resourceVersion":"1","#
      + #""uid":"00000000-0000-0000-0000-000000000000"},"status":{"loadBalancer":{}}}"#
      + #"{"apiVersion":"v1","kind":"Service","metadata":{"labels":{"app":"","#
      + #""app.kubernetes.io/name":""},"name":"","namespace":"default"},"spec":{"#
      + #""clusterIP":"10.96.0.1","clusterIPs":["10.96.0.1"],"externalTrafficPolicy":"Cluster","#
      + #""internalTrafficPolicy":"Cluster","ipFamilies":["IPv4"],"#
      + #""ipFamilyPolicy":"SingleStack","ports":[{"name":"http","nodePort":30080,"port":80,"#
      + #""protocol":"TCP","targetPort":8080}],"selector":{"app":""},"#
      + #""sessionAffinity":"None","type":"ClusterIP"}}"#
      + #"{"addressType":"IPv4","apiVersion":"discovery.k8s.io/v1","endpoints":[{"#
      + #""addresses":["10.0.0.1"],"conditions":{"ready":true,"serving":true,"#
      + #""terminating":false},"nodeName":"node-1","targetRef":{"kind":"Pod","name":"","#
      + #""namespace":"default","uid":""},"zone":""}],"kind":"EndpointSlice","metadata":{"#
      + #""generateName":"","labels":{"#
      + #""endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","#
      + #""kubernetes.io/service-name":""},"name":"","namespace":"default","#
      + #""ownerReferences":[{"apiVersion":"v1","blockOwnerDeletion":true,"controller":true,"#
      + #""kind":"Service","name":"","uid":""}]},"ports":[{"name":"http","port":8080,"#
      + #""protocol":"TCP"}]}"#
      + #"{"addresses":["10.128.0.1"],"conditions":{"ready":true,"serving":true,"#
      + #""terminating":false}},{"addresses":["10.128.0.2"],"conditions":{"ready":true,"#
      + #""serving":true,"terminating":false}}"#)
      .utf8)

  private static let deflaters = StreamPool<Deflater>()
  private static let inflaters = StreamPool<Inflater>()

  /// `json` deflated, exact-size; nil when that is not smaller (or zlib fails).
  static func deflate(_ json: [UInt8]) -> [UInt8]? {
    guard let deflater = deflaters.take({ Deflater() }) else { return nil }
    defer { deflaters.give(deflater) }
    return deflater.deflate(json)
  }

  /// Appends the `size` bytes that `compressed` deflates; false (and `out` as it was) if
  /// they cannot be inflated, which only a bug here can cause.
  static func inflate(_ compressed: [UInt8], size: Int, appendingTo out: inout [UInt8]) -> Bool {
    guard let inflater = inflaters.take({ Inflater() }) else { return false }
    defer { inflaters.give(inflater) }
    return inflater.inflate(compressed, size: size, appendingTo: &out)
  }

  /// zlib streams are reset for each document (setting one up costs more than deflating a
  /// small document): idle ones wait here, a few at most. A stream is used by one thread at
  /// a time (taken out of the pool), hence the streams' `@unchecked Sendable`.
  private final class StreamPool<Stream: AnyObject & Sendable>: Sendable {
    private let idle = Mutex<[Stream]>([])

    func take(_ make: () -> Stream?) -> Stream? {
      idle.withLock { $0.popLast() } ?? make()
    }

    func give(_ stream: Stream) {
      idle.withLock { if $0.count < 4 { $0.append(stream) } }
    }
  }

  private final class Deflater: @unchecked Sendable {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var scratch: [UInt8] = []

    init?() {
      stream.initialize(to: z_stream())
      guard junction_deflate_init(stream, level, windowBits, memoryLevel) == Z_OK else {
        stream.deallocate()
        return nil
      }
    }

    deinit {
      deflateEnd(stream)
      stream.deallocate()
    }

    func deflate(_ json: [UInt8]) -> [UInt8]? {
      guard deflateReset(stream) == Z_OK,
        dictionary.withUnsafeBufferPointer({
          deflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
        }) == Z_OK
      else { return nil }
      let bound = Int(deflateBound(stream, uLong(json.count)))
      if scratch.count < bound { scratch = [UInt8](repeating: 0, count: bound) }
      let produced = json.withUnsafeBufferPointer { input in
        scratch.withUnsafeMutableBufferPointer { output -> Int? in
          stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
          stream.pointee.avail_in = uInt(input.count)
          stream.pointee.next_out = output.baseAddress
          stream.pointee.avail_out = uInt(output.count)
          guard CZlib.deflate(stream, Z_FINISH) == Z_STREAM_END else { return nil }
          return output.count - Int(stream.pointee.avail_out)
        }
      }
      guard let produced, produced < json.count else { return nil }
      return Array(scratch[..<produced])
    }
  }

  private final class Inflater: @unchecked Sendable {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init?() {
      stream.initialize(to: z_stream())
      guard junction_inflate_init(stream, windowBits) == Z_OK else {
        stream.deallocate()
        return nil
      }
    }

    deinit {
      inflateEnd(stream)
      stream.deallocate()
    }

    func inflate(_ compressed: [UInt8], size: Int, appendingTo out: inout [UInt8]) -> Bool {
      if size == 0 { return compressed.isEmpty }
      // A raw stream takes its dictionary before the first byte, after each reset.
      guard inflateReset(stream) == Z_OK,
        dictionary.withUnsafeBufferPointer({
          inflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
        }) == Z_OK
      else { return false }
      let start = out.count
      out.append(contentsOf: repeatElement(0, count: size))
      let complete = compressed.withUnsafeBufferPointer { input in
        out.withUnsafeMutableBufferPointer { whole -> Bool in
          stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
          stream.pointee.avail_in = uInt(input.count)
          stream.pointee.next_out = whole.baseAddress! + start
          stream.pointee.avail_out = uInt(size)
          return CZlib.inflate(stream, Z_FINISH) == Z_STREAM_END && stream.pointee.avail_out == 0
        }
      }
      if !complete { out.removeSubrange(start...) }
      return complete
    }
  }
}
