import CNIKit
import CNITestSupport
import XCTest

final class ResultTests: XCTestCase {
  // MARK: - Reading each version's shape

  func testDecodesA031Result() throws {
    let result = try CNIResult(
      json: json(
        """
        {
          "cniVersion": "0.3.1",
          "interfaces": [
            {"name": "cni0", "mac": "00:11:22:33:44:55"},
            {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}
          ],
          "ips": [
            {"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1},
            {"version": "6", "address": "fd00::5/64", "gateway": "fd00::1", "interface": 1}
          ],
          "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
          "dns": {"nameservers": ["10.1.0.1"], "domain": "example.com", "search": ["example.com"]}
        }
        """))
    XCTAssertEqual(
      result,
      CNIResult(
        interfaces: [
          .init(name: "cni0", mac: "00:11:22:33:44:55"),
          .init(name: "eth0", mac: "99:88:77:66:55:44", sandbox: "/var/run/netns/blue"),
        ],
        ips: [
          .init(address: prefix("10.1.0.5/16"), gateway: address("10.1.0.1"), interface: 1),
          .init(address: prefix("fd00::5/64"), gateway: address("fd00::1"), interface: 1),
        ],
        routes: [
          .init(dst: prefix("0.0.0.0/0")), .init(dst: prefix("::/0"), gw: address("fd00::1")),
        ],
        dns: .init(nameservers: ["10.1.0.1"], domain: "example.com", search: ["example.com"])))
  }

  func testDecodesA040Result() throws {
    let result = try CNIResult(
      json: json(
        """
        {
          "cniVersion": "0.4.0",
          "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/blue"}],
          "ips": [{"version": "4", "address": "192.168.1.10/24", "interface": 0}],
          "dns": {}
        }
        """))
    XCTAssertEqual(result.interfaces, [.init(name: "eth0", sandbox: "/var/run/netns/blue")])
    XCTAssertEqual(result.ips, [.init(address: prefix("192.168.1.10/24"), interface: 0)])
    XCTAssertEqual(result.routes, [])
    XCTAssertTrue(result.dns.isEmpty)
  }

  func testDecodesA100Result() throws {
    let result = try CNIResult(
      json: json(
        """
        {
          "cniVersion": "1.0.0",
          "interfaces": [
            {"name": "cni0", "mac": "00:11:22:33:44:55"},
            {"name": "veth3243", "mac": "55:44:33:22:11:11"},
            {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}
          ],
          "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2}],
          "routes": [{"dst": "0.0.0.0/0"}],
          "dns": {"nameservers": ["10.1.0.1"]}
        }
        """))
    XCTAssertEqual(result.interfaces.map(\.name), ["cni0", "veth3243", "eth0"])
    XCTAssertEqual(result.interfaces[2].sandbox, "/var/run/netns/blue")
    XCTAssertNil(result.interfaces[0].sandbox)
    XCTAssertEqual(
      result.ips,
      [.init(address: prefix("10.1.0.5/16"), gateway: address("10.1.0.1"), interface: 2)])
    XCTAssertEqual(result.routes, [.init(dst: prefix("0.0.0.0/0"))])
    XCTAssertEqual(result.dns, .init(nameservers: ["10.1.0.1"]))
  }

  func testDecodesAnIPAMResultWithoutInterfaces() throws {
    // What host-local prints: no interfaces, no interface index.
    let result = try CNIResult(
      json: json(
        """
        {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.7/24", "gateway": "10.1.0.1"}], "dns": {}}
        """))
    XCTAssertEqual(result.interfaces, [])
    XCTAssertEqual(
      result.ips, [.init(address: prefix("10.1.0.7/24"), gateway: address("10.1.0.1"))])
  }

  func testDecodesA110ResultWithExtendedFields() throws {
    let result = try CNIResult(
      json: json(
        """
        {
          "cniVersion": "1.1.0",
          "interfaces": [{"name": "eth0", "mtu": 9000, "socketPath": "/run/s.sock", "pciID": "0000:00:1f.6"}],
          "routes": [{"dst": "10.0.0.0/8", "mtu": 1400, "advmss": 1360, "priority": 10, "table": 100, "scope": 253}]
        }
        """))
    XCTAssertEqual(
      result.interfaces,
      [.init(name: "eth0", mtu: 9000, socketPath: "/run/s.sock", pciID: "0000:00:1f.6")])
    XCTAssertEqual(
      result.routes,
      [
        .init(
          dst: prefix("10.0.0.0/8"), mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 253)
      ])
  }

