import XCTest

@testable import AgentCore

/// `--proxy-redirect NS/NAME[:PORT,...]=PROXYPORT` and its config key.
final class ProxyRedirectFlagTests: XCTestCase {
  func testParse() throws {
    XCTAssertEqual(
      try ProxyRedirectFlag.parse("default/web=15001").get(),
      ProxyRedirectFlag(namespace: "default", name: "web", ports: [], proxyPort: 15001))
    XCTAssertEqual(
      try ProxyRedirectFlag.parse("shop/api:80,8443=15002").get(),
      ProxyRedirectFlag(namespace: "shop", name: "api", ports: [80, 8443], proxyPort: 15002))
    for bad in [
      "web=15001", "default/web", "default/web=0", "default/web=70000", "default/web:x=1",
      "default/web:=1", "/web=1", "a/b/c=1", "default/web:80:81=1", "default/web=1=2",
    ] {
      guard case .failure(let error) = ProxyRedirectFlag.parse(bad) else {
        XCTFail("\(bad) parsed")
        continue
      }
      XCTAssertTrue(error.description.hasPrefix("--proxy-redirect \"\(bad)\": "), error.description)
    }
  }

  func testConfigKeyAndFlagsResolve() throws {
    let file = try AgentConfigFile.parse(
      Array(#"{"proxy-redirect": ["default/web=15001", "default/api:80=15002"]}"#.utf8))
    XCTAssertEqual(file.proxyRedirects, ["default/web=15001", "default/api:80=15002"])
    let fromFile = AgentSettings.resolve(
      flags: AgentConfigFile(), file: file, environment: [:], hostname: "h")
    XCTAssertEqual(fromFile.proxyRedirects.map(\.proxyPort), [15001, 15002])
    XCTAssertNil(fromFile.problem)
    // Flags replace the file's list.
    let fromFlags = AgentSettings.resolve(
      flags: AgentConfigFile(proxyRedirects: ["x/y=9"]), file: file, environment: [:],
      hostname: "h")
    XCTAssertEqual(fromFlags.proxyRedirects.map(\.name), ["y"])
    let bad = AgentSettings.resolve(
      flags: AgentConfigFile(proxyRedirects: ["nope"]), file: nil, environment: [:], hostname: "h")
    XCTAssertTrue(
      bad.problem?.hasPrefix("--proxy-redirect \"nope\"") ?? false, "\(bad.problem ?? "")")
    XCTAssertThrowsError(try AgentConfigFile.parse(Array(#"{"proxy-redirect": "a/b=1"}"#.utf8))) {
      XCTAssertTrue("\($0)".contains("'proxy-redirect' must be an array"), "\($0)")
    }
  }
}
