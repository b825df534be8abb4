import CNIKit
import CNITestSupport
import JunctionPlugin
import XCTest

// LinkInfo has only an internal memberwise initialiser.
@testable import NetKit

final class ChainedAttachmentTests: XCTestCase {
  private let netns = "/var/run/netns/pod1"

  /// What the reference bridge plugin returns: the bridge, the host veth, the pod's eth0.
  private var bridgeResult: CNIResult {
    CNIResult(
      interfaces: [
        .init(name: "cni0", mac: "02:00:00:00:00:01"),
        .init(name: "veth1234abcd", mac: "02:00:00:00:00:02"),
        .init(name: "eth0", mac: "02:00:00:00:00:03", sandbox: netns),
      ],
      ips: [.init(address: prefix("10.22.0.5/16"), gateway: address("10.22.0.1"), interface: 2)],
      routes: [.init(dst: prefix("0.0.0.0/0"), gw: address("10.22.0.1"))])
  }

  private func link(
    _ name: String, index: Int32, kind: String?, peer: Int32? = nil, peerNamespace: Int32? = nil
  ) -> LinkInfo {
    LinkInfo(
      index: index, name: name, mac: MACAddress("02:00:00:00:00:03"), mtu: 1500, isUp: true,
      alias: nil, kind: kind, peerIndex: peer, peerNamespaceID: peerNamespace)
  }

  // MARK: - Which interface and which addresses

  func testThePodInterfaceIsTheOneNamedInTheSandboxNotTheFirstVeth() {
    XCTAssertEqual(
      ChainedAttachment.podInterfaceIndex(in: bridgeResult, ifname: "eth0", netns: netns), 2)
    var second = bridgeResult
    second.interfaces.append(.init(name: "net1", sandbox: netns))
    XCTAssertEqual(ChainedAttachment.podInterfaceIndex(in: second, ifname: "net1", netns: netns), 3)
  }

  func testAHostInterfaceWithThePodsNameIsNotThePodsInterface() {
    let result = CNIResult(interfaces: [.init(name: "eth0"), .init(name: "eth0", sandbox: netns)])
    XCTAssertEqual(ChainedAttachment.podInterfaceIndex(in: result, ifname: "eth0", netns: netns), 1)
    let hostOnly = CNIResult(interfaces: [.init(name: "eth0")])
    XCTAssertNil(ChainedAttachment.podInterfaceIndex(in: hostOnly, ifname: "eth0", netns: netns))
  }

  func testAnotherSpellingOfTheSandboxStillMatchesByName() {
    let result = CNIResult(interfaces: [.init(name: "eth0", sandbox: "/proc/42/ns/net")])
    XCTAssertEqual(ChainedAttachment.podInterfaceIndex(in: result, ifname: "eth0", netns: netns), 0)
  }

  func testAddressesComeFromPrevResultsIPsOnThePodInterfaceAsHostPrefixes() {
    var result = bridgeResult
    result.ips.append(.init(address: prefix("10.99.0.9/24"), interface: 1))  // the host veth's
    result.ips.append(.init(address: prefix("fd00::5/64"), interface: 2))
    let addresses = ChainedAttachment.podAddresses(
      prevResult: result, podInterface: 2, kernelAddresses: [prefix("10.1.1.1/8")])
    XCTAssertEqual(addresses, [prefix("10.22.0.5/32"), prefix("fd00::5/128")])
  }

  func testWithoutIPsOnTheInterfaceTheKernelsGlobalAddressesAreUsed() {
    let result = CNIResult(
      interfaces: [.init(name: "eth0", sandbox: netns)],
      ips: [.init(address: prefix("10.22.0.5/16"))])  // no "interface": IPAM style
    let kernel = [
      prefix("10.22.0.5/16"), prefix("169.254.3.3/16"), prefix("fe80::1/64"),
      prefix("fd00::7/64"), prefix("10.22.0.5/24"),
    ]
    XCTAssertEqual(
      ChainedAttachment.podAddresses(prevResult: result, podInterface: 0, kernelAddresses: kernel),
      [prefix("10.22.0.5/32"), prefix("fd00::7/128")])
    XCTAssertEqual(
      ChainedAttachment.podAddresses(prevResult: result, podInterface: nil, kernelAddresses: []),
      [])
  }

  // MARK: - Which interfaces can be chained

  func testAVethWhosePeerIsInTheNodesNamespaceIsAccepted() {
    let pod = link("eth0", index: 2, kind: "veth", peer: 17, peerNamespace: 0)
    XCTAssertNil(ChainedAttachment.refusal(podLink: pod, nodeNamespaceID: 0))
  }

  func testMacvlanIpvlanAndHostDeviceAreRefusedWithTheReason() {
    // A macvlan reports its master as IFLA_LINK, in the node's namespace: the kind decides.
    for kind in ["macvlan", "ipvlan"] {
      let pod = link("eth0", index: 2, kind: kind, peer: 5, peerNamespace: 0)
      let reason = ChainedAttachment.refusal(podLink: pod, nodeNamespaceID: 0)
      XCTAssertTrue(reason?.contains("a \(kind) interface, not a veth") == true, "\(reason ?? "")")
      XCTAssertTrue(reason?.contains("no peer on the node") == true, "\(reason ?? "")")
    }
    // host-device moves a physical NIC in: no kind at all.
    let moved = link("eth0", index: 2, kind: nil)
    XCTAssertTrue(
      ChainedAttachment.refusal(podLink: moved, nodeNamespaceID: 0)?.contains(
        "device without a link kind") == true)
  }

  func testAVethWithItsPeerElsewhereIsRefused() {
    let inside = link("eth0", index: 2, kind: "veth", peer: 3)
    XCTAssertTrue(
      ChainedAttachment.refusal(podLink: inside, nodeNamespaceID: 0)?.contains(
        "inside the pod's own namespace") == true)
    let elsewhere = link("eth0", index: 2, kind: "veth", peer: 3, peerNamespace: 4)
    XCTAssertTrue(
      ChainedAttachment.refusal(podLink: elsewhere, nodeNamespaceID: 0)?.contains(
        "another network namespace") == true)
    XCTAssertNotNil(ChainedAttachment.refusal(podLink: elsewhere, nodeNamespaceID: nil))
  }

  func testTheHostLinkMustBeAVethPointingBackAtThePod() {
    let pod = link("eth0", index: 2, kind: "veth", peer: 17, peerNamespace: 0)
    let host = link("veth1", index: 17, kind: "veth", peer: 2, peerNamespace: 5)
    XCTAssertNil(ChainedAttachment.peerMismatch(hostLink: host, podLink: pod))
    XCTAssertNotNil(ChainedAttachment.peerMismatch(hostLink: nil, podLink: pod))
    var other = host
    other.peerIndex = 9  // ifindex 17 on the node is some other pair's end
    XCTAssertNotNil(ChainedAttachment.peerMismatch(hostLink: other, podLink: pod))
    XCTAssertNotNil(
      ChainedAttachment.peerMismatch(
        hostLink: link("cni0", index: 17, kind: "bridge"), podLink: pod))
    other = host
    other.peerNamespaceID = nil  // a pair whose both ends are on the node
    XCTAssertNotNil(ChainedAttachment.peerMismatch(hostLink: other, podLink: pod))
  }
}
