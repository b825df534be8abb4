import AgentAPI
import ArgumentParser

#if canImport(Glibc)
  import Glibc
#endif

// apply / delete (Kubernetes YAML in, all or nothing) and service list.

extension JunctionCTL {
  struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Apply Kubernetes objects (Service, EndpointSlice, ...) from YAML.",
      discussion: """
        FILE holds one or more documents (---) or a `kind: List`, as `kubectl get -o yaml` \
        prints them; "-" reads standard input. All or nothing: when any object is invalid, \
        every problem is printed with its field path, nothing is applied, and the exit \
        status is 1. Objects of kinds the agent does not handle are reported and skipped. \
        Waits as long as the agent takes (10,000 Services take seconds); on a terminal, \
        stderr shows how long it has waited.

        Examples:
          junctionctl apply -f droids.yaml
          kubectl get svc,endpointslices -n default -o yaml | junctionctl apply -f -
        """)

    @ParentCommand var root: JunctionCTL
    @Option(
      name: .shortAndLong, help: ArgumentHelp("The YAML file, or - for stdin.", valueName: "file"))
    var file: String

    func run() throws { try ResourceFile.change(file, delete: false, socket: root.socket) }
  }

  struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Delete the Kubernetes objects named in YAML.",
      discussion: """
        The same input as apply; an object that is not there is not an error. All or \
        nothing, and waits as long as the agent takes, like apply.

        Example:
          junctionctl delete -f droids.yaml
        """)

    @ParentCommand var root: JunctionCTL
    @Option(
      name: .shortAndLong, help: ArgumentHelp("The YAML file, or - for stdin.", valueName: "file"))
    var file: String

    func run() throws { try ResourceFile.change(file, delete: true, socket: root.socket) }
  }

  struct ServiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "service",
      abstract: "The service frontends this node load-balances.",
      subcommands: [List.self]
    )

    struct List: ParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "List the frontends and their backends.",
        discussion: """
          Columns as Cilium shows them: ID (the frontend's stable id), Frontend, Service Type \
          (ClusterIP, NodePort on each node address and on 0.0.0.0, ExternalIPs, \
          LoadBalancer), Flags, Backend, one line per backend as \
          `N => ADDRESS:PORT/PROTO (state)`; active backends get new connections, terminating \
          ones only keep their existing connections, "[local]" marks a pod on this node. \
          Flags: SNAT or DSR on external frontends (how a backend on another node is reached, \
          from --lb-mode), Local when the Service's externalTrafficPolicy (external \
          frontends) or internalTrafficPolicy (ClusterIP) is Local: only this node's \
          backends are listed, and none means connections are refused.

          Examples:
            junctionctl service list
            junctionctl service list -o json
          """)

      @ParentCommand var root: JunctionCTL
      @OptionGroup var format: OutputOption

      func run() throws {
        try Agent.run(socket: root.socket) { client in
          let services = try client.services()
          try format.show(services, table: Views.serviceTable)
        }
      }
    }
  }
}

enum ResourceFile {
  static func change(_ path: String, delete: Bool, socket: String?) throws {
    let yaml = try read(path)
    try Agent.run(socket: socket) { client in
      let progress = WaitingProgress(
        verb: delete ? "deleting" : "applying", source: path == "-" ? "stdin" : path,
        bytes: yaml.utf8.count)
      let change: ResourceChange
      do {
        change = try client.changeResources(yaml: yaml, delete: delete, tick: progress.show)
        progress.finish()
      } catch {
        progress.finish()
        throw error
      }
      for line in change.skipped { print("skipped: \(line)") }
      for line in change.notes { print("note: \(line)") }
      guard change.errors.isEmpty else {
        let problems = change.errors.map { "  \($0)" }.joined(separator: "\n")
        throw Agent.Failure(
          "\(change.errors.count) problem(s) in \(path), nothing was \(delete ? "deleted" : "applied"):\n"
            + problems)
      }
      for object in change.changed { print("\(object) \(delete ? "deleted" : "configured")") }
    }
  }

  /// The waiting line on stderr while the agent works, only when stderr is a terminal (a
  /// script or a pipe gets nothing extra); nothing at all for an answer within a second.
  final class WaitingProgress {
    let verb: String
    let source: String
    let bytes: Int
    private let enabled = isatty(STDERR_FILENO) == 1
    private var shown = false

    init(verb: String, source: String, bytes: Int) {
      self.verb = verb
      self.source = source
      self.bytes = bytes
    }

    func show(seconds: Int) {
      guard enabled else { return }
      shown = true
      Agent.writeStandardError(
        WaitingLine.redraw(
          WaitingLine.text(verb: verb, source: source, bytes: bytes, seconds: seconds)))
    }

    func finish() {
      if shown { Agent.writeStandardError(WaitingLine.clear) }
      shown = false
    }
  }

  private static func read(_ path: String) throws -> String {
    let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { if fd != 0 { close(fd) } }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = Glibc.read(fd, &buffer, buffer.count)
      if count < 0, errno == EINTR { continue }
      if count < 0 {
        throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))")
      }
      if count == 0 { break }
      bytes.append(contentsOf: buffer[..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

extension JunctionCTL {
  struct RedirectPolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "lrp",
      abstract: "The Local Redirect Policies this node applies.",
      subcommands: [List.self]
    )

    struct List: ParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "List each policy, its frontends and its local backends.",
        discussion: """
          A frontend is `redirected` while one of the pods the policy selects is ready on \
          this node (it is then type LocalRedirect in `service list`); otherwise traffic to \
          a Service's frontend goes to the Service as usual and an address frontend is not \
          served.

          Examples:
            junctionctl lrp list
            junctionctl lrp list -o json
          """)

      @ParentCommand var root: JunctionCTL
      @OptionGroup var format: OutputOption

      func run() throws {
        try Agent.run(socket: root.socket) { client in
          let policies = try client.redirectPolicies()
          try format.show(policies, table: Views.redirectPolicyTable)
        }
      }
    }
  }
}

extension JunctionCTL {
  struct EnvoyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "envoy",
      abstract: "The node's Envoy: the CiliumEnvoyConfigs and Ingresses it serves.",
      subcommands: [List.self]
    )

    struct List: ParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "List each config, its Services, listener ports and whether Envoy accepted it.",
        discussion: """
          A config Envoy refused shows Envoy's own message; the version it accepted before           (if any) keeps serving (`serving`). Notes say what translation for stock Envoy           changed: Cilium-only filters dropped, typed_config filled in, proxy ports.

          Examples:
            junctionctl envoy list
            junctionctl envoy list -o json
          """)

      @ParentCommand var root: JunctionCTL
      @OptionGroup var format: OutputOption

      func run() throws {
        try Agent.run(socket: root.socket) { client in
          try format.show(try client.envoyConfigs(), table: Views.envoyTable)
        }
      }
    }
  }
}
