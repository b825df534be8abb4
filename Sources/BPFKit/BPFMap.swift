import CLibbpf

#if canImport(Glibc)
  import Glibc
#endif

/// A BPF map held by one descriptor, which this instance owns and closes. Keys and values
/// are the ABI structs from DatapathABI (junction_abi.h), passed by their bytes; every call
/// checks the Swift type's size against the map's, because the kernel copies key_size and
/// value_size bytes whatever the caller hands it.
public final class BPFMap: Sendable {
  public let fd: Int32
  public let id: UInt32
  public let name: String
  public let keySize: Int
  public let valueSize: Int
  public let maxEntries: Int
  /// The map's creation flags (`BPF_F_*`, e.g. BPF_F_NO_PREALLOC).
  public let flags: UInt32
  /// The kernel's map type (a `bpf_map_type` raw value: BPF_MAP_TYPE_HASH, ...).
  public let type: UInt32
  /// Per-CPU maps (PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH) hold one value per possible
  /// CPU; read them with `lookupPerCPU` or `lookupSum`, write with `updatePerCPU`.
  public let isPerCPU: Bool

  /// How `update` treats an existing or missing entry (BPF_ANY, BPF_NOEXIST, BPF_EXIST).
  public enum UpdateMode: Sendable {
    case createOrReplace, createOnly, replaceOnly

    var flags: UInt64 {
      switch self {
      case .createOrReplace: UInt64(BPF_ANY)
      case .createOnly: UInt64(BPF_NOEXIST)
      case .replaceOnly: UInt64(BPF_EXIST)
      }
    }
  }

  /// Takes ownership of `fd` (closing it if the map cannot be described).
  init(owning fd: Int32, describedAs what: @autoclosure () -> String) throws(BPFError) {
    let info = try objectInfo(owning: fd, bpf_map_info(), describedAs: what)
    self.fd = fd
    self.id = info.id
    self.name = kernelName(info.name)
    self.keySize = Int(info.key_size)
    self.valueSize = Int(info.value_size)
    self.maxEntries = Int(info.max_entries)
    self.type = info.type
    self.flags = info.map_flags
    let perCPU: [bpf_map_type] = [
      BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_PERCPU_HASH,
      BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    ]
    self.isPerCPU = perCPU.contains { $0.rawValue == info.type }
  }

  deinit { close(fd) }

  /// The map pinned at `path` (by libbpf under the agent's pin root, or by `pin(at:)`).
  public static func openPinned(at path: String) throws(BPFError) -> BPFMap {
    let fd = try BPFFilesystem.openPinned(at: path, kind: "map")
    return try BPFMap(owning: fd, describedAs: path)
  }

  /// Pins the map at `path`, atomically replacing an existing pin.
  public func pin(at path: String) throws(BPFError) {
    try BPFFilesystem.pin(fd, at: path)
  }

  // MARK: - Plain maps

  /// The value for `key`, or nil when there is none.
  public func lookup<Key: BitwiseCopyable, Value: BitwiseCopyable>(
    _ key: Key, as type: Value.Type = Value.self
  ) throws(BPFError) -> Value? {
    try check(Key.self, Value.self, perCPU: false, "lookup")
    let raw = UnsafeMutableRawPointer.allocate(byteCount: valueSize, alignment: 8)
    defer { raw.deallocate() }
    let result = withUnsafeBytes(of: key) { bpf_map_lookup_elem(fd, $0.baseAddress, raw) }
    if result == -ENOENT { return nil }
    try checkLibbpf(result, "bpf_map_lookup_elem \(name)")
    return raw.load(as: Value.self)
  }

  /// Writes `value` under `key`.
  public func update<Key: BitwiseCopyable, Value: BitwiseCopyable>(
    _ key: Key, _ value: Value, mode: UpdateMode = .createOrReplace
  ) throws(BPFError) {
    try check(Key.self, Value.self, perCPU: false, "update")
    let result = withUnsafeBytes(of: key) { key in
      withUnsafeBytes(of: value) {
        bpf_map_update_elem(fd, key.baseAddress, $0.baseAddress, mode.flags)
      }
    }
    try checkLibbpf(result, "bpf_map_update_elem \(name)")
  }

  // MARK: - Any map

  /// Deletes the entry for `key`; false when there was none.
  @discardableResult
  public func delete<Key: BitwiseCopyable>(_ key: Key) throws(BPFError) -> Bool {
    try checkKey(Key.self, "delete")
    let result = withUnsafeBytes(of: key) { bpf_map_delete_elem(fd, $0.baseAddress) }
    if result == -ENOENT { return false }
    try checkLibbpf(result, "bpf_map_delete_elem \(name)")
    return true
  }

