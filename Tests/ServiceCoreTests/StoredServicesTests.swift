import FoundationEssentials
import XCTest

@testable import ServiceCore

/// The agent's stored service state: a snapshot plus a journal of changes, replayed on start.
final class StoredServicesTests: XCTestCase {
  static let webYAML = Fixtures.service(name: "web", clusterIP: "10.96.0.40")
  private let web = StoredServicesTests.webYAML
  private let webSlice = Fixtures.slice(
    service: "web", endpoints: [("10.0.0.7", true, true, false)])

  /// Applies `yaml` to `table` and returns the journal record the agent would append.
  private func change(
    _ table: inout ServiceTable, _ action: ApplyPlan.Action, _ yaml: String, sequence: UInt64
  ) throws -> ServiceJournalRecord {
    let plan = ApplyPlan(action, yaml: yaml)
    let update = try plan.update(for: table)
    table.commit(update)
    return ServiceJournalRecord(sequence: sequence, edits: plan.edits, update: update)
  }

  private func encoded(_ records: [ServiceJournalRecord]) throws -> [UInt8] {
    try records.flatMap { try ServiceJournal.encode($0) }
  }

  func testSnapshotAndJournalRestoreTheSameObjectsAndIDs() throws {
    var table = ServiceTable()
    let first = try change(&table, .apply, Fixtures.list, sequence: 1)
    let snapshot = ServiceSnapshot(resources: table.resources, ids: table.ids, sequence: 1)
    let records = [
      try change(&table, .apply, web + "\n---\n" + webSlice, sequence: 2),
      try change(&table, .delete, web, sequence: 3),
    ]
    // Through JSON, as on disk; record 1 is already in the snapshot and is skipped.
    let snapshotJSON = try JSONEncoder().encode(snapshot)
    let decoded = try JSONDecoder().decode(ServiceSnapshot.self, from: snapshotJSON)
    let parsed = try ServiceJournal.parse(try encoded([first] + records))
    let restored = try ServiceJournal.restore(snapshot: decoded, records: parsed.records)
    XCTAssertEqual(restored.sequence, 3)
    XCTAssertEqual(restored.resources, table.resources)
    XCTAssertEqual(restored.ids, table.ids)
    // Replaying the journal alone, from nothing, gives the same.
    let replayed = try ServiceJournal.restore(snapshot: nil, records: parsed.records)
    XCTAssertEqual(replayed.resources, table.resources)
    XCTAssertEqual(replayed.ids, table.ids)
  }

  func testATornLastRecordIsDroppedAndADamagedEarlierOneIsAnError() throws {
    var table = ServiceTable()
    let records = [
      try change(&table, .apply, Fixtures.list, sequence: 1),
      try change(&table, .apply, web, sequence: 2),
    ]
    let whole = try encoded(records)
    let firstLength = try ServiceJournal.encode(records[0]).count
    for cut in [whole.count - 1, whole.count - 10, firstLength + 3] {
      let parsed = try ServiceJournal.parse(Array(whole[..<cut]))
      XCTAssertEqual(parsed.records, [records[0]], "cut at \(cut)")
      XCTAssertEqual(parsed.validLength, firstLength)
    }
    var damaged = whole
    damaged[5] = UInt8(ascii: "#")
    XCTAssertThrowsError(try ServiceJournal.parse(damaged)) {
      XCTAssertTrue("\($0)".contains("journal line 1 is damaged"), "\($0)")
    }
  }

