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
    let result = try Shell.run(["ip", "netns", "exec", netns, "python3", "-c", script, link])
    XCTAssertEqual(
      result.status, 0, "tcx query of \(link): \(result.stderr)", file: file, line: line)
    let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    func names(_ index: Int) -> [String] {
      index < lines.count ? lines[index].split(separator: " ").map(String.init) : []
    }
    return (names(0), names(1))
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
      for attach_type in (46, 47):  # BPF_TCX_INGRESS, BPF_TCX_EGRESS
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
              info = ctypes.create_string_buffer(256)
              attr = ctypes.create_string_buffer(struct.pack("<IIQ", fd, 256, ctypes.addressof(info)), 16)
              bpf(15, attr)  # BPF_OBJ_GET_INFO_BY_FD
              os.close(fd)
              names.append(info.raw[64:80].split(b"\\0")[0].decode())
          print(" ".join(names))
      """
}
