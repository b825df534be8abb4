import Glibc

/// A chain or unchain that could not be done; nothing was changed on disk.
public struct ConfigFileError: Error, Equatable, Sendable, CustomStringConvertible {
  public var path: String
  public var message: String

  public init(path: String, _ message: String) {
    self.path = path
    self.message = message
  }

  public var description: String { "\(path): \(message)" }
}

/// What chain or unchain did, in one line for the user.
public struct EditReport: Equatable, Sendable, CustomStringConvertible {
  public var changed: Bool
  public var message: String
  public var description: String { message }

  public init(changed: Bool, message: String) {
    self.changed = changed
    self.message = message
  }
}

/// chain/unchain applied to files in a CNI config directory: the edits of `ConflistEditor`
/// written atomically (temp file in the same directory, fsync, rename, fsync of the
/// directory) with the file's mode and owner kept. Only the one file named (and, for a lone
/// `.conf`, the `.conflist` that replaces it) is ever written or removed.
public enum CNIConfigFiles {
  /// The extensions libcni's `ConfFiles` loads; everything else in the directory is ignored.
  public static let extensions = [".conf", ".conflist", ".json"]

  /// The config the runtime loads from `directory`: containerd, CRI-O and kubelet's old
  /// dockershim take the first file in byte order with one of `extensions` (libcni
  /// `ConfFiles` + `sort.Strings`). nil when there is none.
  public static func runtimeChoice(in directory: String) throws(ConfigFileError) -> String? {
    try configNames(in: directory).first
  }

  public static func chain(_ path: String, entry: JunctionEntry) throws(ConfigFileError)
    -> EditReport
  {
    let file = try ConfigPath(path)
    if file.isList {
      let (text, info) = try read(path)
      switch try edit(
        path,
        { () throws(ConfigEditError) in
          try ConflistEditor.chain(conflist: text, entry: entry)
        })
      {
      case .unchanged(let reason):
        return EditReport(changed: false, message: "\(path): unchanged, \(reason)")
      case .changed(let out):
        try writeAtomically(out, to: path, like: info)
        return EditReport(changed: true, message: "\(path): junction appended to plugins")
      }
    }

    // A lone .conf (or .json): it becomes <stem>.conflist, and the .conf goes away, since
    // "10-x.conf" sorts before "10-x.conflist" and would otherwise still be the one loaded.
    let target = file.directory + "/" + file.listName
    if !exists(path) {
      if exists(target), try convertedFrom(target) == file.name {
        return EditReport(
          changed: false, message: "\(path): unchanged, already chained as \(target)")
      }
      throw ConfigFileError(path: path, "no such file")
    }
    let (text, info) = try read(path)
    let converted = try edit(path) { () throws(ConfigEditError) in
      try ConflistEditor.convert(conf: text, fileName: file.name, entry: entry)
    }
    if exists(target) {
      let (existing, _) = try read(target)
      let restored = try edit(target) { () throws(ConfigEditError) in
        try ConflistEditor.restoredConf(existing)
      }
      guard let restored, restored.fileName == file.name, restored.bytes == text else {
        throw ConfigFileError(
          path: path,
          "\(target) already exists and is not this file's chained form; refusing to overwrite it")
      }
      // A conversion was interrupted between writing the list and removing the .conf.
      try remove(path, in: file.directory)
      return EditReport(changed: true, message: "\(path): chained as \(target) (finished)")
    }
    let names = try configNames(in: file.directory)
    let after = (names.filter { $0 != file.name } + [file.listName]).sorted(by: byteOrder)
    let expected = names.first == file.name ? file.listName : names.first
    if after.first != expected {
      throw ConfigFileError(
        path: path,
        "as \(file.listName) it would no longer be the config the runtime loads from \(file.directory) "
          + "(\(after.first ?? "none") would be); rename it yourself first")
    }
    try writeAtomically(converted, to: target, like: info)
    try remove(path, in: file.directory)
    return EditReport(
      changed: true, message: "\(path): chained as \(target) (unchain restores \(file.name))")
  }

  public static func unchain(_ path: String) throws(ConfigFileError) -> EditReport {
    let file = try ConfigPath(path)
    if !file.isList {
      // The .conf's chained form is its .conflist sibling, if we made one.
      let sibling = file.directory + "/" + file.listName
      if exists(sibling), try convertedFrom(sibling) == file.name {
        return try unchain(sibling)
      }
      guard exists(path) else { throw ConfigFileError(path: path, "no such file") }
      let (text, _) = try read(path)
      _ = try edit(path) { () throws(ConfigEditError) in try ConflistEditor.scanObject(text) }
      return EditReport(
        changed: false, message: "\(path): unchanged, a lone config is never chained")
    }

    let (text, info) = try read(path)
    let restored = try edit(path) { () throws(ConfigEditError) in
      try ConflistEditor.restoredConf(text)
    }
    if let restored {
      let original = file.directory + "/" + restored.fileName
      if exists(original) {
        let (current, _) = try read(original)
        guard current == restored.bytes else {
          throw ConfigFileError(
            path: path, "\(original) exists with other contents; refusing to overwrite it")
        }
      } else {
        try writeAtomically(restored.bytes, to: original, like: info)
      }
      try remove(path, in: file.directory)
      return EditReport(changed: true, message: "\(path): removed, \(original) restored")
    }
    switch try edit(
      path, { () throws(ConfigEditError) in try ConflistEditor.unchain(conflist: text) })
    {
    case .unchanged(let reason):
      return EditReport(changed: false, message: "\(path): unchanged, \(reason)")
    case .changed(let out):
      try writeAtomically(out, to: path, like: info)
      return EditReport(changed: true, message: "\(path): junction removed from plugins")
    }
  }