  /// A compaction closes the journal segment, then writes the snapshot of the state at
  /// that point: before the snapshot, after it, and with the closed segment removed, the
  /// files restore the same state.
  func testTheSnapshotAndSegmentsOfACompactionRestoreTheSameAtEveryStep() throws {
    var table = ServiceTable()
    let closed = [try change(&table, .apply, Fixtures.list, sequence: 1)]
    let atSwitch = ServiceSnapshot(resources: table.resources, ids: table.ids, sequence: 1)
    let open = [
      try change(&table, .apply, web + "\n---\n" + webSlice, sequence: 2),
      try change(&table, .delete, web, sequence: 3),
    ]
    let steps: [(String, ServiceSnapshot?, [ServiceJournalRecord])] = [
      ("before the snapshot", nil, closed + open), ("after it", atSwitch, closed + open),
      ("segment removed", atSwitch, open),
    ]
    for (step, snapshot, records) in steps {
      let restored = try ServiceJournal.restore(snapshot: snapshot, records: records)
      XCTAssertEqual(restored.resources, table.resources, step)
      XCTAssertEqual(restored.ids, table.ids, step)
      XCTAssertEqual(restored.sequence, 3, step)
    }
  }

  func testAGapInTheJournalIsAnError() throws {
    var table = ServiceTable()
    let one = try change(&table, .apply, Fixtures.list, sequence: 1)
    let three = try change(&table, .apply, web, sequence: 3)
    XCTAssertThrowsError(try ServiceJournal.restore(snapshot: nil, records: [one, three])) {
      XCTAssertTrue("\($0)".contains("skips from change 1 to 3"), "\($0)")
    }
  }

  func testTheSnapshotIsAListThatApplyReadsAsIs() throws {
    var table = ServiceTable()
    _ = try change(&table, .apply, Fixtures.list + "\n---\n" + web, sequence: 1)
    let snapshot = ServiceSnapshot(resources: table.resources, ids: table.ids, sequence: 1)
    let json = String(decoding: try JSONEncoder().encode(snapshot), as: UTF8.self)
    XCTAssertEqual(
      try ApplyPlan(.apply, yaml: json).result(applyingTo: ResourceSet()), table.resources)
  }
}

final class DocumentWriterTests: XCTestCase {
  /// What the writer writes reads back, through `YAMLValue`'s Decodable, as the same value,
  /// and is what `JSONEncoder` (keys sorted, slashes unescaped) writes for plain keys.
  func testWritesJSONThatReadsBackTheSame() throws {
    let value: YAMLValue = .map([
      "apiVersion": .string("v1"), "kind": .string("Service"),
      "metadata": .map([
        "name": .string("web"), "labels": .map(["a/b": .string("q\"uote\\ \n\t\u{01} é 😀")]),
      ]),
      "spec": .map([
        "ports": .list([.map(["port": .int(80), "targetPort": .string("http")])]),
        "clusterIP": .null, "flag": .bool(true), "off": .bool(false), "ratio": .float(0.25),
        "empty": .list([]), "none": .map([:]), "negative": .int(-3),
      ]),
    ])
    var bytes: [UInt8] = []
    try DocumentWriter.append(value, to: &bytes)
    XCTAssertEqual(try JSONDecoder().decode(YAMLValue.self, from: Data(bytes)), value)
    let plain: YAMLValue = .map([
      "b": .list([.int(1), .string("x/y")]), "a": .map(["d": .bool(true), "c": .null]),
    ])
    var written: [UInt8] = []
    try DocumentWriter.append(plain, to: &written)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    XCTAssertEqual(
      String(decoding: written, as: UTF8.self),
      String(decoding: try encoder.encode(plain), as: UTF8.self))
    XCTAssertThrowsError(try DocumentWriter.append(.float(.infinity), to: &written))
  }
}

