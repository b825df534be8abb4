import AgentCore
import CNIConfigEditing
import CNIKit
import FlowPipeline
import KubernetesWire
import ServiceCore

/// The decoders that read untrusted bytes, each as one fuzz harness (issue 16, part 3):
/// whatever the input, each must return a value or throw its typed error, never trap.
/// The fuzzer (`fuzz/run.sh`) picks one with JUNCTION_FUZZ_TARGET; the replayer (`--replay`)
/// runs the committed corpus through all of them.
enum Harnesses {
  static let names = [
    "cni-config", "conflist", "endpoint-request", "k8s-yaml", "k8s-api", "agent-request",
  ]

  static func run(_ name: String, _ input: [UInt8]) {
    switch name {
    case "cni-config": cniConfig(input)
    case "conflist": conflist(input)
    case "endpoint-request": endpointRequest(input)
    case "k8s-yaml": kubernetesYAML(input)
    case "k8s-api": kubernetesAPI(input)
    case "agent-request": agentRequest(input)
    default: break
    }
  }

  /// The plugin's stdin under every command, and the environment (the input's lines as
  /// KEY=VALUE, as a runtime would set them).
  static func cniConfig(_ input: [UInt8]) {
    for command in CNICommand.allCases {
      _ = try? JunctionConfig.parse(input, for: command)
    }
    var environment: [String: String] = [:]
    for line in String(decoding: input, as: UTF8.self).split(separator: "\n") {
      let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
    }
    _ = try? CNIRequest.from(environment: environment)
    _ = try? CNIRequest.parseArgs(String(decoding: input, as: UTF8.self))
  }

  /// junction-install's editor of the node's CNI config files.
  static func conflist(_ input: [UInt8]) {
    let entry = JunctionEntry(agentSocket: "/run/junction/agent.sock")
    _ = try? ConflistEditor.chain(conflist: input, entry: entry)
    _ = try? ConflistEditor.unchain(conflist: input)
    _ = try? ConflistEditor.convert(conf: input, fileName: "10-fuzz.conf", entry: entry)
  }

  /// The agent's PUT /v1/endpoints/ID body.
  static func endpointRequest(_ input: [UInt8]) {
    _ = try? EndpointRequest.decode(input, pathID: "fuzz:eth0")
    _ = try? EndpointRequest.decode(input)
  }

  /// POST /v1/resources/apply and the Kubernetes manifests: YAML or JSON documents.
  static func kubernetesYAML(_ input: [UInt8]) {
    _ = ResourceDecoder.decode(yaml: String(decoding: input, as: UTF8.self))
  }

  /// What an API server sends the agent's Kubernetes client: a LIST page, a watch stream
  /// (split into objects, each a watch event), a Status of a refused request. Two
  /// properties on top of "no trap": a value the reader builds is written back (CNIKit's
  /// serializer, as the agent's writes do) and read again as the same value; and a watch
  /// body split in one chunk or in small ones comes out as the same objects (the server's
  /// chunks need not line up with them).
  static func kubernetesAPI(_ input: [UInt8]) {
    let resource = APIResource(
      group: "discovery.k8s.io", version: "v1", plural: "endpointslices", kind: "EndpointSlice")
    if let value = try? JSONReader.parse(input) {
      let again = try? JSONReader.parse(value.serialized())
      precondition(again == value, "JSONReader: a value does not survive serialized()")
      _ = APIError.fromStatus(value, resource: resource)
    }
    _ = try? ListPage.decode(input)
    _ = APIError.from(statusCode: 500, body: input, verb: "list", resource: resource)
    var whole = JSONStreamSplitter()
    let objects = whole.feed(input)
    var pieces = JSONStreamSplitter()
    var chunked: [[UInt8]] = []
    let step = 1 + Int(input.first ?? 0) % 7
    var start = 0
    while start < input.count {
      chunked += pieces.feed(input[start..<min(start + step, input.count)])
      start += step
    }
    precondition(chunked == objects, "JSONStreamSplitter: the chunking changed the objects")
    precondition(pieces.pendingCount == whole.pendingCount, "JSONStreamSplitter: pending differs")
    for object in objects { _ = try? WatchEvent.decode(object) }
  }

  /// A request to the agent's API as the responder reads it: the first line is
  /// "METHOD PATH?QUERY", the rest the body. The route (percent-decoded endpoint ids), the
  /// flow query (GET /v1/flows?since=... once trapped), and the body of an endpoint PUT or
  /// of a resources apply/delete.
  static func agentRequest(_ input: [UInt8]) {
    let newline = input.firstIndex(of: UInt8(ascii: "\n")) ?? input.count
    let line = String(decoding: input[..<newline], as: UTF8.self)
    let body = Array(input[min(newline + 1, input.count)...])
    let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
    let method = String(parts[0])
    let target = parts.count > 1 ? String(parts[1]) : "/"
    let pathEnd = target.firstIndex(of: "?") ?? target.endIndex
    let query = pathEnd < target.endIndex ? String(target[target.index(after: pathEnd)...]) : ""
    switch APIRoute.resolve(method: method, path: String(target[..<pathEnd])) {
    case .putEndpoint(let id): _ = try? EndpointRequest.decode(body, pathID: id)
    case .changeResources: _ = ResourceDecoder.decode(yaml: String(decoding: body, as: UTF8.self))
    default: break
    }
    _ = try? FlowQuery.parse(query)
  }
}
