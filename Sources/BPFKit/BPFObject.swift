import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// A BPF ELF object (e.g. endpoint.o from install/build-bpf.sh), opened and then loaded into
/// the kernel by libbpf. Maps declared with LIBBPF_PIN_BY_NAME are pinned under `pinRoot` at
/// load, and an existing compatible pin there is reused instead of creating a fresh map:
/// that is how a restarted agent keeps its state. Programs are not pinned by libbpf; take
/// them with `program(named:)` and pin them yourself.
///
/// Closing the object (deinit) unloads nothing that is still pinned or held: programs and
/// maps handed out by `program(named:)` and `map(named:)` have their own descriptors.
public final class BPFObject {
  private let object: OpaquePointer
  /// The ELF file it was opened from.
  public let path: String
  /// Where pinned-by-name maps live; nil when the object was opened without one.
  public let pinRoot: String?
  public private(set) var isLoaded = false

  private init(object: OpaquePointer, path: String, pinRoot: String?) {
    self.object = object
    self.path = path
    self.pinRoot = pinRoot
  }

  deinit { bpf_object__close(object) }

  /// Parses the ELF at `path`. `pinRoot` must be a directory on a bpffs when the object
  /// declares pinned maps (libbpf refuses pins elsewhere; checked here for a clearer error).
  public static func open(path: String, pinRoot: String? = nil) throws(BPFError) -> BPFObject {
    if let pinRoot, !BPFFilesystem.isMounted(at: pinRoot) {
      throw .invalid("pin root \(pinRoot) is not a directory on a bpffs")
    }
    var options = bpf_object_open_opts()
    options.sz = libbpfOptionsSize(\bpf_object_open_opts.kernel_log_level)
    // libbpf copies pin_root_path while opening, so the C string only has to outlive the call.
    let opened: OpaquePointer? =
      if let pinRoot {
        pinRoot.withCString { root in
          options.pin_root_path = root
          return bpf_object__open_file(path, &options)
        }
      } else {
        bpf_object__open_file(path, &options)
      }
    guard let opened else { throw .system("bpf_object__open_file \(path)", errno: Glibc.errno) }
    return BPFObject(object: opened, path: path, pinRoot: pinRoot)
  }

  /// Sizes the map named `name` before `load()`, e.g. from the agent's config instead of the
  /// header's default. A pinned map of another size is not reused: the load then fails
  /// (EINVAL), as for any ABI change, so a resize needs the old pin removed first (and its
  /// contents rewritten).
  public func setMaxEntries(_ maxEntries: Int, forMap name: String) throws(BPFError) {
    guard !isLoaded else { throw .invalid("max_entries of map \(name) in \(path): already loaded") }
    guard let map = bpf_object__find_map_by_name(object, name) else {
      throw .notFound("map \(name) in \(path)")
    }
    guard maxEntries > 0, maxEntries <= Int(UInt32.max) else {
      throw .invalid("max_entries of map \(name) in \(path): \(maxEntries) out of range")
    }
    try checkLibbpf(
      bpf_map__set_max_entries(map, UInt32(maxEntries)), "bpf_map__set_max_entries \(name)")
  }

  /// The max_entries the map named `name` will be (or was) created with.
  public func maxEntries(ofMap name: String) throws(BPFError) -> Int {
    guard let map = bpf_object__find_map_by_name(object, name) else {
      throw .notFound("map \(name) in \(path)")
    }
    return Int(bpf_map__max_entries(map))
  }

  /// Creates (or reuses pinned) maps, then verifies and loads the programs. Fails with
  /// EINVAL when a map pinned under the root has another type, key or value size,
  /// max_entries or flags than the object declares: an ABI change (see junction_abi.h).
  public func load() throws(BPFError) {
    guard !isLoaded else { return }
    try checkLibbpf(bpf_object__load(object), "bpf_object__load \(path)")
    isLoaded = true
  }

  /// The names of the programs in the object, in ELF order.
  public var programNames: [String] {
    var names: [String] = []
    var program = bpf_object__next_program(object, nil)
    while let current = program {
      names.append(String(cString: bpf_program__name(current)))
      program = bpf_object__next_program(object, current)
    }
    return names
  }

  /// The names of the maps in the object (including libbpf's internal .rodata/.bss maps).
  public var mapNames: [String] {
    var names: [String] = []
    var map = bpf_object__next_map(object, nil)
    while let current = map {
      names.append(String(cString: bpf_map__name(current)))
      map = bpf_object__next_map(object, current)
    }
    return names
  }

  /// The pins of this object's maps that libbpf's `load()` would refuse to reuse (EINVAL):
  /// a map pinned under the pin root with another type, key size, value size, max_entries
  /// or flags than declared (after `setMaxEntries`), which is an earlier ABI's map
  /// (junction_abi.h). Before `load()`; pins that are not maps are left to the load to refuse.
  public func pinsOfAnotherLayout() -> [String] {
    var pins: [String] = []
    var map = bpf_object__next_map(object, nil)
    while let current = map {
      map = bpf_object__next_map(object, current)
      guard let pinPath = bpf_map__pin_path(current) else { continue }
      let pin = String(cString: pinPath)
      guard access(pin, F_OK) == 0, let pinned = try? BPFMap.openPinned(at: pin) else { continue }
      if pinned.type != bpf_map__type(current).rawValue
        || pinned.keySize != Int(bpf_map__key_size(current))
        || pinned.valueSize != Int(bpf_map__value_size(current))
        || pinned.maxEntries != Int(bpf_map__max_entries(current))
        || pinned.flags != bpf_map__map_flags(current)
      {
        pins.append(pin)
      }
    }
    return pins
  }

  /// The loaded program named `name` (its C function name), with its own descriptor.
  public func program(named name: String) throws(BPFError) -> BPFProgram {
    guard let program = bpf_object__find_program_by_name(object, name) else {
      throw .notFound("program \(name) in \(path)")
    }
    guard isLoaded else { throw .invalid("program \(name) of \(path): object not loaded") }
    let fd = try duplicate(bpf_program__fd(program), "program \(name) of \(path)")
    return try BPFProgram(owning: fd, describedAs: "program \(name) of \(path)")
  }

  /// The map named `name` (its variable name in the C), with its own descriptor.
  public func map(named name: String) throws(BPFError) -> BPFMap {
    guard let map = bpf_object__find_map_by_name(object, name) else {
      throw .notFound("map \(name) in \(path)")
    }
    guard isLoaded else { throw .invalid("map \(name) of \(path): object not loaded") }
    let fd = try duplicate(bpf_map__fd(map), "map \(name) of \(path)")
    return try BPFMap(owning: fd, describedAs: "map \(name) of \(path)")
  }
}
