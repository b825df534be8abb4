import AgentCore
import Foundation
import KubernetesClient
import ServiceCore
import XCTest
import Yams

/// install/kubernetes/*.yaml parse, hold the objects a cluster install needs, and are
/// internally consistent: every volumeMount has its volume, the shared paths sit where the
/// plugin on the node looks for them, the RBAC covers every kind the agent decodes, and the
/// init containers chain and unchain.
final class KubernetesManifestTests: XCTestCase {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("install/kubernetes")

  func testInstallManifestHasEveryObjectInOneNamespace() throws {
    let objects = try Self.load("junction.yaml")
    XCTAssertEqual(
      objects.map { $0["kind"] as? String ?? "?" },
      ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"])
    let namespace = try XCTUnwrap(Self.metadata(objects[0])["name"] as? String)
    for object in objects where ["ServiceAccount", "DaemonSet"].contains(object["kind"] as? String)
    {
      XCTAssertEqual(Self.metadata(object)["namespace"] as? String, namespace)
    }
    let binding = try XCTUnwrap(objects.first { $0["kind"] as? String == "ClusterRoleBinding" })
    let roleRef = try XCTUnwrap(binding["roleRef"] as? [String: Any])
    XCTAssertEqual(roleRef["kind"] as? String, "ClusterRole")
    XCTAssertEqual(roleRef["name"] as? String, Self.metadata(objects[2])["name"] as? String)
    let subject = try XCTUnwrap((binding["subjects"] as? [[String: Any]])?.first)
    XCTAssertEqual(subject["kind"] as? String, "ServiceAccount")
    XCTAssertEqual(subject["name"] as? String, Self.metadata(objects[1])["name"] as? String)
    XCTAssertEqual(subject["namespace"] as? String, namespace)
    let pod = try Self.podSpec(objects[4])
    XCTAssertEqual(pod["serviceAccountName"] as? String, subject["name"] as? String)
  }

  /// RBAC is exactly list and watch of what the agent follows (APIResource.followed), and
  /// that covers every kind ServiceCore decodes; plus exactly the Ingress side's two writes
  /// (create Services, patch the Ingress status subresource).
  func testClusterRoleIsExactlyListAndWatchOfWhatTheAgentFollowsAndTheIngressWrites() throws {
    let role = try XCTUnwrap(
      try Self.load("junction.yaml").first { $0["kind"] as? String == "ClusterRole" })
    let rules = try XCTUnwrap(role["rules"] as? [[String: Any]])
    var granted: Set<String> = []
    var writes: Set<String> = []
    for rule in rules {
      let verbs = Set(rule["verbs"] as? [String] ?? [])
      for group in rule["apiGroups"] as? [String] ?? [] {
        for resource in rule["resources"] as? [String] ?? [] {
          let name = group.isEmpty ? resource : "\(resource).\(group)"
          if verbs == ["list", "watch"] {
            granted.insert(name)
          } else {
            for verb in verbs { writes.insert("\(verb) \(name)") }
          }
        }
      }
    }
    XCTAssertEqual(writes, ["create services", "patch ingresses/status.networking.k8s.io"])
    let followed = APIResource.followed(nodeName: "node", serviceProxyName: nil)
    XCTAssertEqual(granted, Set(followed.map(\.rbacName)))
    XCTAssertEqual(
      Set(followed.map(\.kind)), Set(ResourceKind.allCases.map(\.rawValue)),
      "the agent follows every kind it decodes")
  }

  /// crds.yaml defines our LocalRedirectPolicy as the agent asks for it.
  func testTheLocalRedirectPolicyCRDMatchesWhatTheAgentFollows() throws {
    let objects = try Self.load("crds.yaml")
    XCTAssertEqual(objects.map { $0["kind"] as? String }, ["CustomResourceDefinition"])
    let spec = try XCTUnwrap(objects[0]["spec"] as? [String: Any])
    let names = try XCTUnwrap(spec["names"] as? [String: Any])
    let version = try XCTUnwrap((spec["versions"] as? [[String: Any]])?.first)
    let followed = try XCTUnwrap(
      APIResource.followed(nodeName: "node", serviceProxyName: nil).first {
        $0.kind == ResourceKind.localRedirectPolicy.rawValue
      })
    XCTAssertEqual(spec["group"] as? String, followed.group)
    XCTAssertEqual(names["plural"] as? String, followed.plural)
    XCTAssertEqual(names["kind"] as? String, followed.kind)
    XCTAssertEqual(version["name"] as? String, followed.version)
    XCTAssertEqual(spec["scope"] as? String, "Namespaced")
    XCTAssertEqual(
      Self.metadata(objects[0])["name"] as? String, "\(followed.plural).\(followed.group)")
  }

  func testAgentDaemonSetRunsOnEveryNodeWithTheHostMountsItNeeds() throws {
    let daemonSet = try XCTUnwrap(try Self.load("junction.yaml").last)
    let pod = try Self.podSpec(daemonSet)
    XCTAssertEqual(pod["hostNetwork"] as? Bool, true)
    XCTAssertNil(pod["hostPID"], "no host PID namespace needed (see the comment in the manifest)")
    let tolerations = try XCTUnwrap(pod["tolerations"] as? [[String: Any]])
    XCTAssertTrue(
      tolerations.contains { $0["operator"] as? String == "Exists" && $0["key"] == nil },
      "tolerates every taint")
    try Self.checkSelectorAndVolumes(daemonSet)

    let agent = try Self.container(pod, "agent", initContainer: false)
    let hostPaths = try Self.hostPaths(pod)
    // The plugin on the node finds the socket, the pins and the state at these paths, so
    // they are mounted at the node's own path.
    var mounts: [String: [String: Any]] = [:]
    for mount in agent["volumeMounts"] as? [[String: Any]] ?? [] {
      mounts[mount["mountPath"] as? String ?? ""] = mount
    }
    for path in ["/sys/fs/bpf", "/run/junction", "/var/lib/junction", "/run/netns"] {
      let mount = try XCTUnwrap(mounts[path], "agent mounts \(path)")
      XCTAssertEqual(hostPaths[mount["name"] as? String ?? ""], path, "\(path) is the node's")
    }
    XCTAssertEqual(mounts["/sys/fs/bpf"]?["mountPropagation"] as? String, "HostToContainer")
    XCTAssertEqual(mounts["/run/netns"]?["mountPropagation"] as? String, "HostToContainer")
    let args = agent["args"] as? [String] ?? []
    for flag in [
      "--socket=/run/junction/junction.sock", "--state-dir=/var/lib/junction",
      "--bpf-fs=/sys/fs/bpf/junction", "--node-name=$(NODE_NAME)",
      // The API server's real address, not the `kubernetes` ClusterIP the agent translates.
      "--k8s-api-server=$(JUNCTION_K8S_API_SERVER)",
    ] {
      XCTAssertTrue(args.contains(flag), "agent args \(args) lack \(flag)")
    }

    let install = try Self.container(pod, "install-cni", initContainer: true)
    let installMounts = Set(
      (install["volumeMounts"] as? [[String: Any]] ?? []).compactMap { $0["mountPath"] as? String })
    XCTAssertEqual(installMounts, ["/opt/cni/bin", "/etc/cni/net.d"])
    for mount in install["volumeMounts"] as? [[String: Any]] ?? [] {
      XCTAssertEqual(hostPaths[mount["name"] as? String ?? ""], mount["mountPath"] as? String)
    }
    let script = try Self.script(install)
    XCTAssertTrue(script.contains("/opt/cni/bin/junction"), script)
    XCTAssertTrue(script.contains("junction-install chain"), script)
    XCTAssertTrue(script.contains("--first-in"), script)
    let keeper = try Self.container(pod, "cni-chain", initContainer: false)
    XCTAssertTrue(try Self.script(keeper).contains("junction-install chain"))
  }

  /// Least privilege: one privileged container, the init container that only mounts the
  /// bpffs (a mount, and Bidirectional propagation, which Kubernetes allows only there); the
  /// agent has exactly `Capability.datapath` (what PrivilegeTests runs it with) and nothing
  /// else; the CNI install containers have no capability at all.
  func testOnlyTheBPFFSMountIsPrivilegedAndTheAgentHasExactlyItsNamedCapabilities() throws {
    let pod = try Self.podSpec(try XCTUnwrap(try Self.load("junction.yaml").last))
    let containers =
      (pod["initContainers"] as? [[String: Any]] ?? [])
      + (pod["containers"] as? [[String: Any]] ?? [])
    XCTAssertEqual(
      (pod["initContainers"] as? [[String: Any]])?.first?["name"] as? String, "mount-bpf-fs",
      "the bpffs is mounted before anything else runs")
    for container in containers {
      let name = container["name"] as? String ?? "?"
      let context = container["securityContext"] as? [String: Any] ?? [:]
      let capabilities = context["capabilities"] as? [String: Any] ?? [:]
      let propagation = Set(
        (container["volumeMounts"] as? [[String: Any]] ?? []).compactMap {
          $0["mountPropagation"] as? String
        })
      if name == "mount-bpf-fs" {
        XCTAssertEqual(context["privileged"] as? Bool, true)
        XCTAssertEqual(
          (container["volumeMounts"] as? [[String: Any]])?.map { $0["mountPath"] as? String },
          ["/sys/fs/bpf"], "it sees nothing of the node but the bpffs")
        XCTAssertEqual(propagation, ["Bidirectional"])
        let script = try Self.script(container)
        XCTAssertTrue(script.contains("mount -t bpf bpf /sys/fs/bpf"), script)
        continue
      }
      XCTAssertNil(context["privileged"], "\(name) is not privileged")
      XCTAssertFalse(propagation.contains("Bidirectional"), "\(name): Bidirectional is privileged")
      XCTAssertEqual(context["allowPrivilegeEscalation"] as? Bool, false, name)
      XCTAssertEqual(capabilities["drop"] as? [String], ["ALL"], name)
      let added = capabilities["add"] as? [String] ?? []
      if name == "agent" {
        XCTAssertEqual(
          added, Capability.datapath.map { String($0.name.dropFirst("CAP_".count)) },
          "the agent's capabilities are the ones PrivilegeTests proves")
        // pidfd_getfd under the runtime's default seccomp profile, pins under /sys/fs under
        // its default AppArmor profile.
        XCTAssertEqual(
          (context["seccompProfile"] as? [String: Any])?["type"] as? String, "Unconfined")
        XCTAssertEqual(
          (context["appArmorProfile"] as? [String: Any])?["type"] as? String, "Unconfined")
      } else {
        XCTAssertEqual(added, [], "\(name) needs no capability")
      }
    }
  }

  func testUninstallDaemonSetUnchainsOnEveryNode() throws {
    let objects = try Self.load("uninstall.yaml")
    XCTAssertEqual(objects.map { $0["kind"] as? String }, ["DaemonSet"])
    try Self.checkSelectorAndVolumes(objects[0])
    let pod = try Self.podSpec(objects[0])
    XCTAssertTrue(
      (pod["tolerations"] as? [[String: Any]] ?? []).contains {
        $0["operator"] as? String == "Exists"
      })
    let unchain = try Self.container(pod, "unchain", initContainer: true)
    XCTAssertTrue(try Self.script(unchain).contains("junction-install unchain"))
    let hostPaths = try Self.hostPaths(pod)
    for mount in unchain["volumeMounts"] as? [[String: Any]] ?? [] {
      XCTAssertEqual(hostPaths[mount["name"] as? String ?? ""], mount["mountPath"] as? String)
    }
  }

  // MARK: helpers

  static func load(_ name: String) throws -> [[String: Any]] {
    let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    // YamlSequence keeps a parse error aside instead of throwing it: check it at the end.
    var documents = try Yams.load_all(yaml: text)
    var objects: [[String: Any]] = []
    while let document = documents.next() {
      objects.append(
        try XCTUnwrap(document as? [String: Any], "\(name): a document is not a mapping"))
    }
    if let error = documents.error { throw error }
    return objects
  }

  static func metadata(_ object: [String: Any]) -> [String: Any] {
    object["metadata"] as? [String: Any] ?? [:]
  }

  static func podSpec(_ daemonSet: [String: Any]) throws -> [String: Any] {
    XCTAssertEqual(daemonSet["apiVersion"] as? String, "apps/v1")
    let template = try XCTUnwrap(
      (daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])
    return try XCTUnwrap(template["spec"] as? [String: Any])
  }

  static func container(_ pod: [String: Any], _ name: String, initContainer: Bool) throws
    -> [String: Any]
  {
    let list = pod[initContainer ? "initContainers" : "containers"] as? [[String: Any]] ?? []
    return try XCTUnwrap(list.first { $0["name"] as? String == name }, "no container \(name)")
  }

  static func script(_ container: [String: Any]) throws -> String {
    ((container["command"] as? [String] ?? []) + (container["args"] as? [String] ?? []))
      .joined(separator: " ")
  }

  /// Volume name → hostPath path.
  static func hostPaths(_ pod: [String: Any]) throws -> [String: String] {
    var paths: [String: String] = [:]
    for volume in pod["volumes"] as? [[String: Any]] ?? [] {
      let name = try XCTUnwrap(volume["name"] as? String)
      paths[name] = (volume["hostPath"] as? [String: Any])?["path"] as? String
    }
    return paths
  }

  /// The selector matches the template's labels; every container's volumeMounts name a
  /// volume, and every volume is used.
  static func checkSelectorAndVolumes(_ daemonSet: [String: Any]) throws {
    let spec = try XCTUnwrap(daemonSet["spec"] as? [String: Any])
    let selector = try XCTUnwrap(
      (spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String])
    let template = try XCTUnwrap(spec["template"] as? [String: Any])
    let labels = try XCTUnwrap(metadata(template)["labels"] as? [String: String])
    for (key, value) in selector { XCTAssertEqual(labels[key], value, "selector \(key)") }
    let pod = try podSpec(daemonSet)
    let volumes = Set(
      (pod["volumes"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
    var used: Set<String> = []
    let containers =
      (pod["initContainers"] as? [[String: Any]] ?? [])
      + (pod["containers"] as? [[String: Any]] ?? [])
    for container in containers {
      XCTAssertEqual(
        container["image"] as? String, "JUNCTION_IMAGE", "one image for every container")
      for mount in container["volumeMounts"] as? [[String: Any]] ?? [] {
        let name = mount["name"] as? String ?? ""
        XCTAssertTrue(
          volumes.contains(name), "\(container["name"] ?? "?") mounts unknown volume \(name)")
        used.insert(name)
      }
    }
    XCTAssertEqual(used, volumes, "volumes nobody mounts")
  }
}
