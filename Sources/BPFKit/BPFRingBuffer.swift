import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// The reading side of a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF) through libbpf's
/// `ring_buffer__new` / `ring_buffer__poll`: each record the programs submitted is handed to
/// `onRecord` as raw bytes, valid only during the call (copy what you keep), in the order the
/// kernel committed them. Not thread-safe: one thread polls (libbpf's rule too).
public final class BPFRingBuffer: @unchecked Sendable {
  /// Called once per record, with the record's bytes (a view into the ring).
  public typealias RecordHandler = (UnsafeRawBufferPointer) -> Void

  private final class Context {
    let onRecord: RecordHandler
    init(_ onRecord: @escaping RecordHandler) { self.onRecord = onRecord }
  }

  private let ring: OpaquePointer
  private let context: Unmanaged<Context>
  /// The map is kept open as long as the ring is read from it.
  public let map: BPFMap

  public init(map: BPFMap, onRecord: @escaping RecordHandler) throws(BPFError) {
    let context = Unmanaged.passRetained(Context(onRecord))
    let callback: ring_buffer_sample_fn = { context, data, size in
      guard let context, let data else { return 0 }
      let handler = Unmanaged<Context>.fromOpaque(context).takeUnretainedValue()
      handler.onRecord(UnsafeRawBufferPointer(start: data, count: Int(size)))
      return 0
    }
    guard let ring = ring_buffer__new(map.fd, callback, context.toOpaque(), nil) else {
      let error = errno
      context.release()
      throw .system("ring_buffer__new \(map.name)", errno: error)
    }
    self.ring = ring
    self.context = context
    self.map = map
  }

  deinit {
    ring_buffer__free(ring)
    context.release()
  }

  /// Waits up to `timeoutMilliseconds` (epoll; -1 forever, 0 not at all) for records and
  /// hands every available one to the handler; returns how many. A signal interrupting the
  /// wait is 0 records, not an error.
  @discardableResult
  public func poll(timeoutMilliseconds: Int32) throws(BPFError) -> Int {
    let result = ring_buffer__poll(ring, timeoutMilliseconds)
    if result == -EINTR { return 0 }
    return Int(try checkLibbpf(result, "ring_buffer__poll \(map.name)"))
  }

  /// Hands every record available now to the handler without waiting; returns how many.
  @discardableResult
  public func consume() throws(BPFError) -> Int {
    Int(try checkLibbpf(ring_buffer__consume(ring), "ring_buffer__consume \(map.name)"))
  }
}
