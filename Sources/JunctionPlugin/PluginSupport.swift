import CNIKit
import Logging
import NetKit

/// The pod's network namespace as ADD and CHECK open it, in every mode.
enum PodNamespace {
  /// Opens CNI_NETNS: a path that is not there means the container is gone (code 3); a
  /// file that is not a namespace, or our own namespace, is a bad CNI_NETNS (code 4) — the
  /// latter would wire the pod's routes into (or attach pod programs to) the node itself.
  static func open(_ path: String) throws(CNIError) -> NetworkNamespace {
    let netns: NetworkNamespace
    do {
      netns = try NetworkNamespace.open(path)
    } catch .notFound {
      throw CNIError(.containerUnknown, "CNI_NETNS \(path) does not exist")
    } catch .notANamespace {
      throw CNIError(.invalidEnvironment, "CNI_NETNS \(path) is not a network namespace")
    } catch {
      throw CNIError(.invalidEnvironment, "CNI_NETNS: \(error)")
    }
    if let own = try? NetworkNamespace.current(), own.isSame(as: netns) {
      throw CNIError(
        .invalidEnvironment, "CNI_NETNS \(path) is the plugin's own network namespace, not a pod's")
    }
    return netns
  }
}

extension PodNamespace {
  /// The pod namespace's cookie for the registration, read from the rtnetlink socket ADD
  /// already holds in there (one getsockopt; no socket, no setns), so the agent can record
  /// the pod for socket LB without entering the namespace itself. nil before Linux 5.14
  /// (no SO_NETNS_COOKIE): the agent then reads it, if it may; ADD never fails for it.
  static func cookie(_ podSocket: RouteSocket, logger: Logger) -> UInt64? {
    do {
      let cookie = try podSocket.namespaceCookie()
      return cookie == 0 ? nil : cookie
    } catch {
      logger.debug(
        "no network namespace cookie for the registration", metadata: ["error": "\(error)"])
      return nil
    }
  }
}

/// Runs kernel work and reports a failure as a CNI error naming the operation.
func netlink<T>(_ body: () throws(NetKitError) -> T) throws(CNIError) -> T {
  do {
    return try body()
  } catch {
    throw CNIError(.netlinkFailure, error.description)
  }
}

/// What ADD has done so far, undone in reverse when a later step fails.
struct UndoStack {
  let logger: Logger
  private var steps: [(String, () throws(CNIError) -> Void)] = []

  init(logger: Logger) { self.logger = logger }

  mutating func push(_ what: String, _ step: @escaping () throws(CNIError) -> Void) {
    steps.append((what, step))
  }

  func unwind() {
    for (what, step) in steps.reversed() {
      do {
        try step()
      } catch {
        logger.error(
          "cleanup after a failed ADD did not complete",
          metadata: ["step": "\(what)", "error": "\(error.msg)"])
      }
    }
  }
}

/// CHECK's verdict in every mode: nothing when it found no problem, else code 105 listing
/// them all (the spec asks CHECK to report what it found, not the first thing).
/// "CHECK found 2 differences from prevResult": `noun` counted, then `context`.
func requireNoProblems(_ problems: [String], found noun: String, _ context: String)
  throws(CNIError)
{
  guard problems.isEmpty else {
    throw CNIError(
      .checkMismatch,
      "CHECK found \(problems.count) \(noun)\(problems.count == 1 ? "" : "s") \(context)",
      details: problems.joined(separator: "; "))
  }
}

/// GC's verdict in every mode: it keeps going past failures and reports them all at the end,
/// as the spec asks (code 100 with each failure in the details).
func requireNoGCFailures(_ failures: [String]) throws(CNIError) {
  guard failures.isEmpty else {
    throw CNIError(
      .internalFailure, "GC could not remove \(failures.count) stale resource(s)",
      details: failures.joined(separator: "; "))
  }
}

/// The per-pod opt-out of socket LB: CNI_ARGS JUNCTION_SOCKET_LB=false (a runtime or Multus
/// passes it per pod) registers the endpoint with `socketLB: false`, so the agent leaves its
/// sockets to the per-packet path. Any other value, or none, is the default (covered).
enum SocketLBOptOut {
  static let key = "JUNCTION_SOCKET_LB"

  static func socketLB(_ value: String?) -> Bool? {
    value?.lowercased() == "false" ? false : nil
  }
}
