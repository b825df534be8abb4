import BPFKit
import Foundation
import XCTest

/// A prerequisite the datapath tests cannot run without. Under CI (env CI set) it fails the
/// test with the reason; on a developer's machine the test is skipped with it.
struct MissingPrerequisite: Error, CustomStringConvertible {
  var description: String
}

func requirePrerequisite(_ met: Bool, _ reason: @autoclosure () -> String) throws {
  if met { return }
  if ProcessInfo.processInfo.environment["CI"] != nil {
    throw MissingPrerequisite(description: reason())
  }
  throw XCTSkip(reason())
}

func requireRoot() throws {
  try requirePrerequisite(
    getuid() == 0, "datapath tests need root: they mount a bpffs, load BPF programs, create veths")
}

/// The checkout this test file lives in.
let repositoryRoot = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent()

/// The datapath object, built once per test process by install/build-bpf.sh into a
/// temporary directory, so the tests always load what the sources say now (not a stale
/// .build/bpf/endpoint.o) and exercise the build rule too. One fixed directory, rebuilt
/// each run, so runs leave one small directory behind rather than one each; the script
/// renames finished objects into place, so concurrent runs never see a partial file.
enum DatapathBuild {
  private static let result: Result<String, MissingPrerequisite> = {
    let directory = NSTemporaryDirectory() + "junction-bpf-tests"
    let script = repositoryRoot.appendingPathComponent("install/build-bpf.sh").path
    let run = Shell.run([script, directory])
    guard run.status == 0 else {
      return .failure(
        MissingPrerequisite(
          description:
            "install/build-bpf.sh failed (exit \(run.status)): \(run.error.trimmingCharacters(in: .whitespacesAndNewlines))"
        ))
    }
    let objects = run.output.split(separator: "\n").map(String.init)
    guard let endpoint = objects.first(where: { $0.hasSuffix("/endpoint.o") }) else {
      return .failure(MissingPrerequisite(description: "build-bpf.sh printed no endpoint.o"))
    }
    return .success(endpoint)
  }()

  /// The path of netdev.o (the north-south programs), built with endpoint.o.
  static func netdevObject() throws -> String {
    let endpoint = try endpointObject()
    return String(endpoint.dropLast("endpoint.o".count)) + "netdev.o"
  }

  /// The path of endpoint.o; a build failure (no clang with BPF, no libbpf-dev) is a
  /// missing prerequisite.
  static func endpointObject() throws -> String {
    switch result {
    case .success(let path): return path
    case .failure(let missing): try requirePrerequisite(false, missing.description)
    }
    fatalError("unreachable")
  }
}

/// A bpffs of the test's own under /tmp, so tests never touch a real agent's pins and
/// pinned state never leaks from one test into the next.
final class ScratchBPFFilesystem {
  let path: String

  init() throws {
    path = NSTemporaryDirectory() + "junction-bpffs-\(getpid())-\(UUID().uuidString.prefix(8))"
    do {
      try BPFFilesystem.mount(at: path)
    } catch {
      rmdir(path)
      try requirePrerequisite(false, "cannot mount a bpffs at \(path): \(error)")
    }
  }

  /// Unmounts (dropping every pin in it) and removes the directory.
  func remove() {
    try? BPFFilesystem.unmount(at: path)
    rmdir(path)
  }
}

/// Runs tools (ip, tc, ping) for the tests' fixtures and cross-checks.
enum Shell {
  struct Run {
    var status: Int32
    var output: String
    var error: String
  }

  static func run(_ arguments: [String]) -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    do {
      try process.run()
    } catch {
      return Run(status: 127, output: "", error: "\(arguments[0]): \(error)")
    }
    // Read before waiting: a full pipe would otherwise block the child forever.
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(
      status: process.terminationStatus, output: String(decoding: out, as: UTF8.self),
      error: String(decoding: err, as: UTF8.self))
  }

  /// Runs and fails the calling test when the command fails.
  @discardableResult
  static func must(_ arguments: [String]) throws -> String {
    let run = run(arguments)
    guard run.status == 0 else {
      throw MissingPrerequisite(
        description: "\(arguments.joined(separator: " ")) failed (\(run.status)): \(run.error)")
    }
    return run.output
  }
}

