import CNIKit
import XCTest

final class AddressTests: XCTestCase {
  // MARK: - IPAddress

  func testParsesAndPrintsIPv4() throws {
    let parsed = try XCTUnwrap(IPAddress("10.1.2.3"))
    XCTAssertTrue(parsed.isIPv4)
    XCTAssertEqual(parsed.bytes, [10, 1, 2, 3])
    XCTAssertEqual(parsed.hostPrefixLength, 32)
    XCTAssertEqual(parsed.description, "10.1.2.3")
  }

  func testParsesAndPrintsIPv6() throws {
    let parsed = try XCTUnwrap(IPAddress("fd00::1"))
    XCTAssertFalse(parsed.isIPv4)
    XCTAssertEqual(parsed.bytes, [0xFD, 0] + Array(repeating: 0, count: 13) + [1])
    XCTAssertEqual(parsed.hostPrefixLength, 128)
    XCTAssertEqual(parsed.description, "fd00::1")
  }

  func testPrintsIPv6Canonically() {
    XCTAssertEqual(IPAddress("FD00:0:0:0:0:0:0:1")?.description, "fd00::1")
    XCTAssertEqual(IPAddress("fe80:0000::0001")?.description, "fe80::1")
    XCTAssertEqual(IPAddress("::")?.description, "::")
    XCTAssertEqual(IPAddress("2001:db8:0:0:1:0:0:1")?.description, "2001:db8::1:0:0:1")
  }

  func testBytesInitialiser() {
    XCTAssertEqual(IPAddress(bytes: [192, 168, 0, 1])?.description, "192.168.0.1")
    XCTAssertNil(IPAddress(bytes: [1, 2, 3]))
    XCTAssertNil(IPAddress(bytes: []))
  }

  func testAnyAddress() {
    XCTAssertEqual(IPAddress.any(likeIPv4: true).description, "0.0.0.0")
    XCTAssertEqual(IPAddress.any(likeIPv4: false).description, "::")
  }

  func testInvalidAddressesAreNil() {
    for text in [
      "", "10.1.2", "10.1.2.3.4", "256.1.1.1", "10.1.2.3/24", "fd00:::1", "fd00::1::2", "gggg::1",
      "host.example", " 10.1.2.3", "10.1.2.3 ",
    ] {
      XCTAssertNil(IPAddress(text), text)
    }
  }

  // MARK: - IPPrefix

  func testParsesAndPrintsPrefixes() throws {
    let v4 = try XCTUnwrap(IPPrefix("10.1.2.3/20"))
    XCTAssertEqual(v4.address, IPAddress("10.1.2.3"))
    XCTAssertEqual(v4.length, 20)
    XCTAssertEqual(v4.description, "10.1.2.3/20")
    let v6 = try XCTUnwrap(IPPrefix("fd00::1/64"))
    XCTAssertEqual(v6.address, IPAddress("fd00::1"))
    XCTAssertEqual(v6.length, 64)
    XCTAssertEqual(v6.description, "fd00::1/64")
  }

  func testPrefixLengthBounds() {
    XCTAssertNotNil(IPPrefix("10.1.2.3/0"))
    XCTAssertNotNil(IPPrefix("10.1.2.3/32"))
    XCTAssertNotNil(IPPrefix("fd00::1/128"))
    XCTAssertNil(IPPrefix("10.1.2.3/33"))
    XCTAssertNil(IPPrefix("fd00::1/129"))
    XCTAssertNil(IPPrefix("10.1.2.3/-1"))
    XCTAssertNil(IPPrefix(address: IPAddress("10.1.2.3")!, length: 33))
  }

  func testInvalidPrefixesAreNil() {
    for text in [
      "", "10.1.2.3", "10.1.2.3/", "/24", "10.1.2/24", "10.1.2.3/abc", "fd00:::1/64",
      "10.1.2.3/24/1",
    ] {
      XCTAssertNil(IPPrefix(text), text)
    }
  }

  func testHostPrefix() {
    XCTAssertEqual(IPPrefix("10.1.2.3/24")?.hostPrefix.description, "10.1.2.3/32")
    XCTAssertEqual(IPPrefix("fd00::1/64")?.hostPrefix.description, "fd00::1/128")
    XCTAssertEqual(IPPrefix("10.1.2.3/32")?.hostPrefix.description, "10.1.2.3/32")
  }

  func testNetworkClearsHostBits() {
    let cases = [
      ("10.1.2.3/20", "10.1.0.0/20"),
      ("10.1.2.3/24", "10.1.2.0/24"),
      ("10.1.2.3/32", "10.1.2.3/32"),
      ("10.1.2.3/0", "0.0.0.0/0"),
      ("10.1.255.255/23", "10.1.254.0/23"),
      ("192.168.77.200/25", "192.168.77.128/25"),
      ("255.255.255.255/1", "128.0.0.0/1"),
      ("fd00::1:2/112", "fd00::1:0/112"),
      ("fd00:1:2:3:4:5:6:7/64", "fd00:1:2:3::/64"),
      ("fd00::1/128", "fd00::1/128"),
      ("fd00::1/0", "::/0"),
    ]
    for (input, network) in cases {
      XCTAssertEqual(IPPrefix(input)?.network.description, network, input)
    }
  }

  func testDefaultRoute() {
    XCTAssertEqual(IPPrefix.defaultRoute(ipv4: true).description, "0.0.0.0/0")
    XCTAssertEqual(IPPrefix.defaultRoute(ipv4: false).description, "::/0")
    XCTAssertTrue(IPPrefix.defaultRoute(ipv4: true).isDefault)
    XCTAssertTrue(IPPrefix.defaultRoute(ipv4: false).isDefault)
    XCTAssertFalse(IPPrefix("10.0.0.0/8")!.isDefault)
  }

  func testPrefixesCompareByAddressAndLength() {
    XCTAssertEqual(IPPrefix("10.1.0.5/24"), IPPrefix("10.1.0.5/24"))
    XCTAssertNotEqual(IPPrefix("10.1.0.5/24"), IPPrefix("10.1.0.5/32"))
    XCTAssertNotEqual(IPPrefix("10.1.0.5/24"), IPPrefix("10.1.0.0/24"))
  }
}