  // MARK: the directory

  static func configNames(in directory: String) throws(ConfigFileError) -> [String] {
    guard let handle = opendir(directory) else {
      throw ConfigFileError(path: directory, "cannot list: \(errnoText())")
    }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
      }
      guard let dot = name.lastIndex(of: "."), extensions.contains(String(name[dot...])) else {
        continue
      }
      var info = stat()
      if stat(directory + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { continue }
      names.append(name)
    }
    return names.sorted(by: byteOrder)
  }

  static func byteOrder(_ left: String, _ right: String) -> Bool {
    left.utf8.lexicographicallyPrecedes(right.utf8)
  }

  /// The file a converted conflist at `path` came from; nil for any other list.
  static func convertedFrom(_ path: String) throws(ConfigFileError) -> String? {
    let (text, _) = try read(path)
    return try edit(path) { () throws(ConfigEditError) in
      try ConflistEditor.restoredConf(text)?.fileName
    }
  }

  static func edit<T>(_ path: String, _ body: () throws(ConfigEditError) -> T)
    throws(ConfigFileError) -> T
  {
    do {
      return try body()
    } catch {
      throw ConfigFileError(path: path, "refused, nothing changed: \(error)")
    }
  }

  // MARK: files

  static func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
  }

  /// The bytes of a regular file and its stat. A symlink is refused: renaming over it would
  /// replace the link, not the file it points to.
  static func read(_ path: String) throws(ConfigFileError) -> ([UInt8], stat) {
    var info = stat()
    guard lstat(path, &info) == 0 else { throw ConfigFileError(path: path, errnoText()) }
    if (info.st_mode & S_IFMT) == S_IFLNK {
      throw ConfigFileError(path: path, "is a symbolic link; pass the file it points to")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
      throw ConfigFileError(path: path, "is not a regular file")
    }
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
    guard fd >= 0 else { throw ConfigFileError(path: path, "cannot open: \(errnoText())") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw ConfigFileError(path: path, "cannot read: \(errnoText())")
      }
      if count == 0 { break }
      bytes += chunk[..<count]
    }
    return (bytes, info)
  }

  /// Writes `bytes` as `path` so a reader sees the old file or the new one, never a part:
  /// a temp file in the same directory (an extension libcni ignores), owner and mode of
  /// `like`, fsync, rename over `path`, fsync of the directory so the rename is durable.
  static func writeAtomically(_ bytes: [UInt8], to path: String, like info: stat)
    throws(ConfigFileError)
  {
    let (directory, name) = ConfigPath.split(path)
    let temp = "\(directory)/.\(name).junction-tmp\(getpid())"
    unlink(temp)
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
    guard fd >= 0 else { throw ConfigFileError(path: temp, "cannot create: \(errnoText())") }
    var failure: String?
    var written = 0
    while failure == nil, written < bytes.count {
      let count = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if count < 0, errno != EINTR { failure = "cannot write: \(errnoText())" }
      if count > 0 { written += count }
    }
    // Owner before mode: chown clears set-id bits.
    var current = stat()
    if failure == nil, fstat(fd, &current) == 0,
      current.st_uid != info.st_uid || current.st_gid != info.st_gid,
      fchown(fd, info.st_uid, info.st_gid) != 0
    {
      failure = "cannot keep the owner \(info.st_uid):\(info.st_gid): \(errnoText())"
    }
    if failure == nil, fchmod(fd, info.st_mode & 0o7777) != 0 {
      failure = "cannot keep the mode: \(errnoText())"
    }
    if failure == nil, fsync(fd) != 0 { failure = "fsync: \(errnoText())" }
    if close(fd) != 0, failure == nil { failure = "close: \(errnoText())" }
    if failure == nil, rename(temp, path) != 0 { failure = "rename to \(path): \(errnoText())" }
    if let failure {
      unlink(temp)
      throw ConfigFileError(path: temp, failure)
    }
    try syncDirectory(directory)
  }

  static func remove(_ path: String, in directory: String) throws(ConfigFileError) {
    guard unlink(path) == 0 || errno == ENOENT else {
      throw ConfigFileError(path: path, "cannot remove: \(errnoText())")
    }
    try syncDirectory(directory)
  }

  static func syncDirectory(_ directory: String) throws(ConfigFileError) {
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw ConfigFileError(path: directory, "cannot open: \(errnoText())") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw ConfigFileError(path: directory, "fsync: \(errnoText())") }
  }

  static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// A config file's directory, name and kind, from its path.
struct ConfigPath {
  var directory: String
  var name: String
  var stem: String
  var isList: Bool

  /// The `.conflist` a lone config becomes.
  var listName: String { stem + ".conflist" }

  init(_ path: String) throws(ConfigFileError) {
    (directory, name) = Self.split(path)
    guard let dot = name.lastIndex(of: "."), dot != name.startIndex,
      CNIConfigFiles.extensions.contains(String(name[dot...]))
    else {
      throw ConfigFileError(
        path: path, "not a CNI config name: the runtime loads only .conf, .conflist and .json")
    }
    stem = String(name[..<dot])
    isList = name[dot...] == ".conflist"
  }

  static func split(_ path: String) -> (directory: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let directory = String(path[..<slash])
    return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
  }
}