  // MARK: - Reading errors

  func testBadAddressIsCode6NamingThePath() {
    assertCNIError(
      try CNIResult(json: json(#"{"ips": [{"address": "10.1.0.300/24"}]}"#)), code: .decodeFailure,
      mentioning: ["result.ips[0].address", "10.1.0.300/24"])
    assertCNIError(
      try CNIResult(
        json: json(#"{"ips": [{"address": "10.1.0.5/24"}, {"address": "10.1.0.6"}]}"#)),
      code: .decodeFailure, mentioning: ["result.ips[1].address"])
    assertCNIError(
      try CNIResult(json: json(#"{"ips": [{"gateway": "10.1.0.1"}]}"#)), code: .decodeFailure,
      mentioning: ["result.ips[0].address"])
  }

  func testOtherBadFieldsAreCode6NamingThePath() {
    assertCNIError(
      try CNIResult(json: json(#"{"ips": [{"address": "10.1.0.5/24", "gateway": "nope"}]}"#)),
      code: .decodeFailure, mentioning: ["result.ips[0].gateway"])
    assertCNIError(
      try CNIResult(json: json(#"{"routes": [{"dst": "0.0.0.0/0", "gw": "x"}]}"#)),
      code: .decodeFailure, mentioning: ["result.routes[0].gw"])
    assertCNIError(
      try CNIResult(json: json(#"{"interfaces": [{"mac": "00:11:22:33:44:55"}]}"#)),
      code: .decodeFailure, mentioning: ["result.interfaces[0].name"])
    assertCNIError(
      try CNIResult(json: json(#"{"ips": [{"address": "10.1.0.5/24", "interface": "0"}]}"#)),
      code: .decodeFailure, mentioning: ["result.ips[0].interface"])
    assertCNIError(
      try CNIResult(json: json(#"{"ips": {"address": "10.1.0.5/24"}}"#)), code: .decodeFailure,
      mentioning: ["result.ips"])
    assertCNIError(
      try CNIResult(json: json(#"{"dns": {"nameservers": "10.1.0.1"}}"#)), code: .decodeFailure,
      mentioning: ["result.dns.nameservers"])
  }

  func testNonObjectResultIsCode6() {
    assertCNIError(try CNIResult(json: json("[]")), code: .decodeFailure, mentioning: ["array"])
  }

  // MARK: - Printing

  /// A 1.1.0-rich result: every optional field set.
  private let rich = CNIResult(
    interfaces: [
      .init(name: "jnc1050df138a67", mac: "02:00:00:00:00:01", mtu: 1500),
      .init(
        name: "eth0", mac: "02:00:00:00:00:02", mtu: 1500, sandbox: "/var/run/netns/pod1",
        socketPath: "/run/vhost.sock", pciID: "0000:00:1f.6"),
    ],
    ips: [
      .init(address: prefix("10.1.0.5/32"), gateway: address("169.254.1.1"), interface: 1),
      .init(address: prefix("fd00::5/128"), gateway: address("fe80::1"), interface: 1),
    ],
    routes: [
      .init(
        dst: prefix("0.0.0.0/0"), gw: address("169.254.1.1"), mtu: 1400, advmss: 1360,
        priority: 100,
        table: 254, scope: 0),
      .init(dst: prefix("::/0"), gw: address("fe80::1")),
    ],
    dns: .init(
      nameservers: ["10.96.0.10"], domain: "cluster.local", search: ["svc.cluster.local"],
      options: ["ndots:5"]))

  private let dnsJSON: JSONValue = [
    "nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["svc.cluster.local"],
    "options": ["ndots:5"],
  ]

  func testPrintsOldVersionsWithIPVersionAndWithoutExtendedFields() {
    for version in [CNIVersion.v030, .v031, .v040] {
      XCTAssertEqual(
        rich.json(for: version),
        [
          "cniVersion": .string(version.description),
          "interfaces": [
            ["name": "jnc1050df138a67", "mac": "02:00:00:00:00:01"],
            ["name": "eth0", "mac": "02:00:00:00:00:02", "sandbox": "/var/run/netns/pod1"],
          ],
          "ips": [
            ["version": "4", "address": "10.1.0.5/32", "gateway": "169.254.1.1", "interface": 1],
            ["version": "6", "address": "fd00::5/128", "gateway": "fe80::1", "interface": 1],
          ],
          "routes": [
            ["dst": "0.0.0.0/0", "gw": "169.254.1.1"], ["dst": "::/0", "gw": "fe80::1"],
          ],
          "dns": dnsJSON,
        ], "cniVersion \(version)")
    }
  }

  func testPrints100WithoutIPVersionOrExtendedFields() {
    XCTAssertEqual(
      rich.json(for: .v100),
      [
        "cniVersion": "1.0.0",
        "interfaces": [
          ["name": "jnc1050df138a67", "mac": "02:00:00:00:00:01"],
          ["name": "eth0", "mac": "02:00:00:00:00:02", "sandbox": "/var/run/netns/pod1"],
        ],
        "ips": [
          ["address": "10.1.0.5/32", "gateway": "169.254.1.1", "interface": 1],
          ["address": "fd00::5/128", "gateway": "fe80::1", "interface": 1],
        ],
        "routes": [["dst": "0.0.0.0/0", "gw": "169.254.1.1"], ["dst": "::/0", "gw": "fe80::1"]],
        "dns": dnsJSON,
      ])
  }

  func testPrints110WithExtendedFields() {
    XCTAssertEqual(
      rich.json(for: .v110),
      [
        "cniVersion": "1.1.0",
        "interfaces": [
          ["name": "jnc1050df138a67", "mac": "02:00:00:00:00:01", "mtu": 1500],
          [
            "name": "eth0", "mac": "02:00:00:00:00:02", "mtu": 1500,
            "sandbox": "/var/run/netns/pod1",
            "socketPath": "/run/vhost.sock", "pciID": "0000:00:1f.6",
          ],
        ],
        "ips": [
          ["address": "10.1.0.5/32", "gateway": "169.254.1.1", "interface": 1],
          ["address": "fd00::5/128", "gateway": "fe80::1", "interface": 1],
        ],
        "routes": [
          [
            "dst": "0.0.0.0/0", "gw": "169.254.1.1", "mtu": 1400, "advmss": 1360, "priority": 100,
            "table": 254, "scope": 0,
          ],
          ["dst": "::/0", "gw": "fe80::1"],
        ],
        "dns": dnsJSON,
      ])
  }

  func testEmptyResultPrintsOnlyVersionAndDNS() {
    XCTAssertEqual(CNIResult().json(for: .v110), ["cniVersion": "1.1.0", "dns": [:]])
  }

  func testPrintedJSONIsCompactSortedAndKeepsSlashes() {
    let result = CNIResult(
      interfaces: [.init(name: "eth0", mtu: 1500, sandbox: "/var/run/netns/p")],
      ips: [.init(address: prefix("10.1.0.5/32"), interface: 0)])
    XCTAssertEqual(
      String(decoding: result.json(for: .v110).serialized(), as: UTF8.self),
      #"{"cniVersion":"1.1.0","dns":{},"interfaces":[{"mtu":1500,"name":"eth0","sandbox":"/var/run/netns/p"}],"ips":[{"address":"10.1.0.5/32","interface":0}]}"#
    )
  }

  // MARK: - Round trip

  func testRoundTripsThrough110() throws {
    XCTAssertEqual(try CNIResult(json: rich.json(for: .v110)), rich)
    let bytes = rich.json(for: .v110).serialized()
    XCTAssertEqual(try CNIResult(json: JSONValue.parse(bytes)), rich)
  }

  func testOlderVersionsRoundTripWhatTheyCanCarry() throws {
    var reduced = rich
    for index in reduced.interfaces.indices {
      reduced.interfaces[index].mtu = nil
      reduced.interfaces[index].socketPath = nil
      reduced.interfaces[index].pciID = nil
    }
    reduced.routes[0] = .init(dst: prefix("0.0.0.0/0"), gw: address("169.254.1.1"))
    for version in [CNIVersion.v030, .v031, .v040, .v100] {
      XCTAssertEqual(try CNIResult(json: rich.json(for: version)), reduced, "cniVersion \(version)")
    }
  }
}
