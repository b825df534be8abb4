#if canImport(Glibc)
  import Glibc
#endif

/// Hands memory the agent freed back to the system.
///
/// glibc keeps freed memory in its arenas, one per thread that allocated, and returns little
/// of it by itself: after a burst of transient buffers (the initial sync's LIST pages and
/// journal record, a compaction's snapshot) the resident size would stay at the burst's
/// peak. `malloc_trim(0)` releases the free pages of every arena.
enum FreedMemory {
  static func release() {
    #if canImport(Glibc)
      // glibc's malloc.h is not part of the Glibc module: look the function up.
      typealias Trim = @convention(c) (Int) -> Int32
      if let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_trim") {
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
      }
    #endif
  }
}
