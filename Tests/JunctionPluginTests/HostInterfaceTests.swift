import CNIKit
import JunctionPlugin
import XCTest

final class HostInterfaceTests: XCTestCase {
  private let attachment = Attachment(containerID: "abc123", ifname: "eth0")

  func testNameIs15BytesOfJncAndHex() {
    for attachment in [
      attachment, Attachment(containerID: "x", ifname: "y"),
      Attachment(containerID: String(repeating: "f", count: 64), ifname: "abcdefghijklmno"),
    ] {
      let name = HostInterface.name(for: attachment)
      XCTAssertEqual(name.utf8.count, 15, name)
      XCTAssertTrue(name.hasPrefix("jnc"), name)
      XCTAssertTrue(name.dropFirst(3).allSatisfy { "0123456789abcdef".contains($0) }, name)
    }
  }

  func testNameIsStable() {
    XCTAssertEqual(HostInterface.name(for: attachment), HostInterface.name(for: attachment))
    // Pinned: a DEL after an upgrade must still find the link an older ADD created.
    // FNV-1a 64 of "abc123:eth0" = 0x1050df138a67...; the first 12 hex digits.
    XCTAssertEqual(HostInterface.name(for: attachment), "jnc1050df138a67")
  }

  func testNameDiffersForAnotherIfnameOrContainer() {
    let name = HostInterface.name(for: attachment)
    XCTAssertNotEqual(
      name, HostInterface.name(for: Attachment(containerID: "abc123", ifname: "eth1")))
    XCTAssertNotEqual(
      name, HostInterface.name(for: Attachment(containerID: "abc124", ifname: "eth0")))
    XCTAssertNotEqual(
      name, HostInterface.name(for: Attachment(containerID: "eth0", ifname: "abc123")))
  }

  func testNamesOfManyAttachmentsAreDistinct() {
    var names = Set<String>()
    for pod in 0..<500 {
      for ifname in ["eth0", "net1"] {
        names.insert(HostInterface.name(for: Attachment(containerID: "pod\(pod)", ifname: ifname)))
      }
    }
    XCTAssertEqual(names.count, 1000)
  }

  func testAliasRoundTrips() throws {
    let alias = HostInterface.alias(network: "pods", attachment: attachment)
    XCTAssertEqual(alias, "junction/pods/abc123/eth0")
    let parsed = try XCTUnwrap(HostInterface.parseAlias(alias))
    XCTAssertEqual(parsed.network, "pods")
    XCTAssertEqual(parsed.attachment, attachment)
  }

  func testAliasRoundTripsWithDotsDashesAndUnderscores() throws {
    let attachment = Attachment(containerID: "a.b-c_d", ifname: "net-1.2")
    let parsed = try XCTUnwrap(
      HostInterface.parseAlias(
        HostInterface.alias(network: "k8s-pod.network", attachment: attachment)))
    XCTAssertEqual(parsed.network, "k8s-pod.network")
    XCTAssertEqual(parsed.attachment, attachment)
  }

  func testParseAliasRejectsForeignAliases() {
    for alias in [
      "", "junction", "calico/pods/abc123/eth0", "Junction/pods/abc123/eth0",
      "junction/pods/abc123",
      "junction/pods/abc123/eth0/extra", "junction//abc123/eth0", "junction/pods//eth0",
      "junction/pods/abc123/", "/junction/pods/abc123/eth0", "k8s pod eth0",
    ] {
      XCTAssertNil(HostInterface.parseAlias(alias), alias)
    }
  }
}
