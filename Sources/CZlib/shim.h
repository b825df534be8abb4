// zlib (Debian's zlib1g-dev), for the agent's compressed copies of the documents it stores
// (ServiceCore/DocumentCompression.swift). deflateInit2/inflateInit2 are macros that Swift
// cannot call: wrapped here.
#pragma once
#include <zlib.h>

static inline int junction_deflate_init(z_stream *stream, int level, int window_bits,
                                        int mem_level) {
  return deflateInit2(stream, level, Z_DEFLATED, window_bits, mem_level, Z_DEFAULT_STRATEGY);
}

static inline int junction_inflate_init(z_stream *stream, int window_bits) {
  return inflateInit2(stream, window_bits);
}
