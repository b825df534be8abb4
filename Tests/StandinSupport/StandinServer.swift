import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// tools/standin-apiserver (a stand-in Kubernetes API server, test support only), started for
/// a test on 127.0.0.1 — of the test's network namespace, or of `namespace` (`ip netns exec`)
/// — in its own directory (ca.crt, token, kubeconfig, state), on a free port or `port`.
/// Stopped by its PID with `stop()`, and at the latest when the object goes.
public final class StandinServer {
  public static let repository = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
  public static let script = repository + "/tools/standin-apiserver/standin_apiserver.py"

  public let directory: String
  public let namespace: String?
  public let arguments: [String]
  private var process: Process?
  public private(set) var port = 0
  public var url: String { "https://127.0.0.1:\(port)" }
  public var kubeconfig: String { directory + "/kubeconfig" }
  public var token: String {
    (try? String(contentsOfFile: directory + "/token", encoding: .utf8)) ?? ""
  }

  /// Objects and history are kept in DIR/state.json, so a restart (`start()` after `stop()`)
  /// is an API server restart: same objects, same versions, same port.
  public init(arguments: [String] = [], namespace: String? = nil) throws {
    directory =
      NSTemporaryDirectory() + "junction-standin-\(getpid())-\(UUID().uuidString.prefix(8))"
    self.namespace = namespace
    self.arguments = arguments
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try start()
  }

  public func start() throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments =
      (namespace.map { ["ip", "netns", "exec", $0] } ?? []) + [
        "python3", Self.script, "--dir", directory, "--state", directory + "/state.json",
        "--port", String(port),
      ] + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try process.run()
    self.process = process
    // "listening PORT" once it serves.
    var line = Data()
    while true {
      let byte = output.fileHandleForReading.readData(ofLength: 1)
      if byte.isEmpty || byte == Data("\n".utf8) { break }
      line.append(byte)
    }
    let text = String(decoding: line, as: UTF8.self)
    guard text.hasPrefix("listening "), let port = Int(text.dropFirst("listening ".count)) else {
      stop()
      throw StandinFailure(description: "the stand-in API server did not start: \(text)")
    }
    self.port = port
  }

  public func stop() {
    guard let process, process.isRunning else { return }
    // SIGKILL: it keeps nothing worth a clean exit (the state file is written per change).
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }

  deinit {
    stop()
    try? FileManager.default.removeItem(atPath: directory)
  }

  /// One API request with curl (as kubectl would make it): the answer's body.
  @discardableResult
  public func request(_ method: String, _ path: String, _ body: String? = nil) throws -> String {
    let curl = Process()
    curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    var arguments =
      (namespace.map { ["ip", "netns", "exec", $0] } ?? []) + [
        "curl", "-sS", "--cacert", directory + "/ca.crt", "-H", "Authorization: Bearer \(token)",
        "-X", method, url + path,
      ]
    if let body { arguments += ["-H", "Content-Type: application/json", "-d", body] }
    curl.arguments = arguments
    let output = Pipe()
    curl.standardOutput = output
    try curl.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    curl.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
  }

  /// A ClusterIP Service `name` on `port`/TCP → 8080 (port name "http").
  public func createService(
    _ name: String, namespace: String = "default", clusterIP: String, port: Int = 80
  ) throws {
    try request(
      "POST", "/api/v1/namespaces/\(namespace)/services",
      #"{"metadata":{"name":"\#(name)"},"spec":{"type":"ClusterIP","clusterIP":"\#(clusterIP)","ports":[{"name":"http","port":\#(port),"protocol":"TCP","targetPort":8080}]}}"#
    )
  }

  /// Service `service`'s EndpointSlice `name` with these ready backends on 8080 (create, or
  /// replace when `replace`).
  public func putEndpointSlice(
    _ name: String, service: String, backends: [String], namespace: String = "default",
    replace: Bool = false
  ) throws {
    let endpoints = backends.map { #"{"addresses":["\#($0)"],"conditions":{"ready":true}}"# }
      .joined(separator: ",")
    let body =
      #"{"metadata":{"name":"\#(name)","labels":{"kubernetes.io/service-name":"\#(service)"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[\#(endpoints)]}"#
    let collection = "/apis/discovery.k8s.io/v1/namespaces/\(namespace)/endpointslices"
    try request(replace ? "PUT" : "POST", replace ? "\(collection)/\(name)" : collection, body)
  }
}

public struct StandinFailure: Error, CustomStringConvertible {
  public var description: String
}

/// Under CI a test that cannot run fails; elsewhere it is skipped with the reason.
public func requireOrSkip(_ condition: Bool, _ reason: String) throws {
  if condition { return }
  if ProcessInfo.processInfo.environment["CI"] != nil {
    throw StandinFailure(description: reason)
  }
  throw XCTSkip(reason)
}