extension DocumentWriterTests {
  /// A journal record written directly is what `JSONEncoder` writes for it (keys sorted).
  func testAJournalRecordIsWhatJSONEncoderWrites() throws {
    let table = StableIDTable<L4Address>(maxID: 100)
    var services = table.draft()
    var backends = table.draft()
    // Sorted as text ("10.96.0.10" before "10.96.0.9"), as JSONEncoder sorts keys.
    for key in ["10.96.0.9:80/TCP", "10.96.0.10:53/UDP", "[fd00:96::a]:53/UDP"] {
      _ = table.id(for: try XCTUnwrap(L4Address(description: key)), in: &services)
    }
    for key in ["10.0.0.1:8080/TCP", "10.0.0.2:8080/TCP"] {
      _ = table.id(for: try XCTUnwrap(L4Address(description: key)), in: &backends)
    }
    let record = ServiceJournalRecord(
      sequence: 7,
      stored: [StoredDocument(.map(["kind": .string("Service"), "spec": .map(["x": .int(1)])]))],
      removed: [ResourceKey(kind: .service, namespace: "default", name: "old")],
      ids: LoadBalancerIDChanges(services: services, backends: backends))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    XCTAssertEqual(
      String(decoding: try ServiceJournal.encode(record), as: UTF8.self),
      String(decoding: try encoder.encode(record), as: UTF8.self) + "\n")
    XCTAssertEqual(try ServiceJournal.parse(try ServiceJournal.encode(record)).records, [record])
  }
}

/// Documents are kept as their JSON bytes (`StoredDocument`), not as trees.
final class StoredDocumentTests: XCTestCase {
  private let tree: YAMLValue = .map([
    "apiVersion": .string("v1"), "kind": .string("Service"),
    "metadata": .map(["name": .string("web"), "labels": .map(["a/b": .string("q\"é")])]),
    "spec": .map(["ports": .list([.map(["port": .int(80), "ratio": .float(0.5)])])]),
  ])

  /// The bytes kept are what `DocumentWriter` writes for the tree, and read back as it.
  func testKeepsTheWritersBytesAndReadsBackTheTree() throws {
    let document = StoredDocument(tree)
    var kept: [UInt8] = []
    try DocumentWriter.appendList([document, document], to: &kept)
    var written: [UInt8] = []
    try DocumentWriter.appendList([tree, tree], to: &written)
    XCTAssertEqual(String(decoding: kept, as: UTF8.self), String(decoding: written, as: UTF8.self))
    XCTAssertEqual(try document.value, tree)
    XCTAssertEqual(StoredDocument(try document.value), document)
    XCTAssertNotEqual(StoredDocument(.map(["kind": .string("Service")])), document)
  }

  /// A float JSON cannot hold is refused when the document is journaled, as before.
  func testANonFiniteFloatStillFailsWhenWritten() throws {
    let document = StoredDocument(.map(["x": .float(.infinity)]))
    XCTAssertEqual(try document.value, .map(["x": .float(.infinity)]))
    var out: [UInt8] = []
    XCTAssertThrowsError(try DocumentWriter.appendList([document], to: &out))
    let record = ServiceJournalRecord(
      sequence: 1, stored: [document], removed: [],
      ids: LoadBalancerIDChanges(
        services: StableIDTable(maxID: 10).draft(), backends: StableIDTable(maxID: 10).draft()))
    XCTAssertThrowsError(try ServiceJournal.encode(record))
  }

  /// An apply's decoded documents are the stored form of each object's tree, also for the
  /// items of a `kind: List`, and restore decodes the same resources from them.
  func testDecodedDocumentsAreEachObjectsBytes() throws {
    let yaml = Fixtures.list + "\n---\n" + StoredServicesTests.webYAML
    let decoded = ResourceDecoder.decode(yaml: yaml)
    XCTAssertTrue(decoded.problems.isEmpty, "\(decoded.problems)")
    XCTAssertEqual(decoded.documents.count, decoded.resources.count)
    let trees = try YAMLValue.documents(yaml)
    var objects: [YAMLValue] = []
    for tree in trees {
      if case .map(let map) = tree, case .list(let items)? = map["items"] {
        objects += items
      } else {
        objects.append(tree)
      }
    }
    XCTAssertEqual(decoded.documents, objects.map(StoredDocument.init))
    let again = ResourceDecoder.decode(stored: decoded.documents)
    XCTAssertEqual(again.resources, decoded.resources)
    XCTAssertEqual(again.documents, decoded.documents)
  }
}
