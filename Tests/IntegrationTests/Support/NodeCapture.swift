import Foundation

/// tcpdump on a lab node's eth0, for the north-south suites (IPv4 and IPv6) that assert
/// what crossed the wire between the nodes.
struct NodeCapture {
  let pid: String
  let file: String

  /// tcpdump on `node`'s eth0 into a file (immediate mode, packet-buffered: every packet is
  /// in the file as soon as it is seen, none left in the ring when it stops), started in the
  /// node's namespace by the lab (so `down` would stop it too). tcpdump writes the file's
  /// header before it captures: `ping` from the client to `address` (the node's) until one
  /// packet is in the file (more than the 24-byte header) shows it is listening.
  static func start(
    _ lab: LabHarness, node: String, address: String, ping: [String]
  ) throws -> NodeCapture {
    let file = lab.directory.appendingPathComponent("\(node).pcap").path
    let out = try lab.must([
      "exec-node", "--detach", node, "--", "tcpdump", "-i", "eth0", "-nn", "-U",
      "--immediate-mode", "-w", file,
    ])
    let pid = out.split(separator: " ").last.map {
      $0.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    for _ in 0..<50 {
      let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
      if size > 24 { break }
      _ = try lab.run(["exec-client", "--"] + ping + ["-c", "1", "-W", "1", address])
      usleep(100_000)
    }
    return NodeCapture(pid: pid ?? "", file: file)
  }

  /// Stops the capture and returns its packets matching `filter` ("ip", "ip6") as
  /// `tcpdump -r -nn -v -x` prints them, one string per packet (header lines and hex dump
  /// joined).
  func finish(filter: String) throws -> [String] {
    if let pid = Int32(pid) {
      kill(pid, SIGINT)
      for _ in 0..<50 where kill(pid, 0) == 0 { usleep(100_000) }
    }
    let read = try Shell.run(["tcpdump", "-r", file, "-nn", "-v", "-x", filter])
    var packets: [String] = []
    for line in read.stdout.split(separator: "\n", omittingEmptySubsequences: true) {
      if line.first?.isNumber == true {
        packets.append(String(line))
      } else if !packets.isEmpty {
        packets[packets.count - 1] += "\n" + line
      }
    }
    return packets
  }

  /// The bytes of a packet's hex dump (`-x`: from the IP header on), as one hex string.
  static func hex(_ packet: String) -> String {
    packet.split(separator: "\n").filter {
      $0.trimmingCharacters(in: .whitespaces).hasPrefix("0x")
    }.map { line in
      line.split(separator: ":", maxSplits: 1).last.map {
        $0.replacingOccurrences(of: " ", with: "")
      } ?? ""
    }.joined()
  }
}
