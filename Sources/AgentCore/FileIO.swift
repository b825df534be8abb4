#if canImport(Glibc)
  import Glibc
#endif

/// A failed file operation: what, where, and errno's text.
public struct FileError: Error, Equatable, Sendable, CustomStringConvertible {
  public var operation: String
  public var path: String
  public var code: Int32

  public init(_ operation: String, _ path: String, _ code: Int32) {
    self.operation = operation
    self.path = path
    self.code = code
  }

  public var description: String {
    code == 0
      ? "\(operation) \(path)"
      : "\(operation) \(path): \(String(cString: strerror(code)))"
  }

  public var isNotFound: Bool { code == ENOENT }
}

/// Small, durable file operations over the raw syscalls: what the agent's state and the
/// deletion queue need, and nothing that pulls in Foundation (the CNI binary links this).
public enum AtomicFile {
  /// How far a write must get before `write` returns.
  public enum Durability: Sendable {
    /// fsync of the file before the rename and of the directory after it: the new file
    /// survives a power loss.
    case powerLoss
    /// Rename only: readers and a crash of the process see the old or the whole new file,
    /// but a power loss may roll back to the old one. About a millisecond cheaper per write
    /// on ext4, which matters on the pod-creation path.
    case processCrash
  }

  /// Writes `bytes` to `path` so that a reader, or a crash at any instant, sees either the
  /// old file or the whole new one: a temporary file in the same directory, renamed over
  /// `path`, with fsyncs as `durability` asks.
  public static func write(
    _ bytes: [UInt8], to path: String, mode: mode_t = 0o600, durability: Durability = .powerLoss
  ) throws(FileError) {
    try onlyFileErrors {
      try write(to: path, mode: mode, durability: durability) { write in try write(bytes) }
    }
  }

  /// `write(_:to:)` of a file that `produce` hands to `write` in pieces, so that a large file
  /// (a snapshot of every object) is never held whole. An error `produce` throws leaves the
  /// old file, as a failed write does.
  public static func write(
    to path: String, mode: mode_t = 0o600, durability: Durability = .powerLoss,
    producing produce: (_ write: ([UInt8]) throws(FileError) -> Void) throws -> Void
  ) throws {
    let directory = PathNames.directory(of: path)
    let temporary =
      "\(directory)/.\(PathNames.base(of: path)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { throw FileError("create", temporary, errno) }
    var closed = false
    defer {
      if !closed { close(fd) }
    }
    do {
      try produce { bytes throws(FileError) in try writeAll(bytes, to: fd, path: temporary) }
      // The mode given to open() is filtered by the umask; say it again exactly.
      if fchmod(fd, mode) != 0 { throw FileError("chmod", temporary, errno) }
      if durability == .powerLoss, fsync(fd) != 0 { throw FileError("fsync", temporary, errno) }
      closed = true
      if close(fd) != 0 { throw FileError("close", temporary, errno) }
      if Glibc.rename(temporary, path) != 0 {
        throw FileError("rename to \(path)", temporary, errno)
      }
    } catch {
      unlink(temporary)
      throw error
    }
    if durability == .powerLoss { try syncDirectory(directory) }
  }

  /// Appends `bytes` to `path` (created with `mode` if missing) and, for `.powerLoss`, waits
  /// until they are on disk: the cheap durable write of a journal, one fdatasync instead of
  /// a whole file rewritten. A crash mid-append can leave a torn last record, which the
  /// journal's reader must recognise.
  public static func append(
    _ bytes: [UInt8], to path: String, mode: mode_t = 0o600, durability: Durability = .powerLoss
  ) throws(FileError) {
    try onlyFileErrors {
      try append(to: path, mode: mode, durability: durability) { write in try write(bytes) }
    }
  }

