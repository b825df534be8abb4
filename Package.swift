// swift-tools-version:6.0
import PackageDescription

// Junction: a CNI plugin and node agent giving a Kubernetes node an eBPF service dataplane.
// Module boundaries follow ../shared/ARCHITECTURE.md: a pure CNI core (CNIKit), thin typed
// wrappers over libnl and netns (NetKit) and libbpf (BPFKit), and the plugin logic
// (JunctionPlugin) behind a `main` that only wires the environment and stdin to it.
let package = Package(
  name: "Junction",
  products: [
    .executable(name: "junction", targets: ["JunctionCNI"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2")
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
    .systemLibrary(name: "CSystem"),
    .target(name: "CNIKit"),
    .target(name: "NetKit", dependencies: ["CLibnl", "CSystem", "CNIKit"]),
    .target(name: "BPFKit", dependencies: ["CLibbpf", "CSystem"]),
    .target(
      name: "JunctionPlugin",
      dependencies: [
        "CNIKit", "NetKit", .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(
      name: "JunctionCNI",
      dependencies: ["JunctionPlugin", "CNIKit"]
    ),
    .testTarget(name: "CNIKitTests", dependencies: ["CNIKit"]),
    .testTarget(name: "BPFKitTests", dependencies: ["BPFKit"]),
    .testTarget(name: "JunctionPluginTests", dependencies: ["JunctionPlugin", "CNIKit", "NetKit"]),
    // Integration tests drive processes from Dispatch queues; Swift 5 mode keeps that
    // plumbing short. They need root and the binaries built first (see install/test.sh).
    .testTarget(
      name: "IntegrationTests", dependencies: ["CNIKit"],
      swiftSettings: [.swiftLanguageMode(.v5)]
    ),
  ]
)
