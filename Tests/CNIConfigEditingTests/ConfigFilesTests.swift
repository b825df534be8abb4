import CNIConfigEditing
import Foundation
import XCTest

/// chain/unchain on real files in a temporary config directory: bytes, mode and owner come
/// back, a refused file keeps its bytes and mtime, no temp file or other file is touched.
final class ConfigFilesTests: XCTestCase {
  private var directory = ""

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "junction-conf-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: directory)
  }

  func testChainAndUnchainAConflistInPlaceKeepingModeAndOwner() throws {
    let path = try place("10-calico.conflist", mode: 0o640)
    let other = try place("20-tabs.conflist", mode: 0o644)
    let otherBefore = try Snapshot(other)
    if getuid() == 0 { XCTAssertEqual(chown(path, 1234, 5678), 0) }
    let before = try Snapshot(path)

    XCTAssertTrue(try CNIConfigFiles.chain(path, entry: JunctionEntry()).changed)
    let chained = try Snapshot(path)
    XCTAssertNotEqual(chained.bytes, before.bytes)
    XCTAssertTrue(String(decoding: chained.bytes, as: UTF8.self).contains(#""type": "junction""#))
    XCTAssertEqual(chained.mode, 0o640)
    XCTAssertEqual(chained.owner, before.owner)
    XCTAssertFalse(try CNIConfigFiles.chain(path, entry: JunctionEntry()).changed)

    XCTAssertTrue(try CNIConfigFiles.unchain(path).changed)
    let after = try Snapshot(path)
    XCTAssertEqual(after.bytes, before.bytes)
    XCTAssertEqual(after.mode, 0o640)
    XCTAssertEqual(after.owner, before.owner)
    XCTAssertFalse(try CNIConfigFiles.unchain(path).changed)

    XCTAssertEqual(try names(), ["10-calico.conflist", "20-tabs.conflist"])
    XCTAssertEqual(try Snapshot(other), otherBefore)
  }

  func testATruncatedFileIsRefusedAndLeftExactlyAsItWas() throws {
    let full = try Fixtures.bytes("10-flannel.conflist")
    let path = directory + "/10-flannel.conflist"
    try Data(full.prefix(full.count / 2)).write(to: URL(fileURLWithPath: path))
    // An mtime in the past, so a rewrite within the same second would still show.
    var times = [
      timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0),
    ]
    XCTAssertEqual(utimensat(AT_FDCWD, path, &times, 0), 0)
    let before = try Snapshot(path)

    for attempt in [
      { try CNIConfigFiles.chain(path, entry: JunctionEntry()) },
      { try CNIConfigFiles.unchain(path) },
    ] {
      XCTAssertThrowsError(try attempt()) { error in
        let text = "\(error)"
        XCTAssertTrue(text.contains("refused, nothing changed"), text)
        XCTAssertTrue(text.contains("byte \(full.count / 2)"), text)
        XCTAssertTrue(text.contains("truncated"), text)
      }
    }
    XCTAssertEqual(try Snapshot(path), before)
    XCTAssertEqual(try names(), ["10-flannel.conflist"])
  }

  func testALoneConfIsReplacedByAListAndRestoredExactly() throws {
    let conf = try place("10-mynet.conf", mode: 0o600)
    let other = try place("99-later.conflist", from: "10-flannel.conflist", mode: 0o644)
    let confBefore = try Snapshot(conf)
    let otherBefore = try Snapshot(other)
    XCTAssertEqual(try CNIConfigFiles.runtimeChoice(in: directory), "10-mynet.conf")

    XCTAssertTrue(try CNIConfigFiles.chain(conf, entry: JunctionEntry()).changed)
    XCTAssertEqual(try names(), ["10-mynet.conflist", "99-later.conflist"])
    XCTAssertEqual(try CNIConfigFiles.runtimeChoice(in: directory), "10-mynet.conflist")
    let list = try Snapshot(directory + "/10-mynet.conflist")
    XCTAssertEqual(list.mode, 0o600)
    // Chaining again, by either name, changes nothing.
    XCTAssertFalse(try CNIConfigFiles.chain(conf, entry: JunctionEntry()).changed)
    XCTAssertFalse(
      try CNIConfigFiles.chain(directory + "/10-mynet.conflist", entry: JunctionEntry()).changed)
    XCTAssertEqual(try Snapshot(directory + "/10-mynet.conflist"), list)

    XCTAssertTrue(try CNIConfigFiles.unchain(directory + "/10-mynet.conflist").changed)
    XCTAssertEqual(try names(), ["10-mynet.conf", "99-later.conflist"])
    let restored = try Snapshot(conf)
    XCTAssertEqual(restored.bytes, confBefore.bytes)
    XCTAssertEqual(restored.mode, 0o600)
    XCTAssertFalse(try CNIConfigFiles.unchain(conf).changed)
    XCTAssertEqual(try Snapshot(other), otherBefore)
  }

  func testAnInterruptedConversionIsFinishedAndAForeignListIsNeverOverwritten() throws {
    let conf = try place("10-mynet.conf", mode: 0o644)
    let original = try Fixtures.bytes("10-mynet.conf")
    let converted = try ConflistEditor.convert(
      conf: original, fileName: "10-mynet.conf", entry: JunctionEntry())
    // Crash after the list was written, before the .conf was removed: both exist.
    try Data(converted).write(to: URL(fileURLWithPath: directory + "/10-mynet.conflist"))
    XCTAssertTrue(try CNIConfigFiles.chain(conf, entry: JunctionEntry()).changed)
    XCTAssertEqual(try names(), ["10-mynet.conflist"])

    // Someone else's 20-x.conflist beside 20-x.conf: converting would overwrite it.
    let foreign = try place("20-x.conflist", from: "10-flannel.conflist", mode: 0o644)
    let lone = try place("20-x.conf", from: "10-mynet.conf", mode: 0o644)
    let foreignBefore = try Snapshot(foreign)
    XCTAssertThrowsError(try CNIConfigFiles.chain(lone, entry: JunctionEntry())) { error in
      XCTAssertTrue("\(error)".contains("refusing to overwrite"), "\(error)")
    }
    XCTAssertEqual(try Snapshot(foreign), foreignBefore)
    XCTAssertEqual(try Snapshot(lone).bytes, original)
  }

  func testConversionThatWouldChangeWhichConfigTheRuntimeLoadsIsRefused() throws {
    // 10-a.d.conf sorts between 10-a.conflist and 10-a.json: the runtime loads it today,
    // but 10-a.json turned into 10-a.conflist would jump ahead of it.
    let json = try place("10-a.json", from: "10-mynet.conf", mode: 0o644)
    _ = try place("10-a.d.conf", from: "10-mynet.conf", mode: 0o644)
    XCTAssertEqual(try CNIConfigFiles.runtimeChoice(in: directory), "10-a.d.conf")
    XCTAssertThrowsError(try CNIConfigFiles.chain(json, entry: JunctionEntry())) { error in
      XCTAssertTrue("\(error)".contains("would no longer be"), "\(error)")
    }
    XCTAssertEqual(try names(), ["10-a.d.conf", "10-a.json"])
  }

  func testRuntimeChoiceIsTheFirstConfigInByteOrder() throws {
    for name in [
      "README.md", "10-b.conflist", "10-a.json", "10-a.conflist.junction-tmp1", "Z.conf",
    ] {
      XCTAssertTrue(
        FileManager.default.createFile(atPath: directory + "/" + name, contents: Data("{}".utf8)))
    }
    try FileManager.default.createDirectory(
      atPath: directory + "/05.conf", withIntermediateDirectories: false)
    // Byte order, as Go's sort.Strings: digits, then upper case, then lower case.
    XCTAssertEqual(try CNIConfigFiles.runtimeChoice(in: directory), "10-a.json")
    try FileManager.default.removeItem(atPath: directory + "/10-a.json")
    try FileManager.default.removeItem(atPath: directory + "/10-b.conflist")
    XCTAssertEqual(try CNIConfigFiles.runtimeChoice(in: directory), "Z.conf")
  }

  func testSymlinksAndUnknownExtensionsAreRefused() throws {
    let target = try place("10-flannel.conflist", mode: 0o644)
    let link = directory + "/05-link.conflist"
    XCTAssertEqual(symlink(target, link), 0)
    XCTAssertThrowsError(try CNIConfigFiles.chain(link, entry: JunctionEntry())) { error in
      XCTAssertTrue("\(error)".contains("symbolic link"), "\(error)")
    }
    XCTAssertThrowsError(try CNIConfigFiles.chain(directory + "/x.yaml", entry: JunctionEntry()))
    XCTAssertThrowsError(try CNIConfigFiles.unchain(directory + "/missing.conflist"))
  }

  // MARK: helpers

  private func place(_ fixture: String, from source: String? = nil, mode: mode_t) throws -> String {
    let path = directory + "/" + fixture
    try Data(try Fixtures.bytes(source ?? fixture)).write(to: URL(fileURLWithPath: path))
    XCTAssertEqual(chmod(path, mode), 0)
    return path
  }

  private func names() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
  }
}

/// What must not change when a file is left alone.
private struct Snapshot: Equatable {
  var bytes: [UInt8]
  var mode: mode_t
  var owner: [UInt32]
  var mtime: [Int]
  var inode: UInt

  init(_ path: String) throws {
    var info = stat()
    guard lstat(path, &info) == 0 else { throw POSIXError(.ENOENT) }
    bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    mode = info.st_mode & 0o7777
    owner = [info.st_uid, info.st_gid]
    mtime = [info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
    inode = UInt(info.st_ino)
  }
}