  /// `append(_:to:)` of a record that `produce` hands to `write` in pieces, so that a large
  /// record is never held whole; still one fdatasync. If a write or `produce` fails, the
  /// file is cut back to where the record began: no part of it stays in front of the next.
  public static func append(
    to path: String, mode: mode_t = 0o600, durability: Durability = .powerLoss,
    producing produce: (_ write: ([UInt8]) throws(FileError) -> Void) throws -> Void
  ) throws {
    let created = !exists(path)
    let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode)
    guard fd >= 0 else { throw FileError("open for append", path, errno) }
    defer { close(fd) }
    let start = lseek(fd, 0, SEEK_END)
    do {
      try produce { bytes throws(FileError) in try writeAll(bytes, to: fd, path: path) }
    } catch {
      if start >= 0 { _ = ftruncate(fd, start) }
      throw error
    }
    guard durability == .powerLoss else { return }
    if fdatasync(fd) != 0 { throw FileError("fdatasync", path, errno) }
    if created { try syncDirectory(PathNames.directory(of: path)) }
  }

  /// Cuts `path` to its first `length` bytes (dropping a torn journal record), durably.
  public static func truncate(_ path: String, to length: Int) throws(FileError) {
    let fd = open(path, O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError("open", path, errno) }
    defer { close(fd) }
    if ftruncate(fd, off_t(length)) != 0 { throw FileError("truncate", path, errno) }
    if fsync(fd) != 0 { throw FileError("fsync", path, errno) }
  }

  /// Runs `body`, whose only errors are `FileError`s (a producer that writes bytes it
  /// already has), with that type.
  private static func onlyFileErrors(_ body: () throws -> Void) throws(FileError) {
    do {
      try body()
    } catch let error as FileError {
      throw error
    } catch {
      preconditionFailure("only writes can fail here: \(error)")
    }
  }

  private static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws(FileError) {
    var offset = 0
    while offset < bytes.count {
      let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if written < 0 {
        if errno == EINTR { continue }
        throw FileError("write", path, errno)
      }
      offset += written
    }
  }

  /// Renames `from` to `to` (same directory, replacing any `to`) and, for `.powerLoss`,
  /// waits until the new name is on disk: after a crash the file is under one name or the
  /// other, and once this returns, under `to`.
  public static func rename(
    _ from: String, to: String, durability: Durability = .powerLoss
  ) throws(FileError) {
    if Glibc.rename(from, to) != 0 { throw FileError("rename to \(to)", from, errno) }
    if durability == .powerLoss { try syncDirectory(PathNames.directory(of: to)) }
  }

  /// Removes `path`, durably unless told otherwise. False when there was nothing to remove.
  @discardableResult
  public static func remove(_ path: String, durability: Durability = .powerLoss) throws(FileError)
    -> Bool
  {
    if unlink(path) != 0 {
      if errno == ENOENT { return false }
      throw FileError("remove", path, errno)
    }
    if durability == .powerLoss { try syncDirectory(PathNames.directory(of: path)) }
    return true
  }

  /// The whole file, refusing files larger than `limit` bytes.
  public static func read(_ path: String, limit: Int = 1 << 20) throws(FileError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError("open", path, errno) }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
      let count = Glibc.read(fd, &buffer, buffer.count)
      if count < 0 {
        if errno == EINTR { continue }
        throw FileError("read", path, errno)
      }
      if count == 0 { break }
      result.append(contentsOf: buffer[..<count])
      if result.count > limit { throw FileError("read (larger than \(limit) bytes)", path, EFBIG) }
    }
    return result
  }

  /// The names in a directory (no "." or ".."), sorted; empty when it does not exist.
  public static func list(_ directory: String) throws(FileError) -> [String] {
    guard let handle = opendir(directory) else {
      if errno == ENOENT { return [] }
      throw FileError("list", directory, errno)
    }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }

  /// mkdir -p: creates `path` and missing parents with `mode`; an existing directory is fine.
  public static func makeDirectory(_ path: String, mode: mode_t) throws(FileError) {
    var info = stat()
    if stat(path, &info) == 0 {
      if info.st_mode & S_IFMT == S_IFDIR { return }
      throw FileError("create directory (a file is in the way)", path, ENOTDIR)
    }
    let parent = PathNames.directory(of: path)
    if parent != path && parent != "." && parent != "/" { try makeDirectory(parent, mode: mode) }
    if mkdir(path, mode) != 0 && errno != EEXIST {
      throw FileError("create directory", path, errno)
    }
    // mkdir's mode is filtered by the umask.
    _ = chmod(path, mode)
  }

  public static func syncDirectory(_ directory: String) throws(FileError) {
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError("open directory", directory, errno) }
    defer { close(fd) }
    if fsync(fd) != 0 && errno != EINVAL { throw FileError("fsync directory", directory, errno) }
  }

  public static func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
  }
}

/// dirname/basename without Foundation.
public enum PathNames {
  /// "/run/junction/junction.sock" → "/run/junction"; "agent.sock" → "."; "/x" → "/".
  public static func directory(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "." }
    let parent = trimmed[..<slash]
    var result = parent
    while result.count > 1, result.hasSuffix("/") { result = result.dropLast() }
    return result.isEmpty ? "/" : String(result)
  }

  public static func base(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
    let name = trimmed[trimmed.index(after: slash)...]
    return name.isEmpty ? "/" : String(name)
  }

  public static func join(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : "\(directory)/\(name)"
  }
}
