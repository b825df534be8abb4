import CNIKit

extension YAMLValue {
  /// A JSON object as the API sends it (JSON is YAML): whole numbers are integers, as YAML
  /// resolution would make them (`port: 80`).
  public init(json: JSONValue) {
    switch json {
    case .null: self = .null
    case .bool(let value): self = .bool(value)
    case .number(let value):
      if value.rounded() == value, abs(value) < 9e15 {
        self = .int(Int(value))
      } else {
        self = .float(value)
      }
    case .string(let value): self = .string(value)
    case .array(let items): self = .list(items.map(YAMLValue.init(json:)))
    case .object(let members): self = .map(members.mapValues(YAMLValue.init(json:)))
    }
  }
}

/// The cluster's objects as the agent follows them, and the edits that take the node's
/// `ServiceTable` there.
///
/// Restore, then sync, then prune: until every followed collection has listed, changes only
/// gather here (the node keeps serving its stored state); then `syncEdits` gives the one diff
/// from the stored state to the cluster's, and from then on `takePending` gives each batch
/// of changes. Only real changes become edits: an object delivered again with nothing
/// Junction reads changed (a relist, a new resourceVersion) edits nothing, so writes nothing.
public struct ClusterMirror: Sendable {
  public struct Entry: Equatable, Sendable {
    public var resource: Resource
    public var document: StoredDocument
  }

  public private(set) var objects: [ResourceKey: Entry] = [:]
  private var pending: [ResourceKey: ResourceEdit] = [:]
  /// Objects that could not be read (malformed), skipped.
  public private(set) var skipped = 0
  /// Keys of pending upserts that carry an EndpointSlice trigger time.
  public private(set) var triggerTimes: [ResourceKey: String] = [:]

  public init() {}

  public static let triggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"

  /// One object from the API. Returns the problems (each "Kind ns/name: field: why") of an
  /// object that cannot be read: it is counted and skipped, and the last good state of it,
  /// if any, is kept.
  @discardableResult
  public mutating func upsert(_ document: YAMLValue) -> [String] {
    let decoded = ResourceDecoder.decode(documents: [document])
    guard let resource = decoded.resources.first, let document = decoded.documents.first else {
      skipped += 1
      let problems = decoded.problems.flatMap(\.messages)
      return problems.isEmpty ? decoded.skipped.map(\.description) : problems
    }
    let key = resource.key
    let unchanged = objects[key]?.resource == resource
    objects[key] = Entry(resource: resource, document: document)
    if unchanged { return [] }
    pending[key] = .upsert(resource, document: document)
    if case .endpointSlice(let slice) = resource,
      let time = slice.meta.annotations[Self.triggerTimeAnnotation]
    {
      triggerTimes[key] = time
    }
    return []
  }

  public mutating func remove(_ key: ResourceKey) {
    guard objects.removeValue(forKey: key) != nil else { return }
    pending[key] = .remove(key)
    triggerTimes[key] = nil
  }

  /// The edits from `current` (what the node restored) to the cluster's objects, in one
  /// batch; clears what was pending.
  public mutating func syncEdits(against current: ResourceSet) -> [ResourceEdit] {
    pending = [:]
    var edits: [ResourceEdit] = []
    for key in objects.keys.sorted() {
      let entry = objects[key]!
      if current.objects[key] != entry.resource {
        edits.append(.upsert(entry.resource, document: entry.document))
      }
    }
    for key in current.objects.keys.sorted() where objects[key] == nil {
      edits.append(.remove(key))
    }
    return edits
  }

  /// The changes since the last call, and the trigger times they carry.
  public mutating func takePending() -> (edits: [ResourceEdit], triggerTimes: [String]) {
    let edits = pending.keys.sorted().map { pending[$0]! }
    let times = Array(triggerTimes.values)
    pending = [:]
    triggerTimes = [:]
    return (edits, times)
  }

  public var hasPending: Bool { !pending.isEmpty }
}

/// Percentiles over the latest samples (network programming latency).
public struct LatencyWindow: Sendable {
  public private(set) var count = 0
  private var samples: [Double] = []
  private var next = 0
  public let capacity: Int

  public init(capacity: Int = 1000) { self.capacity = capacity }

  public mutating func record(_ seconds: Double) {
    count += 1
    if samples.count < capacity {
      samples.append(seconds)
    } else {
      samples[next] = seconds
      next = (next + 1) % capacity
    }
  }

  /// The `fraction` percentile (nearest rank) of the kept samples, nil when none.
  public func percentile(_ fraction: Double) -> Double? {
    guard !samples.isEmpty else { return nil }
    let sorted = samples.sorted()
    let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
  }
}

/// RFC 3339 ("2026-12-06T02:19:10Z", with optional fraction and offset) → seconds since
/// the epoch, for the trigger-time annotation.
public enum RFC3339 {
  public static func seconds(_ text: String) -> Double? {
    let chars = Array(text.utf8)
    guard chars.count >= 20 else { return nil }
    func number(_ range: Range<Int>) -> Int? {
      var value = 0
      for index in range {
        guard index < chars.count, chars[index] >= 48, chars[index] <= 57 else { return nil }
        value = value * 10 + Int(chars[index] - 48)
      }
      return value
    }
    guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
      let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
      (1...12).contains(month)
    else { return nil }
    var index = 19
    var fraction = 0.0
    if index < chars.count, chars[index] == UInt8(ascii: ".") {
      index += 1
      var scale = 0.1
      while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
        fraction += Double(chars[index] - 48) * scale
        scale /= 10
        index += 1
      }
    }
    var offset = 0
    guard index < chars.count else { return nil }
    if chars[index] == UInt8(ascii: "Z") || chars[index] == UInt8(ascii: "z") {
      offset = 0
    } else if chars[index] == UInt8(ascii: "+") || chars[index] == UInt8(ascii: "-"),
      let hours = number(index + 1..<index + 3), let minutes = number(index + 4..<index + 6)
    {
      offset = (hours * 3600 + minutes * 60) * (chars[index] == UInt8(ascii: "-") ? -1 : 1)
    } else {
      return nil
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146097 + doe - 719468
    return Double(days * 86400 + hour * 3600 + minute * 60 + second - offset) + fraction
  }
}
