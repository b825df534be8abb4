import AgentCore
import BPFKit
import DatapathABI
import Logging
import NetKit
import ServiceDatapath

#if canImport(Glibc)
  import Glibc
#endif

/// Socket load balancing (`--socket-lb`): bpf/sock.c's eight programs on the cgroup v2 at
/// `--cgroup-root`, so the node's own processes reach services, IPv4 and IPv6 (and IPv4
/// ones through IPv4-mapped addresses on dual-stack sockets), by connecting straight to a
/// backend (connect4/6, sendmsg4/6) and see the service address back (recvmsg4/6,
/// getpeername4/6).
///
/// The programs are attached with BPF links pinned under `--bpf-fs` (`<program>_link`), so,
/// like the tc programs, they outlive the agent, stopped or killed: without that, every
/// restart left the node's processes a window (seconds) in which a connect to a ClusterIP
/// was not translated and failed (bench/restarts.py found it). The next start replaces each
/// link's program in place (BPF_LINK_UPDATE), with no moment without one; a start without
/// `--socket-lb` removes the links (`removePinnedLinks`). The maps are the pinned ones
/// endpoint.o uses, so the services the agent writes are the ones the sockets see.
///
/// Only sockets in the agent's own network namespace are translated: its cookie goes to
/// jnc_node_cfg. Several agents (lab nodes) can so attach to one cgroup hierarchy side by
/// side, each touching only its own namespace's sockets.
final class SocketLoadBalancer {
  private let links: [CgroupLink]
  private let root: CgroupRoot
  private let logger: Logger

  private init(links: [CgroupLink], root: CgroupRoot, logger: Logger) {
    self.links = links
    self.root = root
    self.logger = logger
  }

  /// The object's program for each hook (bpf/junction_abi.h's names).
  static let programs: [(name: String, hook: CgroupHook)] = [
    (JUNCTION_PROG_SOCK_CONNECT4, .connect4), (JUNCTION_PROG_SOCK_SENDMSG4, .sendmsg4),
    (JUNCTION_PROG_SOCK_RECVMSG4, .recvmsg4), (JUNCTION_PROG_SOCK_GETPEERNAME4, .getpeername4),
    (JUNCTION_PROG_SOCK_CONNECT6, .connect6), (JUNCTION_PROG_SOCK_SENDMSG6, .sendmsg6),
    (JUNCTION_PROG_SOCK_RECVMSG6, .recvmsg6), (JUNCTION_PROG_SOCK_GETPEERNAME6, .getpeername6),
  ]

  /// Loads sock.o against the pinned maps under `bpfFS` (endpoint.o loaded them first),
  /// prepares the cgroup root, attaches, and turns translation on for this namespace. On
  /// failure everything done so far is undone and a one-line reason thrown.
  static func start(
    cgroupRoot: String, stateDirectory: String, bpfFS: String, objectDirectory: String,
    mapSizes: MapSizes, logger: Logger
  ) throws -> SocketLoadBalancer {
    let objectPath =
      objectDirectory.hasSuffix("/") ? objectDirectory + "sock.o" : objectDirectory + "/sock.o"
    guard access(objectPath, R_OK) == 0 else {
      throw DatapathStartFailure(
        "--socket-lb: the object \(objectPath) is missing (build it with install/build-bpf.sh)")
    }
    let cookie: UInt64
    do {
      cookie = try NetworkNamespace.currentCookie()
    } catch {
      throw DatapathStartFailure("--socket-lb needs the network namespace's cookie: \(error)")
    }
    let object: BPFObject
    do {
      // The same sizes as endpoint.o's: libbpf reuses a pinned map only when they match.
      object = try BPFObject.loadSized(
        path: objectPath, bpfFS: bpfFS, mapSizes: mapSizes, logger: logger)
    } catch {
      throw DatapathStartFailure(
        "--socket-lb: cannot load \(objectPath): \(error)"
          + capabilityHint(for: error, needed: Capability.datapath, doing: "socket LB"))
    }
    let root = try CgroupRoot.prepare(cgroupRoot, stateDirectory: stateDirectory, logger: logger)
    var links: [CgroupLink] = []
    do {
      for (name, hook) in programs {
        links.append(
          try CgroupLink.attachPinned(
            object.program(named: name), to: cgroupRoot, hook: hook,
            pin: linkPin(bpfFS: bpfFS, program: name)))
      }
      let nodeConfig = try NodeConfigMap(object)
      try nodeConfig.update { $0.host_netns_cookie = cookie }
      logger.info(
        "socket LB attached",
        metadata: [
          "cgroup_root": "\(cgroupRoot)", "netns_cookie": "\(cookie)",
          "programs": "\(links.map { "\($0.hook)=\($0.programID)" }.joined(separator: ","))",
        ])
      return SocketLoadBalancer(links: links, root: root, logger: logger)
    } catch {
      for link in links { link.detach() }
      for (name, _) in programs { CgroupLink.removePinned(linkPin(bpfFS: bpfFS, program: name)) }
      root.release(logger: logger)
      throw DatapathStartFailure(
        "--socket-lb: cannot attach to \(cgroupRoot): \(error)"
          + capabilityHint(for: error, needed: Capability.datapath, doing: "socket LB"))
    }
  }

