import AgentAPI
import ArgumentParser

// bpf lb list: the datapath's service maps as the kernel holds them (GET /v1/bpf/lb).
// bpf drops: the drop counters by reason and direction (GET /v1/bpf/drops).

extension JunctionCTL {
  struct BPFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "bpf",
      abstract: "Raw contents of the datapath's BPF maps, read back from the kernel.",
      subcommands: [LBCommand.self, Drops.self]
    )
  }
}

extension JunctionCTL.BPFCommand {
  struct LBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "lb",
      abstract:
        "The load-balancing maps (jnc_lb4_svc, jnc_lb4_be, jnc_lb4_revnat, jnc_lb4_maglev).",
      subcommands: [List.self]
    )
  }
}

extension JunctionCTL.BPFCommand {
  struct Drops: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The datapath's drop counters (jnc_drops) by reason and direction.",
      discussion: """
        Every packet a datapath program dropped, counted under its reason and where it was \
        dropped: from-endpoint (leaving a pod), to-endpoint (entering a pod), from-netdev \
        and to-netdev (a --devices interface), sock (a socket hook). Counted since the map \
        was pinned (agent restarts keep it), summed over the CPUs; only pairs that dropped \
        at least once are listed. Reasons are the datapath's (bpf/junction_abi.h) in words, \
        as `junctionctl observe` prints them.
        -o json prints the counters as the API returns them (GET /v1/bpf/drops), with each \
        reason's numeric code.

        Examples:
          junctionctl bpf drops
          junctionctl bpf drops -o json
        """)

    @ParentCommand var root: JunctionCTL
    @OptionGroup var format: OutputOption

    func run() throws {
      try Agent.run(socket: root.socket) { client in
        try format.show(try client.dropCounters(), table: Views.dropTable)
      }
    }
  }
}

extension JunctionCTL.BPFCommand.LBCommand {
  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List the service map entries as the datapath sees them.",
      discussion: """
        What the kernel's maps hold, entry by entry (not the agent's desired state; compare \
        with `junctionctl service list`). Columns as `cilium-dbg bpf lb list` shows them:

          SERVICE ADDRESS      VIP:PORT/PROTO (SLOT)
          BACKEND ADDRESS      ADDRESS:PORT/PROTO (REVNAT_ID) (SLOT)

        Slot 0 is the frontend entry: its backend column is 0.0.0.0:0 ([::]:0 for an IPv6 \
        one; IPv6 addresses are printed in brackets), and the brackets \
        hold the service type (from the agent, when it knows the frontend), "count N" (the \
        slots 1..N new connections choose from), "maglev" when the frontend selects through \
        a Maglev table (and "no table" when none is installed), and "affinity Ns" for \
        ClientIP affinity, then "external" (NodePort, ExternalIPs, LoadBalancer: served on \
        the node's devices) and "dsr" (remote backends reached by direct server return \
        instead of SNAT). Slots 1..N each name one backend; "[terminating]" marks a backend \
        that keeps its connections but gets no new ones, "[local]" a pod on this node, and \
        "missing" a slot whose backend id is not in jnc_lb4_be.

        --backends lists jnc_lb4_be (ID, ADDRESS, STATE: active or terminating, and local \
        for a pod on this node); --revnat lists jnc_lb4_revnat (ID, ADDRESS, MAGLEV: \
        whether jnc_lb4_maglev has a table for it).
        -o json prints the whole dump as the API returns it (GET /v1/bpf/lb), including \
        each map's max_entries and the jnc_node_cfg entry (NodePort and SNAT port ranges).

        Examples:
          junctionctl bpf lb list
          junctionctl bpf lb list --backends
          junctionctl bpf lb list -o json
        """)

    @ParentCommand var root: JunctionCTL
    @OptionGroup var format: OutputOption

    @Flag(help: "List the backend map (jnc_lb4_be) instead.")
    var backends = false

    @Flag(help: "List the reverse-NAT map (jnc_lb4_revnat) instead.")
    var revnat = false

    func validate() throws {
      if backends && revnat { throw ValidationError("--backends and --revnat exclude each other") }
    }

    func run() throws {
      try Agent.run(socket: root.socket) { client in
        let dump = try client.loadBalancerMaps()
        switch format.output {
        case .json:
          print(try Output.json(dump))
        case .table:
          if backends {
            print(Views.lbBackendTable(dump), terminator: "")
          } else if revnat {
            print(Views.lbRevNATTable(dump), terminator: "")
          } else {
            // The service type is the agent's knowledge, not the map's: a label only.
            let types = Dictionary(
              (try? client.services())?.map { ($0.id, $0.type) } ?? [],
              uniquingKeysWith: { a, _ in a })
            print(Views.lbServiceTable(dump, types: types), terminator: "")
          }
        }
      }
    }
  }
}

