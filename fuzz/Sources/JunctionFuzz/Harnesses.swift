import AgentCore
import CNIConfigEditing
import CNIKit
import ServiceCore

/// The decoders that read untrusted bytes, each as one fuzz harness (issue 16, part 3):
/// whatever the input, each must return a value or throw its typed error, never trap.
/// The fuzzer (`fuzz/run.sh`) picks one with JUNCTION_FUZZ_TARGET; the replayer (`--replay`)
/// runs the committed corpus through all of them.
enum Harnesses {
  static let names = ["cni-config", "conflist", "endpoint-request", "k8s-yaml"]

  static func run(_ name: String, _ input: [UInt8]) {
    switch name {
    case "cni-config": cniConfig(input)
    case "conflist": conflist(input)
    case "endpoint-request": endpointRequest(input)
    case "k8s-yaml": kubernetesYAML(input)
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
}
