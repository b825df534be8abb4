// swift-tools-version:6.0
import PackageDescription

// Junction: a CNI plugin and node agent giving a Kubernetes node an eBPF service dataplane.
// Module boundaries follow ../shared/ARCHITECTURE.md: a pure CNI core (CNIKit), thin typed
// wrappers over libnl and netns (NetKit) and libbpf (BPFKit), the BPF map ABI shared with
// the datapath C (DatapathABI), the agent's API types and client (AgentAPI), and small
// executables that only wire those together.
let package = Package(
  name: "Junction",
  products: [
    .executable(name: "junction", targets: ["JunctionCNI"]),
    .executable(name: "junction-agent", targets: ["JunctionAgent"]),
    .executable(name: "junctionctl", targets: ["JunctionCTL"]),
    .executable(name: "junction-bench", targets: ["JunctionBench"]),
    .executable(name: "junction-install", targets: ["JunctionInstall"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
  ],
  targets: [
    .systemLibrary(
      name: "CLibnl",
      pkgConfig: "libnl-route-3.0",
      providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]
    ),
    .systemLibrary(
      name: "CLibbpf",
      pkgConfig: "libbpf",
      providers: [.apt(["libbpf-dev"])]
    ),
    .systemLibrary(name: "CJunctionSys"),
    .systemLibrary(name: "CZlib"),
    // bpf/junction_abi.h, the one header every map layout lives in, seen from Swift.
    .systemLibrary(name: "DatapathABI"),
    .target(name: "CNIKit"),
    .target(name: "NetKit", dependencies: ["CLibnl", "CJunctionSys", "CNIKit"]),
    .target(name: "BPFKit", dependencies: ["CLibbpf", "CJunctionSys", "DatapathABI"]),
    .target(name: "AgentAPI"),
    .target(
      name: "JunctionPlugin",
      dependencies: [
        "CNIKit", "NetKit", "BPFKit", "AgentAPI", "AgentCore", "DatapathABI",
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(
      name: "JunctionCNI",
      dependencies: ["JunctionPlugin", "CNIKit"]
    ),
    .target(
      name: "AgentCore",
      // DatapathABI is header-only: the map names and default sizes, not restated here.
      dependencies: ["AgentAPI", "CNIKit", "DatapathABI"]
    ),
    // Kubernetes Service / EndpointSlice resources → the service frontends and backends a
    // node programs, and Maglev tables (pure). Not linked into the CNI binary.
    .target(
      name: "ServiceCore",
      dependencies: ["CNIKit", "CZlib", .product(name: "Yams", package: "Yams")]
    ),
    // Writes the datapath's service maps from ServiceCore's diffs (the agent's and the
    // benchmark's one implementation).
    .target(
      name: "ServiceDatapath",
      dependencies: ["BPFKit", "DatapathABI", "ServiceCore", "CNIKit"]
    ),
    // What the API server sends, decoded (JSON, watch events, LIST pages, errors) and the
    // collections' addresses: pure, without NIO, so that the fuzzer builds it alone.
    .target(name: "KubernetesWire", dependencies: ["CNIKit"]),
    // The agent's Kubernetes API client: cluster access (in-cluster, kubeconfig), list and
    // watch over async-http-client, and the reflector's pure state machine.
    .target(
      name: "KubernetesClient",
      dependencies: [
        "CNIKit", "KubernetesWire",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // Flows (issue 13): datapath events decoded, named (pods, Services), filtered, kept in
    // a bounded buffer with followers (pure; the agent's consumer feeds it).
    .target(
      name: "FlowPipeline", dependencies: ["AgentAPI", "AgentCore", "CNIKit", "DatapathABI"]),
    // Prometheus metrics (issue 13): their definitions, the datapath counters read on
    // scrape and turned into metric values, and the /metrics server.
    .target(
      name: "AgentMetrics",
      dependencies: [
        "AgentAPI", "AgentCore", "BPFKit", "DatapathABI",
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(
      name: "JunctionAgent",
      dependencies: [
        "AgentAPI", "AgentCore", "BPFKit", "NetKit", "CNIKit", "ServiceCore", "ServiceDatapath",
        "KubernetesClient", "CJunctionSys",
        "FlowPipeline",
        "AgentMetrics",
        "ProxyManager",
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // The node's Envoy (issue 14): CiliumEnvoyConfig / Ingress → stock Envoy resources (pure),
    // filesystem xDS, validation, supervision, access log.
    .target(
      name: "ProxyManager",
      dependencies: [
        "AgentAPI", "CNIKit", "ServiceCore", .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // The service map (issue 13): flows aggregated into pods, Services and edges counted
    // by verdict (pure), and the page `junctionctl ui` serves.
    .target(name: "ServiceMap", dependencies: ["AgentAPI", "FlowPipeline"]),
    .executableTarget(
      name: "JunctionCTL",
      dependencies: [
        "AgentAPI", "AgentCore", "FlowPipeline", "ServiceMap",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        // `junctionctl ui`'s local HTTP server.
        .product(name: "Hummingbird", package: "hummingbird"),
      ]
    ),
    // chain/unchain of an existing CNI config as text edits (pure) and their atomic writes.
    .target(name: "CNIConfigEditing", dependencies: ["CNIKit"]),
    // The fuzz harnesses (issue 16): a corpus replayer in ordinary builds, libFuzzer's
    // harness with `fuzz/run.sh` (-sanitize=fuzzer -DFUZZING, its own build path).
    .executableTarget(
      name: "JunctionFuzz",
      dependencies: [
        "AgentCore", "CNIConfigEditing", "CNIKit", "FlowPipeline", "KubernetesWire", "ServiceCore",
      ],
      path: "fuzz/Sources/JunctionFuzz"
    ),
    .executableTarget(
      name: "JunctionInstall",
      dependencies: [
        "CNIConfigEditing", .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // bench/: the load-balancing benchmarks (per-packet cost, programming time).
    .executableTarget(
      name: "JunctionBench",
      dependencies: [
        "AgentCore", "BPFKit", "DatapathABI", "ServiceCore", "ServiceDatapath", "CNIKit",
      ],
      path: "bench/Sources/JunctionBench"),
    // Assertions the unit-test targets share (a library, so both can import it).
    .target(name: "CNITestSupport", dependencies: ["CNIKit"], path: "Tests/CNITestSupport"),
    .testTarget(name: "CNIKitTests", dependencies: ["CNIKit", "CNITestSupport"]),
    .testTarget(name: "BPFKitTests", dependencies: ["BPFKit", "DatapathABI", "NetKit"]),
    .testTarget(name: "AgentAPITests", dependencies: ["AgentAPI", "AgentCore"]),
    .testTarget(name: "ServiceCoreTests", dependencies: ["ServiceCore"]),
    // Translation (pure) and, with the real Envoy from install/deps.sh test, the seed's L7 scenarios.
    .testTarget(
      name: "ProxyManagerTests",
      dependencies: [
        "ProxyManager", "ServiceCore", "AgentAPI", "CNIKit",
        .product(name: "Logging", package: "swift-log"),
      ]),
    // The agent's own parts that need no datapath (the service store on a temporary directory).
    .testTarget(
      name: "JunctionAgentTests",
      dependencies: [
        "JunctionAgent", "AgentCore", "ServiceCore", "KubernetesClient", "CNIKit", "BPFKit",
      ]),
    // tools/standin-apiserver driven from tests (the client's and the integration tests).
    .target(name: "StandinSupport", path: "Tests/StandinSupport"),
    .testTarget(
      name: "KubernetesClientTests", dependencies: ["KubernetesClient", "StandinSupport"]),
    .testTarget(
      name: "FlowPipelineTests",
      dependencies: ["FlowPipeline", "AgentAPI", "AgentCore", "DatapathABI"]),
    .testTarget(name: "ServiceMapTests", dependencies: ["ServiceMap", "AgentAPI", "FlowPipeline"]),
    .testTarget(
      name: "AgentMetricsTests",
      dependencies: [
        "AgentMetrics", "AgentAPI", "AgentCore",
        .product(name: "Prometheus", package: "swift-prometheus"),
      ]),
    .testTarget(
      name: "CNIConfigEditingTests", dependencies: ["CNIConfigEditing"], exclude: ["Fixtures"]),
    // install/kubernetes/ manifests: parsed and checked against what the agent decodes.
    .testTarget(
      name: "InstallTests",
      dependencies: [
        "ServiceCore", "KubernetesClient", "AgentCore", "DatapathABI",
        .product(name: "Yams", package: "Yams"),
      ]),
    .testTarget(
      name: "JunctionPluginTests",
      dependencies: ["JunctionPlugin", "CNIKit", "NetKit", "CNITestSupport"]),
    // Integration tests drive processes from Dispatch queues; Swift 5 mode keeps that
    // plumbing short. They need root and the binaries built first (see install/test.sh).
    .testTarget(
      name: "IntegrationTests",
      dependencies: [
        "CNIKit", "BPFKit", "DatapathABI", "JunctionPlugin", "StandinSupport", "ProxyManager",
        "ServiceCore", "AgentAPI", "AgentCore", .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: [.swiftLanguageMode(.v5)]
    ),
  ]
)
