import AgentCore
import XCTest

/// Finding a proxy's listener: /proc/net/tcp's listening rows, the choice among several, the
/// socket inode of a descriptor, and what the map needs.
final class ProxyListenerScanTests: XCTestCase {
  private let procNetTCP = """
      sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
       0: 0100007F:3A99 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0
       1: 00000000:3A99 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 100 0 0 10 0
       2: 0A8C600A:0050 0A8CF00A:9C7B 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
       3: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 20 4 30 10 -1
       4: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0000000000000000 100 0 0 10 0
    """

  func testListeningRowsOnly() {
    let listeners = ProxyListenerScan.listeners(inProcNetTCP: procNetTCP)
    XCTAssertEqual(listeners.map(\.inode), [111, 222, 444])
    XCTAssertEqual(listeners.map(\.port), [15001, 15001, 8081])
    XCTAssertEqual(listeners.first?.address, 0x0100_007F)
  }

  func testAnyAddressListenerIsPreferred() {
    let listeners = ProxyListenerScan.listeners(inProcNetTCP: procNetTCP)
    XCTAssertEqual(ProxyListenerScan.choose(listeners, port: 15001)?.inode, 222)
    XCTAssertEqual(ProxyListenerScan.choose(listeners, port: 8081)?.inode, 444)
    XCTAssertNil(ProxyListenerScan.choose(listeners, port: 80))
  }

  func testSocketInodeOfADescriptor() {
    XCTAssertEqual(ProxyListenerScan.socketInode(linkTarget: "socket:[222]"), 222)
    XCTAssertNil(ProxyListenerScan.socketInode(linkTarget: "pipe:[222]"))
    XCTAssertNil(ProxyListenerScan.socketInode(linkTarget: "/dev/null"))
  }

  func testPlanFillsMissingPortsAndRemovesUnwantedOnes() {
    let plan = ProxyListenerScan.plan(wanted: [15001, 15002], mapped: [15002, 9000])
    XCTAssertEqual(plan.fill, [15001])
    XCTAssertEqual(plan.remove, [9000])
  }
}
