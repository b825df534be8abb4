#if canImport(Glibc)
  import Glibc
#endif

/// Runs a delegated plugin synchronously: stdin in, stdout out, stderr passed through to
/// ours (spec section 4). posix_spawn on the calling thread, with no runtime threads:
/// the CNI binary switches network namespaces on this thread and must stay single-threaded.
enum ProcessRunner {
  struct Outcome {
    var exitStatus: Int32
    var stdout: [UInt8]
  }

  enum Failure: Error, CustomStringConvertible {
    case spawn(String, Int32)
    case io(String, Int32)

    var description: String {
      switch self {
      case .spawn(let path, let code): "cannot run \(path): \(String(cString: strerror(code)))"
      case .io(let what, let code): "\(what): \(String(cString: strerror(code)))"
      }
    }
  }

  static func run(_ path: String, environment: [String: String], stdin: [UInt8]) throws(Failure)
    -> Outcome
  {
    var input: [Int32] = [-1, -1]
    var output: [Int32] = [-1, -1]
    guard pipe(&input) == 0 else { throw .io("pipe", errno) }
    guard pipe(&output) == 0 else {
      closeAll(input)
      throw .io("pipe", errno)
    }
    // The parent's ends must not leak into the child (it would never see EOF on stdin).
    for fd in [input[1], output[0]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input[0], 0)
    posix_spawn_file_actions_adddup2(&actions, output[1], 1)
    posix_spawn_file_actions_addclose(&actions, input[0])
    posix_spawn_file_actions_addclose(&actions, output[1])

    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
    let envp: [UnsafeMutablePointer<CChar>?] =
      environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for pointer in argv + envp { free(pointer) }
    }

    // A plugin may exit without reading its stdin (an old IPAM plugin refuses a command it
    // does not know, GC, before reading): our write then fails with EPIPE, which is handled
    // below, instead of SIGPIPE killing this process without a CNI error. The child gets
    // the default disposition back, as if we had not touched it.
    let previousPipeHandler = signal(SIGPIPE, SIG_IGN)
    defer { signal(SIGPIPE, previousPipeHandler) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var defaultSignals = sigset_t()
    sigemptyset(&defaultSignals)
    sigaddset(&defaultSignals, SIGPIPE)
    posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

    var pid = pid_t()
    let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
    close(input[0])
    close(output[1])
    guard spawned == 0 else {
      close(input[1])
      close(output[0])
      throw .spawn(path, spawned)
    }

    // Plugins read all of stdin before they write, so writing first cannot deadlock.
    let writeFailure = writeAll(input[1], stdin)
    close(input[1])
    let stdout = readAll(output[0])
    close(output[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0, errno == EINTR {}
    if let writeFailure, writeFailure != EPIPE { throw .io("writing to \(path)", writeFailure) }
    // WIFEXITED / WEXITSTATUS, spelled out: Glibc's macros are not imported into Swift.
    let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    return Outcome(exitStatus: exitStatus, stdout: stdout)
  }

  private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
    var offset = 0
    while offset < bytes.count {
      let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if written < 0 {
        if errno == EINTR { continue }
        return errno
      }
      offset += written
    }
    return nil
  }

  private static func readAll(_ fd: Int32) -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
      let count = read(fd, &buffer, buffer.count)
      if count < 0, errno == EINTR { continue }
      if count <= 0 { break }
      result.append(contentsOf: buffer[..<count])
    }
    return result
  }

  private static func closeAll(_ fds: [Int32]) {
    for fd in fds { close(fd) }
  }
}
