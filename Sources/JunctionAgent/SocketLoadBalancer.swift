import AgentCore
import BPFKit
import DatapathABI
import Logging
import NetKit
import ServiceDatapath

#if canImport(Glibc)
  import Glibc
#endif

/// Socket load balancing (`--socket-lb`): bpf/sock.c's four programs on the cgroup v2 at
/// `--cgroup-root`, so the node's own processes reach services by connecting straight to a
/// backend (connect4/sendmsg4) and see the service address back (recvmsg4/getpeername4).
///
/// The programs are attached with BPF links this object holds: they go away with the agent
/// process, even when it is killed, and the next start attaches them again. That is the one
/// part of the datapath that does not outlive the agent (connections already made keep
/// their backend: the translation happened at connect time). The maps are the pinned ones
/// endpoint.o uses, so the services the agent writes are the ones the sockets see.
///
/// Only sockets in the agent's own network namespace are translated: its cookie goes to
/// jnc_node_cfg. Several agents (lab nodes) can so attach to one cgroup hierarchy side by
/// side, each touching only its own namespace's sockets.
final class SocketLoadBalancer {
  private let links: [CgroupLink]
  private let nodeConfig: NodeConfigMap
  private let root: CgroupRoot
  private let logger: Logger

  private init(links: [CgroupLink], nodeConfig: NodeConfigMap, root: CgroupRoot, logger: Logger) {
    self.links = links
    self.nodeConfig = nodeConfig
    self.root = root
    self.logger = logger
  }

  /// The object's program for each hook (bpf/junction_abi.h's names).
  static let programs: [(name: String, hook: CgroupHook)] = [
    (JUNCTION_PROG_SOCK_CONNECT4, .connect4), (JUNCTION_PROG_SOCK_SENDMSG4, .sendmsg4),
    (JUNCTION_PROG_SOCK_RECVMSG4, .recvmsg4), (JUNCTION_PROG_SOCK_GETPEERNAME4, .getpeername4),
  ]

  /// Loads sock.o against the pinned maps under `bpfFS` (endpoint.o loaded them first),
  /// prepares the cgroup root, attaches, and turns translation on for this namespace. On
  /// failure everything done so far is undone and a one-line reason thrown.
  static func start(
    cgroupRoot: String, bpfFS: String, objectDirectory: String, mapSizes: MapSizes,
    logger: Logger
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
      object = try BPFObject.open(path: objectPath, pinRoot: bpfFS)
      // The same sizes as endpoint.o's: libbpf reuses a pinned map only when they match.
      for (_, map, maxEntries) in mapSizes.byMap {
        try object.setMaxEntries(maxEntries, forMap: map)
      }
      try object.load()
    } catch {
      throw DatapathStartFailure("--socket-lb: cannot load \(objectPath): \(error)")
    }
    let root = try CgroupRoot.prepare(cgroupRoot, logger: logger)
    var links: [CgroupLink] = []
    do {
      for (name, hook) in programs {
        links.append(try CgroupLink.attach(object.program(named: name), to: cgroupRoot, hook: hook))
      }
      let nodeConfig = try NodeConfigMap(object)
      try nodeConfig.update { $0.host_netns_cookie = cookie }
      logger.info(
        "socket LB attached",
        metadata: [
          "cgroup_root": "\(cgroupRoot)", "netns_cookie": "\(cookie)",
          "programs": "\(links.map { "\($0.hook)=\($0.programID)" }.joined(separator: ","))",
        ])
      return SocketLoadBalancer(links: links, nodeConfig: nodeConfig, root: root, logger: logger)
    } catch {
      for link in links { link.detach() }
      root.release(logger: logger)
      throw DatapathStartFailure("--socket-lb: cannot attach to \(cgroupRoot): \(error)")
    }
  }

  /// Turns translation off, detaches, and unmounts and removes only what start made.
  func stop() {
    do {
      try nodeConfig.update { $0.host_netns_cookie = 0 }
    } catch {
      logger.warning("cannot turn socket LB off in jnc_node_cfg", metadata: ["error": "\(error)"])
    }
    for link in links { link.detach() }
    root.release(logger: logger)
    logger.info("socket LB detached", metadata: ["cgroup_root": "\(root.path)"])
  }
}

/// The cgroup v2 directory the socket programs attach to, and what the agent did to have one
/// there: the directories it created and whether it mounted cgroup2, so that `release` undoes
/// exactly that and never someone else's mount or directory.
struct CgroupRoot {
  let path: String
  /// Created by `prepare`, outermost first.
  let createdDirectories: [String]
  let mounted: Bool

  /// `path` as a cgroup2 directory: used as it is when it already is one (a cgroup2 mount,
  /// or a cgroup inside one, which `prepare` creates when missing); otherwise the directory
  /// is created if needed and cgroup2 mounted on it.
  static func prepare(_ path: String, logger: Logger) throws -> CgroupRoot {
    var created: [String] = []
    var prefix = ""
    for component in path.split(separator: "/") {
      prefix += "/" + component
      if mkdir(prefix, 0o755) == 0 {
        created.append(prefix)
      } else if errno != EEXIST {
        let reason = String(cString: strerror(errno))
        CgroupRoot(path: path, createdDirectories: created, mounted: false).release(logger: logger)
        throw DatapathStartFailure("--cgroup-root: cannot create \(prefix): \(reason)")
      }
    }
    if CgroupFilesystem.isCgroup2(path) {
      return CgroupRoot(path: path, createdDirectories: created, mounted: false)
    }
    do {
      try CgroupFilesystem.mount(at: path)
    } catch {
      CgroupRoot(path: path, createdDirectories: created, mounted: false).release(logger: logger)
      throw DatapathStartFailure("--cgroup-root \(path) is not a cgroup2 and \(error)")
    }
    logger.info("mounted a cgroup2", metadata: ["path": "\(path)"])
    return CgroupRoot(path: path, createdDirectories: created, mounted: true)
  }

  /// Unmounts the cgroup2 if `prepare` mounted it and removes the directories it created
  /// (innermost first; a directory someone filled meanwhile stays).
  func release(logger: Logger) {
    if mounted {
      do {
        try CgroupFilesystem.unmount(at: path)
      } catch {
        logger.warning("cannot unmount the cgroup2", metadata: ["error": "\(error)"])
      }
    }
    for directory in createdDirectories.reversed() where rmdir(directory) != 0 {
      logger.warning(
        "cannot remove a directory the agent created",
        metadata: ["path": "\(directory)", "error": "\(String(cString: strerror(errno)))"])
      break
    }
  }
}
