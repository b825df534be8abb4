import CLibbpf
import DatapathABI

#if canImport(Glibc)
  import Glibc
#endif

// Maps the agent creates itself (inner maps of a map-in-map, such as the per-service Maglev
// tables), values that are arrays rather than one ABI struct, and map-in-map entries.

extension BPFMap {
  /// The map types BPFKit creates directly (everything else comes from an object).
  public enum Kind: Sendable {
    case array, hash

    var type: bpf_map_type {
      switch self {
      case .array: BPF_MAP_TYPE_ARRAY
      case .hash: BPF_MAP_TYPE_HASH
      }
    }
  }

  /// A new, unpinned map owned by the returned instance (and by any map-in-map it is put
  /// in). `name` is cut at 15 characters by the kernel.
  public static func create(
    _ kind: Kind, name: String, keySize: Int, valueSize: Int, maxEntries: Int, flags: UInt32 = 0
  ) throws(BPFError) -> BPFMap {
    var options = bpf_map_create_opts()
    options.sz = libbpfOptionsSize(\bpf_map_create_opts.map_ifindex)
    options.map_flags = flags
    let fd = bpf_map_create(
      kind.type, name, UInt32(keySize), UInt32(valueSize), UInt32(maxEntries), &options)
    try checkLibbpf(fd, "bpf_map_create \(name)")
    return try BPFMap(owning: fd, describedAs: "map \(name)")
  }

  /// The map with kernel id `id` (what a map-in-map lookup returns).
  public static func open(id: UInt32) throws(BPFError) -> BPFMap {
    let fd = bpf_map_get_fd_by_id(id)
    try checkLibbpf(fd, "bpf_map_get_fd_by_id \(id)")
    return try BPFMap(owning: fd, describedAs: "map id \(id)")
  }

  /// Writes a value made of `elements` (e.g. a table of backend ids), which must fill the
  /// map's value size exactly.
  public func update<Key: BitwiseCopyable, Element: BitwiseCopyable>(
    _ key: Key, elements: [Element], mode: UpdateMode = .createOrReplace
  ) throws(BPFError) {
    try checkElements(Key.self, Element.self, count: elements.count, "update")
    let result = withUnsafeBytes(of: key) { key in
      elements.withUnsafeBytes {
        bpf_map_update_elem(fd, key.baseAddress, $0.baseAddress, mode.flags)
      }
    }
    try checkLibbpf(result, "bpf_map_update_elem \(name)")
  }

  /// The value for `key` read as an array of `Element`, or nil when there is none.
  public func lookup<Key: BitwiseCopyable, Element: BitwiseCopyable>(
    _ key: Key, elements type: Element.Type
  ) throws(BPFError) -> [Element]? {
    let count = valueSize / max(MemoryLayout<Element>.stride, 1)
    try checkElements(Key.self, Element.self, count: count, "lookup")
    var elements = [Element]()
    var result: Int32 = 0
    let raw = UnsafeMutableRawPointer.allocate(byteCount: valueSize, alignment: 8)
    defer { raw.deallocate() }
    result = withUnsafeBytes(of: key) { bpf_map_lookup_elem(fd, $0.baseAddress, raw) }
    if result == -ENOENT { return nil }
    try checkLibbpf(result, "bpf_map_lookup_elem \(name)")
    elements.reserveCapacity(count)
    for index in 0..<count {
      elements.append(
        raw.load(fromByteOffset: index * MemoryLayout<Element>.stride, as: Element.self))
    }
    return elements
  }

  /// Puts `inner` under `key` in this map-in-map (replacing what was there in one step:
  /// the datapath sees the old inner map or the new one, never none). The kernel refuses
  /// (EINVAL) an inner map of another type, key size, value size or max_entries than the
  /// outer map's template.
  public func update<Key: BitwiseCopyable>(
    _ key: Key, innerMap inner: BPFMap, mode: UpdateMode = .createOrReplace
  ) throws(BPFError) {
    try update(key, UInt32(bitPattern: inner.fd), mode: mode)
  }

  /// The kernel id of the inner map under `key` (open it with `open(id:)`), or nil.
  public func innerMapID<Key: BitwiseCopyable>(_ key: Key) throws(BPFError) -> UInt32? {
    try lookup(key, as: UInt32.self)
  }

  private func checkElements<Key, Element>(
    _ key: Key.Type, _ element: Element.Type, count: Int, _ operation: String
  ) throws(BPFError) {
    guard MemoryLayout<Key>.size == keySize else {
      throw .invalid(
        "\(operation) \(name): key type \(Key.self) is \(MemoryLayout<Key>.size) bytes, the map's keys are \(keySize)"
      )
    }
    guard count * MemoryLayout<Element>.stride == valueSize, !isPerCPU else {
      throw .invalid(
        "\(operation) \(name): \(count) × \(Element.self) is \(count * MemoryLayout<Element>.stride) bytes, the map's values are \(valueSize)"
      )
    }
  }
}

/// The per-service Maglev lookup tables of JUNCTION_MAP_LB4_MAGLEV: each is an inner map
/// (ARRAY, key 0, one value of JUNCTION_MAGLEV_TABLE_SIZE backend ids) put under the
/// service's rev-NAT id. Build the table in full, then swap it in: the datapath reads the
/// old table or the new one, never a half-written one.
public enum MaglevTable {
  /// M, the number of slots: a prime, the same on every node.
  public static let size = Int(JUNCTION_MAGLEV_TABLE_SIZE)

  /// A new inner map holding `backendIDs` (exactly `size` of them; 0 = empty slot, which
  /// the datapath treats as "fall back to random").
  public static func make(_ backendIDs: [UInt32]) throws(BPFError) -> BPFMap {
    guard backendIDs.count == size else {
      throw .invalid("Maglev table: \(backendIDs.count) slots, need \(size)")
    }
    let map = try BPFMap.create(
      .array, name: "jnc_maglev", keySize: 4, valueSize: 4 * size, maxEntries: 1)
    try map.update(UInt32(0), elements: backendIDs)
    return map
  }

  /// Installs `backendIDs` as the table of the service with `revNatID` in `outer` (the
  /// JUNCTION_MAP_LB4_MAGLEV map), replacing any previous table atomically.
  public static func install(_ backendIDs: [UInt32], revNatID: UInt16, in outer: BPFMap)
    throws(BPFError)
  {
    let table = try make(backendIDs)
    try outer.update(junction_lb4_revnat_key(rev_nat_id: revNatID, pad: 0), innerMap: table)
  }

  /// The table of the service with `revNatID`, or nil when it has none.
  public static func read(revNatID: UInt16, in outer: BPFMap) throws(BPFError) -> [UInt32]? {
    guard
      let id = try outer.innerMapID(junction_lb4_revnat_key(rev_nat_id: revNatID, pad: 0))
    else { return nil }
    return try BPFMap.open(id: id).lookup(UInt32(0), elements: UInt32.self)
  }

  /// Removes the service's table; false when it had none.
  @discardableResult
  public static func remove(revNatID: UInt16, in outer: BPFMap) throws(BPFError) -> Bool {
    try outer.delete(junction_lb4_revnat_key(rev_nat_id: revNatID, pad: 0))
  }
}