  /// Every key, by bpf_map_get_next_key. Not a snapshot: the datapath may add and remove
  /// entries meanwhile, and when the key last seen is deleted concurrently a hash map
  /// restarts from its first key, so a key can appear twice. At most max_entries keys.
  public func keys<Key: BitwiseCopyable>(as type: Key.Type = Key.self) throws(BPFError) -> [Key] {
    try checkKey(Key.self, "keys")
    var keys: [Key] = []
    let next = UnsafeMutableRawPointer.allocate(byteCount: keySize, alignment: 8)
    defer { next.deallocate() }
    while keys.count < maxEntries {
      let result: Int32 =
        if let last = keys.last {
          withUnsafeBytes(of: last) { bpf_map_get_next_key(fd, $0.baseAddress, next) }
        } else {
          bpf_map_get_next_key(fd, nil, next)
        }
      if result == -ENOENT { break }
      try checkLibbpf(result, "bpf_map_get_next_key \(name)")
      keys.append(next.load(as: Key.self))
    }
    return keys
  }

  // MARK: - Per-CPU maps

  /// One value per possible CPU for `key` (index = CPU number), or nil when there is none.
  public func lookupPerCPU<Key: BitwiseCopyable, Value: BitwiseCopyable>(
    _ key: Key, as type: Value.Type = Value.self
  ) throws(BPFError) -> [Value]? {
    try check(Key.self, Value.self, perCPU: true, "lookupPerCPU")
    let cpus = try LibBPF.possibleCPUs()
    let stride = perCPUStride
    let raw = UnsafeMutableRawPointer.allocate(byteCount: stride * cpus, alignment: 8)
    defer { raw.deallocate() }
    let result = withUnsafeBytes(of: key) { bpf_map_lookup_elem(fd, $0.baseAddress, raw) }
    if result == -ENOENT { return nil }
    try checkLibbpf(result, "bpf_map_lookup_elem \(name)")
    return (0..<cpus).map { raw.load(fromByteOffset: $0 * stride, as: Value.self) }
  }

  /// The per-CPU values for `key` added up: what a counter's reader wants.
  public func lookupSum<Key: BitwiseCopyable, Value: PerCPUSummable & BitwiseCopyable>(
    _ key: Key, as type: Value.Type = Value.self
  ) throws(BPFError) -> Value? {
    guard let values = try lookupPerCPU(key, as: Value.self) else { return nil }
    return values.reduce(into: Value()) { $0.add($1) }
  }

  /// Writes one value per possible CPU under `key`; CPUs past the end of `values` get zeroes.
  public func updatePerCPU<Key: BitwiseCopyable, Value: BitwiseCopyable>(
    _ key: Key, _ values: [Value], mode: UpdateMode = .createOrReplace
  ) throws(BPFError) {
    try check(Key.self, Value.self, perCPU: true, "updatePerCPU")
    let cpus = try LibBPF.possibleCPUs()
    guard values.count <= cpus else {
      throw .invalid("updatePerCPU \(name): \(values.count) values for \(cpus) possible CPUs")
    }
    let stride = perCPUStride
    let raw = UnsafeMutableRawPointer.allocate(byteCount: stride * cpus, alignment: 8)
    defer { raw.deallocate() }
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: stride * cpus)
    for (cpu, value) in values.enumerated() {
      raw.storeBytes(of: value, toByteOffset: cpu * stride, as: Value.self)
    }
    let result = withUnsafeBytes(of: key) {
      bpf_map_update_elem(fd, $0.baseAddress, raw, mode.flags)
    }
    try checkLibbpf(result, "bpf_map_update_elem \(name)")
  }

  // MARK: - Checks

  /// The kernel lays per-CPU values out 8-byte aligned, one after the other.
  private var perCPUStride: Int { (valueSize + 7) & ~7 }

  private func checkKey<Key>(_ key: Key.Type, _ operation: String) throws(BPFError) {
    guard MemoryLayout<Key>.size == keySize else {
      throw .invalid(
        "\(operation) \(name): key type \(Key.self) is \(MemoryLayout<Key>.size) bytes, the map's keys are \(keySize)"
      )
    }
  }

  private func check<Key, Value>(
    _ key: Key.Type, _ value: Value.Type, perCPU: Bool, _ operation: String
  ) throws(BPFError) {
    try checkKey(Key.self, operation)
    guard MemoryLayout<Value>.size == valueSize else {
      throw .invalid(
        "\(operation) \(name): value type \(Value.self) is \(MemoryLayout<Value>.size) bytes, the map's values are \(valueSize)"
      )
    }
    guard perCPU == isPerCPU else {
      throw .invalid(
        isPerCPU
          ? "\(operation) \(name): a per-CPU map; use lookupPerCPU, lookupSum or updatePerCPU"
          : "\(operation) \(name): not a per-CPU map; use lookup or update")
    }
  }
}
