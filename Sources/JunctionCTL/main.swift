import AgentAPI
import ArgumentParser

// The command tree. Each command fetches from the agent, renders with Views/Output, and leaves
// errors to `Agent.run`, which turns them into one line on stderr and exit status 1.

struct JunctionCTL: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "junctionctl",
    abstract: "Inspect and configure the Junction node agent through its API socket.",
    discussion: """
      Talks HTTP/JSON to the agent on its Unix socket: --socket PATH, else $JUNCTION_SOCKET, \
      else \(Agent.defaultSocket). The socket is root-only, so run as root.
      --socket may come before or after the subcommand. On failure junctionctl prints one \
      line on stderr and exits 1.

      Examples:
        junctionctl status
        junctionctl --socket /tmp/node-a/junction.sock endpoint list
        JUNCTION_SOCKET=/tmp/node-a/junction.sock junctionctl endpoint list -o json
        junctionctl endpoint get 4f9c2a1d:eth0
        junctionctl apply -f droids.yaml
        junctionctl service list
        junctionctl envoy list
        junctionctl bpf lb list
        junctionctl bpf drops
        junctionctl observe --to-pod default/web -f
        junctionctl ui
      """,
    subcommands: [
      Status.self, EndpointCommand.self, ServiceCommand.self, RedirectPolicyCommand.self,
      EnvoyCommand.self, Apply.self, Delete.self,
      BPFCommand.self, Observe.self, UI.self,
    ]
  )

  @Option(
    help: ArgumentHelp(
      "The agent's API socket (default: $JUNCTION_SOCKET, else \(Agent.defaultSocket)).",
      valueName: "path"))
  var socket: String?
}

struct OutputOption: ParsableArguments {
  @Option(
    name: .shortAndLong,
    help: ArgumentHelp(
      "table for people, json (pretty, sorted keys) for scripts.", valueName: "format"))
  var output: OutputFormat = .table

  /// Prints `value` the way --output asks: as `table` draws it, or as the JSON the API
  /// returned it.
  func show<Value: Encodable>(_ value: Value, table: (Value) -> String) throws {
    switch output {
    case .table: print(table(value), terminator: "")
    case .json: print(try Output.json(value))
    }
  }
}

enum OutputFormat: String, CaseIterable, ExpressibleByArgument {
  case table
  case json
}

extension JunctionCTL {
  struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the agent's version, node, datapath and the health of each part.",
      discussion: """
        Exits 0 whenever the agent answers, also when it reports itself degraded; read \
        "Status" (or "status" in -o json) for that.

        Examples:
          junctionctl status
          junctionctl status -o json
        """)

    @ParentCommand var root: JunctionCTL
    @OptionGroup var format: OutputOption

    func run() throws {
      try Agent.run(socket: root.socket) { client in
        let health = try Agent.health(client)
        // Older agents name no hook: theirs is clsact.
        let hook = (try? client.config()).map { $0.tcHook ?? "clsact" }
        try format.show(health) { Views.status($0, tcHook: hook) }
      }
    }
  }

  struct EndpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "endpoint",
      abstract: "List and inspect the pod endpoints registered with the agent.",
      discussion: """
        An endpoint is one pod attachment, registered by the CNI plugin on ADD; its id is \
        CONTAINERID:IFNAME.
        """,
      subcommands: [List.self, Get.self]
    )
  }
}

extension JunctionCTL.EndpointCommand {
  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List the registered endpoints.",
      discussion: """
        PACKETS and BYTES are the datapath's counters as FROM/TO: from the pod (leaving it) \
        and to the pod (entering it); "-" when the datapath is not loaded. ATTACHED says \
        whether both endpoint programs are on the host interface now.
        -o json prints the array as the API returns it (GET /v1/endpoints).

        Examples:
          junctionctl endpoint list
          junctionctl endpoint list -o json
        """)

    @ParentCommand var root: JunctionCTL
    @OptionGroup var format: OutputOption

    func run() throws {
      try Agent.run(socket: root.socket) { client in
        let endpoints = try client.endpoints()
        try format.show(endpoints, table: Views.endpointTable)
      }
    }
  }

  struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show one endpoint: its registration, creation time, counters, attachment.",
      discussion: """
        Examples:
          junctionctl endpoint get 4f9c2a1d:eth0
          junctionctl endpoint get 4f9c2a1d:eth0 -o json
        """)

    @ParentCommand var root: JunctionCTL
    @OptionGroup var format: OutputOption

    @Argument(help: ArgumentHelp("The endpoint id.", valueName: "containerID:ifname"))
    var id: String

    func run() throws {
      try Agent.run(socket: root.socket) { client in
        if let problem = EndpointID.problem(id) {
          throw Agent.Failure("\"\(id)\" is not an endpoint id: it \(problem)")
        }
        guard let endpoint = try client.endpoint(id) else {
          throw Agent.Failure("endpoint \(id) not found")
        }
        try format.show(endpoint, table: Views.endpointDetail)
      }
    }
  }
}

JunctionCTL.main()
