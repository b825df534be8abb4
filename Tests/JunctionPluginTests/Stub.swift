import XCTest
@testable import NetKit

let probeLink = LinkInfo(index: 1, name: "x", mac: nil, mtu: 1500, isUp: true, alias: nil, kind: nil)
