import CJunctionSys

/// Hands memory the agent freed back to the system.
///
/// glibc keeps freed memory in its arenas, one per thread that allocated, and returns little
/// of it by itself: after a burst of transient buffers (the initial sync's LIST pages and
/// journal record, a compaction's snapshot) the resident size would stay at the burst's
/// peak. `malloc_trim(0)` releases the free pages of every arena.
enum FreedMemory {
  static func release() {
    _ = junction_malloc_trim()
  }

  /// Set once at start. glibc's mmap threshold starts at 128 KiB and rises to the size of
  /// each mmapped block freed (up to 32 MiB): after the first big apply freed its 13 MB
  /// buffers, the next ones came from the arenas, between long-lived objects, and their
  /// holes stayed resident after `malloc_trim`. Fixed at 256 KiB, 10,000 Services × 10
  /// settled 23 MiB lower and peaked 20 MiB lower (bench/results/agent-memory.md).
  static func configure() {
    junction_malloc_fix_mmap_threshold(256 * 1024)
  }
}
