import XCTest

/// The programs on a link's tcx hooks, read by a short Python script through the bpf(2)
/// syscall (BPF_PROG_QUERY, then each program's name): a witness independent of BPFKit, since
/// Debian 12's tc(8) cannot show tcx.
enum TCXWitness {
  /// (ingress, egress) program names of `link` in namespace `netns`, in the order they run.
  static func programs(
    in netns: String, link: String, file: StaticString = #filePath, line: UInt = #line
  )
    throws -> (ingress: [String], egress: [String])
  {
    let both = try programsWithIDs(in: netns, link: link, file: file, line: line)
    return (both.ingress.map(\.name), both.egress.map(\.name))
  }

  /// The same with each program's id.
  static func programsWithIDs(
    in netns: String, link: String, file: StaticString = #filePath, line: UInt = #line
  )
    throws -> (ingress: [(name: String, id: String)], egress: [(name: String, id: String)])
  {
    let result = try Shell.run(["ip", "netns", "exec", netns, "python3", "-c", script, link])
    XCTAssertEqual(
      result.status, 0, "tcx query of \(link): \(result.stderr)", file: file, line: line)
    let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    func programs(_ index: Int) -> [(name: String, id: String)] {
      guard index < lines.count else { return [] }
      return lines[index].split(separator: " ").map { token in
        let parts = token.split(separator: "@", maxSplits: 1).map(String.init)
        return (parts[0], parts.count > 1 ? parts[1] : "")
      }
    }
    return (programs(0), programs(1))
  }

  /// Takes every program off the tcx hooks of `directions` ("ingress", "egress") of `link`:
  /// what another tool (or a person) doing so behind Junction's back does.
  static func detachAll(
    in netns: String, link: String, directions: [String] = ["ingress", "egress"],
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let result = try Shell.run(
      ["ip", "netns", "exec", netns, "python3", "-c", script, link] + directions)
    XCTAssertEqual(
      result.status, 0, "tcx detach on \(link): \(result.stderr)", file: file, line: line)
  }

  /// What the test scripts on bpf(2) start with: imports and `bpf(cmd, attr)`, which raises
  /// OSError with the errno.
  static let pythonPrelude = """
    import ctypes, os, socket, struct, sys
    libc = ctypes.CDLL(None, use_errno=True)
    def bpf(cmd, attr):
        r = libc.syscall(321, cmd, attr, len(attr.raw))
        if r < 0:
            e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
        return r

    """

  private static let script =
    pythonPrelude + """
      index = socket.if_nametoindex(sys.argv[1])
      detach = sys.argv[2:]  # the directions to empty ("ingress", "egress"); none: list
      for direction, attach_type in (("ingress", 46), ("egress", 47)):  # BPF_TCX_*
          ids = (ctypes.c_uint32 * 64)()
          attr = ctypes.create_string_buffer(struct.pack("<IIIIQI", index, attach_type, 0, 0, ctypes.addressof(ids), 64), 64)
          try:
              bpf(16, attr)  # BPF_PROG_QUERY
          except OSError as error:
              if error.errno != 22:  # EINVAL: a kernel without tcx, so nothing there
                  raise
              print(); continue
          count = struct.unpack_from("<I", attr.raw, 24)[0]
          names = []
          for i in range(count):
              fd = bpf(13, ctypes.create_string_buffer(struct.pack("<I", ids[i]), 16))  # BY_ID
              if direction in detach:  # BPF_PROG_DETACH
                  bpf(9, ctypes.create_string_buffer(struct.pack("<IIII", index, fd, attach_type, 0), 16))
              info = ctypes.create_string_buffer(256)
              attr = ctypes.create_string_buffer(struct.pack("<IIQ", fd, 256, ctypes.addressof(info)), 16)
              bpf(15, attr)  # BPF_OBJ_GET_INFO_BY_FD
              os.close(fd)
              names.append(info.raw[64:80].split(b"\\0")[0].decode() + "@" + str(ids[i]))
          print(" ".join(names))
      """
}
