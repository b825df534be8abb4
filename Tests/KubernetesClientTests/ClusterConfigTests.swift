import FoundationEssentials
import XCTest

@testable import KubernetesClient

final class ClusterConfigTests: XCTestCase {
  struct Missing: Error {}

  func files(_ contents: [String: String]) -> FileReader {
    { path in
      guard let text = contents[path] else { throw Missing() }
      return Array(text.utf8)
    }
  }

  func testInClusterUsesTheEnvironmentAndTheServiceAccountFiles() throws {
    let reader = files(["/sa/ca.crt": "CA", "/sa/token": "t1"])
    let config = try XCTUnwrap(
      ClusterConfig.inCluster(
        environment: ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"],
        directory: "/sa", readFile: reader))
    XCTAssertEqual(config.server, "https://10.0.0.1:443")
    XCTAssertEqual(config.certificateAuthority, Array("CA".utf8))
    XCTAssertEqual(config.credentials, .tokenFile("/sa/token"))
    XCTAssertEqual(config.source, "in-cluster")

    let v6 = try XCTUnwrap(
      ClusterConfig.inCluster(
        environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"],
        directory: "/sa", readFile: reader))
    XCTAssertEqual(v6.server, "https://[fd00::1]:6443")
  }

  func testNotInClusterWithoutTheVariables() throws {
    XCTAssertNil(try ClusterConfig.inCluster(environment: [:], readFile: files([:])))
    XCTAssertThrowsError(
      try ClusterConfig.inCluster(
        environment: ["KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"],
        directory: "/none", readFile: files([:])))
  }

  func testKubeconfigCurrentContextWithInlineData() throws {
    let ca = Data("CA-PEM".utf8).base64EncodedString()
    let cert = Data("CERT".utf8).base64EncodedString()
    let key = Data("KEY".utf8).base64EncodedString()
    let text = """
      apiVersion: v1
      kind: Config
      current-context: b
      contexts:
      - name: a
        context: {cluster: one, user: u1}
      - name: b
        context: {cluster: two, user: u2}
      clusters:
      - name: one
        cluster: {server: "https://one:6443"}
      - name: two
        cluster:
          server: https://127.0.0.1:6443/
          certificate-authority-data: \(ca)
          tls-server-name: api.example
      users:
      - name: u1
        user: {token: abc}
      - name: u2
        user:
          client-certificate-data: \(cert)
          client-key-data: \(key)
      """
    let config = try ClusterConfig.kubeconfig(
      text: text, path: "/k/config", directory: "/k", readFile: files([:]))
    XCTAssertEqual(config.server, "https://127.0.0.1:6443")
    XCTAssertEqual(config.certificateAuthority, Array("CA-PEM".utf8))
    XCTAssertEqual(
      config.credentials,
      .clientCertificate(certificate: Array("CERT".utf8), key: Array("KEY".utf8)))
    XCTAssertEqual(config.tlsServerName, "api.example")
    XCTAssertEqual(config.source, "kubeconfig /k/config (context b)")
  }

  func testKubeconfigFilesResolveAgainstItsDirectoryAndTokens() throws {
    let text = """
      current-context: c
      contexts: [{name: c, context: {cluster: k, user: u}}]
      clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority: ca.pem}}]
      users: [{name: u, user: {tokenFile: /abs/token}}]
      """
    let config = try ClusterConfig.kubeconfig(
      text: text, path: "/etc/k/config", directory: "/etc/k",
      readFile: files(["/etc/k/ca.pem": "PEM"]))
    XCTAssertEqual(config.certificateAuthority, Array("PEM".utf8))
    XCTAssertEqual(config.credentials, .tokenFile("/abs/token"))
    XCTAssertEqual(
      try config.overridingServer("https://192.0.2.1:6443").server, "https://192.0.2.1:6443")
    XCTAssertThrowsError(try config.overridingServer("http://192.0.2.1:6443"))
  }

  func testKubeconfigRefusesSkippingVerificationAndSaysWhatIsMissing() {
    func message(_ text: String) -> String {
      do {
        _ = try ClusterConfig.kubeconfig(
          text: text, path: "kc", directory: ".", readFile: files([:]))
        return "accepted"
      } catch {
        return error.description
      }
    }
    XCTAssertEqual(
      message(
        """
        current-context: c
        contexts: [{name: c, context: {cluster: k}}]
        clusters: [{name: k, cluster: {server: "https://h:1", insecure-skip-tls-verify: true}}]
        """),
      "kubeconfig kc: insecure-skip-tls-verify is not supported: give the cluster's certificate-authority"
    )
    XCTAssertEqual(
      message("current-context: x\ncontexts: []"),
      "kubeconfig kc: contexts has no entry named \"x\"")
    XCTAssertEqual(message("kind: Config"), "kubeconfig kc: current-context is not set")
  }
}