  /// The cgroup2 directory the programs are attached to.
  var cgroupRoot: String { root.path }

  /// Lets go of the links (their pins keep the programs attached and translating for the
  /// next start to take over), and unmounts and removes only what start made.
  func stop() {
    if !CgroupFilesystem.isCgroup2(root.path) {
      logger.warning(
        "the cgroup2 of socket LB is no longer mounted (unmounted under the agent): nothing to unmount",
        metadata: ["cgroup_root": "\(root.path)"])
    }
    for link in links { link.detach() }
    root.release(logger: logger)
    logger.info(
      "socket LB left attached for the next start", metadata: ["cgroup_root": "\(root.path)"])
  }

  /// Where the link of program `program` is pinned.
  static func linkPin(bpfFS: String, program: String) -> String {
    PathNames.join(bpfFS, "\(program)_link")
  }

  /// Detaches and unpins the links a `--socket-lb` run left (none: nothing happens). The
  /// namespace's cookie may stay in jnc_node_cfg: only these programs read it.
  static func removePinnedLinks(bpfFS: String, logger: Logger) {
    let removed = programs.filter {
      CgroupLink.removePinned(linkPin(bpfFS: bpfFS, program: $0.name))
    }
    if !removed.isEmpty {
      logger.info(
        "socket LB detached (started without --socket-lb)", metadata: ["links": "\(removed.count)"])
    }
  }
}

/// The cgroup v2 directory the socket programs attach to, and what the agent did to have one
/// there (`CgroupRootRecord`: whether it mounted cgroup2, which directories it created), so
/// that `release` undoes exactly that and never someone else's mount or directory. The record
/// is also written to the state directory while the agent runs: after a crash, the next
/// start finds the mount and directories it left and takes them back as its own.
struct CgroupRoot {
  let record: CgroupRootRecord
  /// Where the record is kept.
  let recordFile: String

  var path: String { record.path }

  /// `path` as a cgroup2 directory: used as it is when it already is one (a cgroup2 mount,
  /// or a cgroup inside one, which `prepare` creates when missing); otherwise the directory
  /// is created if needed and cgroup2 mounted on it.
  static func prepare(_ path: String, stateDirectory: String, logger: Logger) throws -> CgroupRoot {
    let recordFile = PathNames.join(stateDirectory, CgroupRootRecord.fileName)
    var previous = (try? AtomicFile.read(recordFile)).flatMap(CgroupRootRecord.decode)
    if let stale = previous, stale.path != path {
      // Left by a crashed run with another --cgroup-root: no longer wanted.
      CgroupRoot(record: stale, recordFile: recordFile).release(logger: logger)
      previous = nil
    }
    var created = (previous?.createdDirectories ?? []).filter { access($0, F_OK) == 0 }
    var prefix = ""
    for component in path.split(separator: "/") {
      prefix += "/" + component
      if mkdir(prefix, 0o755) == 0 {
        created.append(prefix)
      } else if errno != EEXIST {
        let reason = String(cString: strerror(errno))
        let partial = CgroupRootRecord(path: path, mounted: false, createdDirectories: created)
        CgroupRoot(record: partial, recordFile: recordFile).release(logger: logger)
        throw DatapathStartFailure("--cgroup-root: cannot create \(prefix): \(reason)")
      }
    }
    var record = CgroupRootRecord(path: path, mounted: false, createdDirectories: created)
    if CgroupFilesystem.isCgroup2(path) {
      record.mounted = previous?.mounted ?? false
    } else {
      do {
        try CgroupFilesystem.mount(at: path)
      } catch {
        CgroupRoot(record: record, recordFile: recordFile).release(logger: logger)
        throw DatapathStartFailure(
          "--cgroup-root \(path) is not a cgroup2 and \(error)"
            + capabilityHint(for: error, needed: [.sysAdmin], doing: "mounting a cgroup2"))
      }
      record.mounted = true
      logger.info("mounted a cgroup2", metadata: ["path": "\(path)"])
    }
    let root = CgroupRoot(record: record, recordFile: recordFile)
    do {
      if record.ownsSomething {
        try AtomicFile.write(record.encoded(), to: recordFile)
      } else {
        try AtomicFile.remove(recordFile)
      }
    } catch {
      root.release(logger: logger)
      throw DatapathStartFailure("--cgroup-root: cannot record what the agent made: \(error)")
    }
    return root
  }

  /// Unmounts the cgroup2 if the agent mounted it and removes the directories it created
  /// (innermost first; a directory someone filled meanwhile stays), then the record.
  func release(logger: Logger) {
    if record.mounted && CgroupFilesystem.isCgroup2(record.path) {
      do {
        try CgroupFilesystem.unmount(at: record.path)
      } catch {
        logger.warning("cannot unmount the cgroup2", metadata: ["error": "\(error)"])
      }
    }
    for directory in record.createdDirectories.reversed() where rmdir(directory) != 0 {
      logger.warning(
        "cannot remove a directory the agent created",
        metadata: ["path": "\(directory)", "error": "\(String(cString: strerror(errno)))"])
      break
    }
    _ = try? AtomicFile.remove(recordFile)
  }
}