extension Views {
  /// `bpf lb list`: one row per jnc_lb4_svc entry, in the dump's order (VIP, port, proto, slot).
  static func lbServiceTable(_ dump: LBMapDump, types: [Int: String]) -> String {
    let backends = Dictionary(dump.backends.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    let maglev = Set(dump.maglevTables)
    let rows = dump.services.map { entry -> [String] in
      let service = "\(entry.frontend) (\(entry.slot))"
      let ids = "(\(entry.revNatID)) (\(entry.slot))"
      if entry.slot == 0 {
        var notes: [String] = []
        if let type = types[entry.revNatID] { notes.append(type) }
        notes.append("count \(entry.count)")
        if entry.flagNames.contains("maglev") {
          notes.append(maglev.contains(entry.revNatID) ? "maglev" : "maglev, no table")
        }
        if entry.flagNames.contains("affinity") {
          notes.append("affinity \(entry.affinityTimeout)s")
        }
        notes += entry.flagNames.filter { $0 != "maglev" && $0 != "affinity" && $0 != "l7-proxy" }
        if let port = entry.proxyPort { notes.append("l7-proxy :\(port)") }
        // The frontend entry's empty backend, of the frontend's family (as Cilium prints it).
        let none = entry.isIPv6 ? "[::]:0" : "0.0.0.0:0"
        return [service, "\(none) \(ids) [\(notes.joined(separator: ", "))]"]
      }
      guard let backend = backends[entry.backendID] else {
        return [service, "backend \(entry.backendID) \(ids) [missing]"]
      }
      let state = backend.flagNames.isEmpty ? "" : " [\(backend.flagNames.joined(separator: ", "))]"
      return [service, "\(backend.endpoint) \(ids)\(state)"]
    }
    return Output.table(
      header: ["SERVICE ADDRESS", "BACKEND ADDRESS (REVNAT_ID) (SLOT)"], rows: rows)
  }

  /// `bpf drops`: as `cilium-dbg bpf metrics list` shows its drops.
  static func dropTable(_ dump: DropCounterDump) -> String {
    let rows = dump.drops.map { [$0.reason, $0.direction, "\($0.packets)", "\($0.bytes)"] }
    return Output.table(header: ["REASON", "DIRECTION", "PACKETS", "BYTES"], rows: rows)
  }

  /// `bpf lb list --backends`.
  static func lbBackendTable(_ dump: LBMapDump) -> String {
    let rows = dump.backends.map {
      let state = $0.flagNames.contains("terminating") ? [] : ["active"]
      return ["\($0.id)", $0.endpoint, (state + $0.flagNames).joined(separator: ",")]
    }
    return Output.table(header: ["ID", "ADDRESS", "STATE"], rows: rows)
  }

  /// `bpf lb list --revnat`.
  static func lbRevNATTable(_ dump: LBMapDump) -> String {
    let rows = dump.reverseNAT.map { ["\($0.id)", $0.source, yesNo($0.maglev)] }
    return Output.table(header: ["ID", "ADDRESS", "MAGLEV"], rows: rows)
  }
}
