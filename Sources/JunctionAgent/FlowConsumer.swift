import BPFKit
import FlowPipeline
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Reads the datapath's flow events (the jnc_events ring) on a thread of its own and
/// appends them to the flow buffer, on a timer: the datapath writes without waking us
/// (bpf/lib/events.h: a wakeup per event cost a first packet ~1 µs), except once when a
/// burst takes the ring past half full, so each turn waits up to `tick` (epoll, ended early
/// by that wakeup) and then drains whatever the ring holds. 20 ms keeps `observe -f` prompt
/// and, at 1 MiB (~14,500 events), lets the ring take ~700,000 events/s between ticks; it
/// also bounds how long stopping takes. What one turn read is appended as one batch. The thread
/// only decodes and appends (no lookups): names are given when the flows are read (GET
/// /v1/flows).
/// As a service of the agent's group it runs until graceful shutdown, then ends every
/// follower's stream (so no streaming answer holds the shutdown up) and stops the thread.
final class FlowConsumer: Service, @unchecked Sendable {
  let buffer: FlowBuffer
  private let ring: BPFRingBuffer
  private let stopping = Atomic<Bool>(false)
  private let logger: Logger
  private var thread = pthread_t()

  /// The records of the poll in progress: appended to the buffer in one batch once the
  /// poll has taken all the ring held (one lock and one wakeup per follower per batch, not
  /// per record). Only the polling thread touches it.
  private let batch = RecordBatch()

  /// How long a turn waits for the half-full wakeup before draining anyway.
  static let tickMilliseconds: Int32 = 20

  init(events: BPFMap, buffer: FlowBuffer, logger: Logger) throws {
    self.buffer = buffer
    self.logger = logger
    // A record that is neither a junction_flow_event nor a junction_flow_event6 (another
    // ABI's datapath) is skipped.
    ring = try BPFRingBuffer(map: events) { [batch] bytes in
      if let record = FlowRecord(record: bytes, monotonicToWall: batch.monotonicToWall) {
        batch.records.append(record)
      }
    }
  }

  func run() async throws {
    let box = Unmanaged.passRetained(self)
    let created = pthread_create(
      &thread, nil,
      { context in
        let consumer = Unmanaged<FlowConsumer>.fromOpaque(context!).takeRetainedValue()
        consumer.poll()
        return nil
      }, box.toOpaque())
    guard created == 0 else {
      box.release()
      logger.error(
        "cannot start the flow consumer",
        metadata: ["error": "\(String(cString: strerror(created)))"])
      return
    }
    try? await gracefulShutdown()
    stopping.store(true, ordering: .releasing)
    buffer.stopAllFollowers()
    pthread_join(thread, nil)
  }

  private func poll() {
    while !stopping.load(ordering: .acquiring) {
      do {
        batch.monotonicToWall = monotonicToWall()
        try ring.poll(timeoutMilliseconds: Self.tickMilliseconds)
        try ring.consume()
        buffer.append(contentsOf: batch.records)
        batch.records.removeAll(keepingCapacity: true)
      } catch {
        logger.error("flow events: polling failed; flows stop", metadata: ["error": "\(error)"])
        return
      }
    }
  }
}

/// The polling thread's scratch: the records read so far in this poll, and the clock offset
/// read once per poll.
private final class RecordBatch: @unchecked Sendable {
  var records: [FlowRecord] = []
  var monotonicToWall: Int64 = 0
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC in nanoseconds: what turns the datapath's
/// bpf_ktime_get_ns stamps into wall-clock times.
private func monotonicToWall() -> Int64 {
  var real = timespec()
  var monotonic = timespec()
  clock_gettime(CLOCK_REALTIME, &real)
  clock_gettime(CLOCK_MONOTONIC, &monotonic)
  return (Int64(real.tv_sec) - Int64(monotonic.tv_sec)) * 1_000_000_000
    + Int64(real.tv_nsec) - Int64(monotonic.tv_nsec)
}