/// A 60-byte Ethernet/IPv4/UDP frame (the minimum Ethernet payload size, so no padding
/// question): 14 Ethernet + 20 IPv4 + 8 UDP + 18 payload bytes.
func udpFrame() -> [UInt8] {
  var frame: [UInt8] = []
  frame += [0x02, 0, 0, 0, 0, 0x02]  // destination MAC
  frame += [0x02, 0, 0, 0, 0, 0x01]  // source MAC
  frame += [0x08, 0x00]  // IPv4
  var ip: [UInt8] = [
    0x45, 0, 0, 46,  // version/IHL, TOS, total length 20 + 8 + 18
    0, 1, 0x40, 0,  // id, don't fragment
    64, 17, 0, 0,  // TTL, UDP, checksum (filled below)
    10, 0, 0, 1,  // source
    10, 0, 0, 2,  // destination
  ]
  var sum: UInt32 = 0
  for index in stride(from: 0, to: ip.count, by: 2) {
    sum += UInt32(ip[index]) << 8 | UInt32(ip[index + 1])
  }
  while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
  let checksum = ~UInt16(sum)
  ip[10] = UInt8(checksum >> 8)
  ip[11] = UInt8(checksum & 0xff)
  frame += ip
  frame += [0x30, 0x39, 0x00, 0x35, 0, 26, 0, 0]  // 12345 -> 53, length 8 + 18, no checksum
  frame += Array("junction datapath!".utf8)  // 18 bytes
  precondition(frame.count == 60)
  return frame
}

/// A veth pair whose host end stays in the test's network namespace and whose other end
/// ("the pod") sits in a fresh namespace, addressed 169.254.201.1/30 ↔ .2, so packets
/// really cross the host end's tc hooks. Names carry the pid: no clash with a parallel run.
final class PodLink {
  let namespace: String
  let hostName: String
  let podName: String
  let hostAddress = "169.254.201.1"
  let podAddress = "169.254.201.2"
  private(set) var hostIndex: Int32 = 0

  init() throws {
    let tag = "\(getpid() % 1_000_000)"
    namespace = "jnc-bpftest-\(tag)"
    hostName = "jbth\(tag)"
    podName = "jbtp\(tag)"
    for tool in ["ip", "tc"] {
      try requirePrerequisite(
        Shell.run([tool, "-V"]).status == 0, "\(tool) is missing (apt-get install iproute2)")
    }
    remove()  // a leftover from a crashed run
    do {
      try Shell.must(["ip", "netns", "add", namespace])
      try Shell.must(["ip", "link", "add", hostName, "type", "veth", "peer", "name", podName])
      try Shell.must(["ip", "link", "set", podName, "netns", namespace])
      try Shell.must(["ip", "addr", "add", "\(hostAddress)/30", "dev", hostName])
      try Shell.must(["ip", "link", "set", hostName, "up"])
      try Shell.must(["ip", "-n", namespace, "addr", "add", "\(podAddress)/30", "dev", podName])
      try Shell.must(["ip", "-n", namespace, "link", "set", podName, "up"])
      try Shell.must(["ip", "-n", namespace, "link", "set", "lo", "up"])
    } catch {
      remove()
      throw error
    }
    hostIndex = Int32(if_nametoindex(hostName))
    if hostIndex == 0 {
      remove()
      throw MissingPrerequisite(description: "\(hostName) has no ifindex after creation")
    }
  }

  /// Deleting the namespace deletes the pod end, and a veth pair goes with either end;
  /// the explicit link delete covers a namespace that never got its end.
  func remove() {
    _ = Shell.run(["ip", "netns", "del", namespace])
    _ = Shell.run(["ip", "link", "del", hostName])
  }
}
