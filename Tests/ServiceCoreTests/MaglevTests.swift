import XCTest

@testable import ServiceCore

final class MaglevTests: XCTestCase {
  private func names(_ count: Int) -> [String] {
    (0..<count).map { "10.0.\($0 / 250).\($0 % 250 + 1):80/TCP" }
  }

  func testSipHashReferenceVectors() {
    // From the SipHash paper's reference implementation: key 00 01 ... 0f.
    let k0: UInt64 = 0x0706_0504_0302_0100
    let k1: UInt64 = 0x0f0e_0d0c_0b0a_0908
    XCTAssertEqual(SipHash24.hash([UInt8](), k0: k0, k1: k1), 0x726f_db47_dd0e_0e31)
    XCTAssertEqual(SipHash24.hash([UInt8(0)], k0: k0, k1: k1), 0x74f8_39c5_93dc_67fd)
    XCTAssertEqual(SipHash24.hash((0..<15).map(UInt8.init), k0: k0, k1: k1), 0xa129_ca61_49be_45e5)
  }

  func testDeterministicAndOrderIndependent() {
    let backends = names(7)
    let table = Maglev.table(backends: backends)
    XCTAssertEqual(table.count, Maglev.defaultTableSize)
    XCTAssertEqual(Maglev.table(backends: backends), table)
    // Same set in another order: every slot names the same backend.
    let shuffled = backends.reversed() as [String]
    let other = Maglev.table(backends: shuffled)
    XCTAssertEqual(other.map { shuffled[$0] }, table.map { backends[$0] })
    // Pinned: this must never change between releases or nodes (hash, seed and M are
    // part of the wire contract between agents).
    XCTAssertEqual(Array(table.prefix(12)).map { backends[$0] }, Self.pinnedPrefix)
    XCTAssertEqual(Maglev.table(backends: []), [])
  }

  static let pinnedPrefix = [
    "10.0.0.4:80/TCP", "10.0.0.7:80/TCP", "10.0.0.2:80/TCP", "10.0.0.2:80/TCP", "10.0.0.3:80/TCP",
    "10.0.0.7:80/TCP", "10.0.0.6:80/TCP", "10.0.0.1:80/TCP", "10.0.0.4:80/TCP", "10.0.0.6:80/TCP",
    "10.0.0.1:80/TCP", "10.0.0.2:80/TCP",
  ]

  func testEvenSpread() {
    for count in [1, 3, 10, 100] {
      let table = Maglev.table(backends: names(count))
      var slots = [Int](repeating: 0, count: count)
      for index in table { slots[index] += 1 }
      let ideal = Double(Maglev.defaultTableSize) / Double(count)
      for share in slots {
        XCTAssertLessThanOrEqual(
          abs(Double(share) - ideal) / ideal, 0.01, "N=\(count): \(share) vs \(ideal)")
      }
    }
  }

  func testRemovingOneBackendMovesAboutOneNth() {
    let count = 10
    let backends = names(count)
    let before = Maglev.table(backends: backends).map { backends[$0] }
    let remaining = backends.filter { $0 != backends[3] }
    let after = Maglev.table(backends: remaining).map { remaining[$0] }
    let moved = zip(before, after).filter { $0 != $1 }.count
    let fraction = Double(moved) / Double(before.count)
    // The removed backend's own slots (1/N) must move; Maglev moves a little more than that.
    XCTAssertGreaterThanOrEqual(fraction, 1.0 / Double(count) * 0.99)
    XCTAssertLessThan(fraction, 1.0 / Double(count) * 1.5, "moved \(fraction)")
    // Flows of surviving backends mostly stay.
    let kept = zip(before, after).filter { $0 != backends[3] && $0 == $1 }.count
    let survivors = before.filter { $0 != backends[3] }.count
    XCTAssertGreaterThan(Double(kept) / Double(survivors), 0.95)
  }

  func testFrontendMaglevTableUsesBackendIDs() {
    let frontend = ServiceFrontend(
      id: 1, key: FrontendKey(address: .init("10.96.0.1")!, port: 80, proto: .tcp),
      type: .clusterIP,
      service: NamespacedName(namespace: "default", name: "a"), portName: "",
      backends: [
        ServiceBackend(
          id: 7, key: BackendKey(address: .init("10.0.0.1")!, port: 80, proto: .tcp), state: .active
        ),
        ServiceBackend(
          id: 9, key: BackendKey(address: .init("10.0.0.2")!, port: 80, proto: .tcp),
          state: .terminating),
      ])
    XCTAssertEqual(Set(frontend.maglevTable(size: 251)), [7])
    XCTAssertTrue(Maglev.supportedTableSizes.allSatisfy(Maglev.isPrime))
  }
}
