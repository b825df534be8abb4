#if canImport(Glibc)
  import Glibc
#endif

extension AgentClient {
  /// GET `path` and hand each line of the answer's body (without its "\n") to `onLine` as
  /// it arrives, for NDJSON answers that stream (GET /v1/flows?follow=true), until the
  /// agent ends the body or `onLine` returns false. No receive timeout: a follower waits
  /// as long as it takes. A non-2xx answer throws `.api` with the agent's message.
  public func streamLines(_ path: String, onLine: ([UInt8]) -> Bool) throws(Failure) {
    let fd = try connect()
    defer { close(fd) }
    var forever = timeval(tv_sec: 0, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &forever, socklen_t(MemoryLayout<timeval>.size))
    try send(
      fd,
      Array(
        ("GET \(path) HTTP/1.1\r\nHost: junction-agent\r\nConnection: close\r\n"
          + "Accept: application/x-ndjson\r\n\r\n").utf8))
    var received: [UInt8] = []
    var head: (status: Int, bodyStart: Int, length: Int?)?
    var chunked = false
    var decoder = ChunkedDecoder()
    var lines = LineSplitter()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = recv(fd, &buffer, buffer.count, 0)
      if count < 0 {
        if errno == EINTR { continue }
        throw .io("receive: \(String(cString: strerror(errno)))")
      }
      if count == 0 { break }
      var fresh = Array(buffer[..<count])
      if head == nil {
        received += fresh
        guard let parsed = try HTTPHead.parse(received) else { continue }
        head = parsed
        let headText = String(decoding: received[..<parsed.bodyStart], as: UTF8.self).lowercased()
        chunked = headText.contains("transfer-encoding: chunked")
        fresh = Array(received[parsed.bodyStart...])
        received = []
      }
      guard let head else { continue }
      if !(200..<300).contains(head.status) {
        // An error answer is small JSON with a length: read it whole.
        received += fresh
        continue
      }
      let payload = chunked ? decoder.feed(fresh) : fresh
      for line in lines.feed(payload) where !onLine(line) { return }
      if chunked && decoder.isDone { break }
    }
    guard let head else { throw .closedWithoutAnswer(bytes: received.count) }
    if !(200..<300).contains(head.status) {
      let response = Response(status: head.status, body: received)
      throw .api(status: response.status, message: response.errorMessage)
    }
  }
}

/// HTTP/1.1 chunked transfer coding, decoded as bytes arrive: `feed` returns the payload
/// bytes the new input completes; `isDone` after the last (zero-size) chunk.
struct ChunkedDecoder {
  private enum State {
    case size([UInt8])
    case data(remaining: Int)
    case dataEnd(remaining: Int)
    case done
  }

  private var state = State.size([])

  var isDone: Bool {
    if case .done = state { return true }
    return false
  }

  mutating func feed(_ bytes: [UInt8]) -> [UInt8] {
    var output: [UInt8] = []
    var index = 0
    while index < bytes.count {
      switch state {
      case .size(var line):
        let byte = bytes[index]
        index += 1
        if byte == UInt8(ascii: "\n") {
          let text =
            String(decoding: line, as: UTF8.self)
            .split(separator: ";").first.map { $0.filter { !$0.isWhitespace } } ?? ""
          let size = Int(text, radix: 16) ?? 0
          state = size == 0 ? .done : .data(remaining: size)
        } else {
          if byte != UInt8(ascii: "\r") { line.append(byte) }
          state = .size(line)
        }
      case .data(let remaining):
        let take = min(remaining, bytes.count - index)
        output += bytes[index..<index + take]
        index += take
        state = remaining - take == 0 ? .dataEnd(remaining: 2) : .data(remaining: remaining - take)
      case .dataEnd(let remaining):
        index += 1
        state = remaining == 1 ? .size([]) : .dataEnd(remaining: remaining - 1)
      case .done:
        return output
      }
    }
    return output
  }
}

/// Splits a byte stream into "\n"-terminated lines; a partial line waits for the rest.
struct LineSplitter {
  private var partial: [UInt8] = []

  mutating func feed(_ bytes: [UInt8]) -> [[UInt8]] {
    var lines: [[UInt8]] = []
    for byte in bytes {
      if byte == UInt8(ascii: "\n") {
        lines.append(partial)
        partial = []
      } else {
        partial.append(byte)
      }
    }
    return lines
  }
}
