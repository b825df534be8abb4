/// GET /v1/bpf/lb written straight into bytes: the JSON JSONEncoder with `.sortedKeys` gives
/// for `LBMapDump`, byte for byte (AgentAPITests compare them). At 10,000 Services × 10
/// backends the dump has ≈ 110,000 service-map entries (a 26 MB body): through JSONEncoder
/// one request took 13 s and the agent's peak to 278 MiB (bench/results/agent-memory.md).
/// A field added to an LB type must be added here, in sorted place.
extension LBMapDump {
  /// The dump as a JSON object, followed by "\n" as the API's bodies are.
  public var jsonBytes: [UInt8] {
    var w = SortedKeyJSONWriter()
    // ≈ 200 bytes per service-map entry, 120 per backend: one allocation for most dumps.
    w.out.reserveCapacity(1024 + 200 * services.count + 120 * backends.count)
    w.object { w in
      w.array("backends", backends) { w, backend in
        w.object { w in
          w.string("address", backend.address)
          w.strings("flagNames", backend.flagNames)
          w.number("flags", backend.flags)
          w.number("id", backend.id)
          w.number("port", backend.port)
          w.string("proto", backend.proto)
        }
      }
      w.array("maglevTables", maglevTables) { w, id in w.out.append(contentsOf: String(id).utf8) }
      w.array("maps", maps) { w, map in
        w.object { w in
          w.number("maxEntries", map.maxEntries)
          w.string("name", map.name)
        }
      }
      if let nodeConfig {
        w.key("nodeConfig")
        w.object { w in
          w.number("hostNetnsCookie", nodeConfig.hostNetnsCookie)
          w.number("nodePortMax", nodeConfig.nodePortMax)
          w.number("nodePortMin", nodeConfig.nodePortMin)
          w.number("snatPortMax", nodeConfig.snatPortMax)
          w.number("snatPortMin", nodeConfig.snatPortMin)
        }
      }
      w.array("reverseNAT", reverseNAT) { w, entry in
        w.object { w in
          w.string("address", entry.address)
          w.number("id", entry.id)
          w.bool("maglev", entry.maglev)
          w.number("port", entry.port)
        }
      }
      w.array("services", services) { w, entry in
        w.object { w in
          w.string("address", entry.address)
          w.number("affinityTimeout", entry.affinityTimeout)
          w.number("backendID", entry.backendID)
          w.number("count", entry.count)
          w.strings("flagNames", entry.flagNames)
          w.number("flags", entry.flags)
          w.number("port", entry.port)
          w.string("proto", entry.proto)
          w.number("proxyPort", entry.proxyPort)
          w.number("revNatID", entry.revNatID)
          w.number("slot", entry.slot)
        }
      }
    }
    w.out.append(UInt8(ascii: "\n"))
    return w.out
  }
}
