import AgentCore
import BPFKit
import CJunctionSys
import DatapathABI
import Logging
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The L7 redirect's listener hand-off through the kernel's socket lookup (bpf/proxy_lookup.c,
/// junction_abi.h "L7 proxy redirect"): the program attached to the node's namespace with a
/// pinned BPF link, and JUNCTION_MAP_PROXY_LISTENERS kept filled with the listening socket of
/// every redirect's proxy port. The socket is the proxy's own (Envoy's, or the process behind
/// `--proxy-redirect`): found by its inode in /proc/net/tcp and the processes' descriptors,
/// copied with pidfd_getfd, inserted, and the copy closed. The kernel drops an entry when its
/// socket closes (the proxy restarted or stopped listening), and the next `sync` fills it
/// again from the new listener. Until an entry exists, tc hands SYNs to the listener itself
/// (bpf_sk_assign), so redirected traffic never waits for this.
final class ProxyListeners: Sendable {
  private let map: BPFMap
  private let link: NetnsLink
  private let logger: Logger
  /// Ports whose listener no readable /proc/PID/fd showed, already warned about (once per
  /// port until it is mapped: `sync` runs every second).
  private let unreadable = Mutex<Set<UInt16>>([])

  private init(map: BPFMap, link: NetnsLink, logger: Logger) {
    self.map = map
    self.link = link
    self.logger = logger
  }

  /// Seconds between two `sync`s while the agent runs.
  static let syncInterval = 1.0

  /// Where the link is pinned under `bpfFS`.
  static func linkPin(bpfFS: String) -> String { bpfFS + "/" + JUNCTION_LINK_PROXY_LOOKUP }

  /// Loads proxy_lookup.o against the pinned maps under `bpfFS` (endpoint.o loaded them
  /// first), pins its program and attaches it through the pinned link (replacing the program
  /// of a previous run's link in place). Nil, with a warning, when that is not possible:
  /// redirects then keep tc's bpf_sk_assign hand-off with its TIME_WAIT limit.
  static func start(bpfFS: String, objectDirectory: String, mapSizes: MapSizes, logger: Logger)
    -> ProxyListeners?
  {
    let path = PathNames.join(objectDirectory, "proxy_lookup.o")
    do {
      let object = try BPFObject.loadSized(
        path: path, bpfFS: bpfFS, mapSizes: mapSizes, logger: logger)
      let program = try object.pinnedProgram(named: JUNCTION_PROG_PROXY_LOOKUP, bpfFS: bpfFS)
      let map = try object.map(named: JUNCTION_MAP_PROXY_LISTENERS)
      let link = try NetnsLink.attachSocketLookup(program, pinnedAt: linkPin(bpfFS: bpfFS))
      logger.info(
        "proxy socket lookup attached",
        metadata: [
          "program": "\(program.id)", "link": "\(linkPin(bpfFS: bpfFS))", "map": "\(map.id)",
        ])
      return ProxyListeners(map: map, link: link, logger: logger)
    } catch {
      logger.warning(
        "no proxy socket lookup: redirected SYNs keep bpf_sk_assign (TIME_WAIT reuse waits 1 s)",
        metadata: ["object": "\(path)", "error": "\(error)"])
      return nil
    }
  }

  /// The proxy ports with a listener in the map now.
  func mappedPorts() throws -> Set<UInt16> {
    Set(try map.keys(as: junction_proxy_listener_key.self).map { UInt16($0.proxy_port) })
  }

  /// Makes the map hold a listener for each of `ports` that has one, and nothing else.
  func sync(ports wanted: Set<UInt16>) {
    let mapped: Set<UInt16>
    do {
      mapped = try mappedPorts()
    } catch {
      logger.warning("cannot read the proxy listener map", metadata: ["error": "\(error)"])
      return
    }
    let plan = ProxyListenerScan.plan(wanted: wanted, mapped: mapped)
    for port in plan.remove {
      _ = try? map.delete(junction_proxy_listener_key(proxy_port: UInt32(port)))
    }
    guard !plan.fill.isEmpty else { return }
    let listeners = ProxyListenerScan.listeners(
      inProcNetTCP: String(
        decoding: (try? AtomicFile.read("/proc/self/net/tcp", limit: 256 << 20)) ?? [],
        as: UTF8.self))
    var wantedInodes: [UInt64: UInt16] = [:]
    for port in plan.fill {
      if let listener = ProxyListenerScan.choose(listeners, port: port) {
        wantedInodes[listener.inode] = port
      }
    }
    guard !wantedInodes.isEmpty else { return }
    for (pid, fd, inode) in Self.descriptors(of: Set(wantedInodes.keys)) {
      guard let port = wantedInodes.removeValue(forKey: inode) else { continue }
      unreadable.withLock { _ = $0.remove(port) }
      insert(port: port, pid: pid, fd: fd)
    }
    // Listening, but no descriptor of it found: its process's /proc/PID/fd was unreadable
    // (a ptrace read check, as pidfd_getfd's) or it closed meanwhile.
    for port in Set(wantedInodes.values) where unreadable.withLock({ $0.insert(port).inserted }) {
      logger.warning(
        "cannot find the proxy listener's process",
        metadata: [
          "port": "\(port)",
          "hint":
            "reading its /proc/PID/fd needs ptrace access: run the proxy as the agent's user with no capability the agent lacks, or give the agent CAP_SYS_PTRACE",
        ])
    }
  }

  private func insert(port: UInt16, pid: Int32, fd: Int32) {
    let copy = junction_pidfd_getfd(pid, fd)
    guard copy >= 0 else {
      let code = errno
      var metadata: Logger.Metadata = [
        "port": "\(port)", "pid": "\(pid)", "error": "\(String(cString: strerror(code)))",
      ]
      if code == EPERM {
        // pidfd_getfd is a ptrace-attach check: Envoy started by the agent passes it (same
        // user, no capability the agent lacks); another owner's proxy needs CAP_SYS_PTRACE.
        metadata["hint"] =
          "needs ptrace access to the proxy: run it as the agent's user with no capability the agent lacks, or give the agent CAP_SYS_PTRACE"
      }
      logger.warning("cannot take the proxy listener's socket", metadata: metadata)
      return
    }
    defer { close(copy) }
    do {
      try map.update(junction_proxy_listener_key(proxy_port: UInt32(port)), UInt64(copy))
      logger.info("proxy listener mapped", metadata: ["port": "\(port)", "pid": "\(pid)"])
    } catch {
      logger.warning(
        "cannot map the proxy listener", metadata: ["port": "\(port)", "error": "\(error)"])
    }
  }

  /// (pid, fd, inode) for one descriptor of each of `inodes`' sockets, from /proc/PID/fd of
  /// every process (the first holder found is enough; stops when all are found).
  private static func descriptors(of inodes: Set<UInt64>) -> [(Int32, Int32, UInt64)] {
    var found: [(Int32, Int32, UInt64)] = []
    var missing = inodes
    var buffer = [CChar](repeating: 0, count: 64)
    for name in (try? AtomicFile.list("/proc")) ?? [] where !missing.isEmpty {
      guard let pid = Int32(name), pid != getpid() else { continue }
      for fdName in (try? AtomicFile.list("/proc/\(pid)/fd")) ?? [] where !missing.isEmpty {
        guard let fd = Int32(fdName) else { continue }
        let count = readlink("/proc/\(pid)/fd/\(fd)", &buffer, buffer.count - 1)
        guard count > 0 else { continue }
        let target = String(
          decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if let inode = ProxyListenerScan.socketInode(linkTarget: target),
          missing.remove(inode) != nil
        {
          found.append((pid, fd, inode))
        }
      }
    }
    return found
  }
}
