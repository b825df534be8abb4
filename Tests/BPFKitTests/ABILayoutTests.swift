import BPFKit
import DatapathABI
import XCTest

/// Pins the map ABI (bpf/junction_abi.h) as Swift sees it to the layout the BPF C compiles
/// to. The numbers are stated here on purpose, not computed: a change to the header shows
/// up as a failing literal, and pinned maps of a running node would no longer match (so
/// bump JUNCTION_ABI_VERSION). The C side is checked by loading the object: libbpf reuses a
/// pinned map only when key and value sizes agree, and BPFMap refuses a Swift type whose
/// size differs from the map's.
final class ABILayoutTests: XCTestCase {
  /// Size, stride and alignment equal: no tail padding that C's sizeof would count and
  /// Swift's size would not.
  private func assertLayout<T>(
    _ type: T.Type, size: Int, alignment: Int, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(MemoryLayout<T>.size, size, "size of \(T.self)", file: file, line: line)
    XCTAssertEqual(MemoryLayout<T>.stride, size, "stride of \(T.self)", file: file, line: line)
    XCTAssertEqual(
      MemoryLayout<T>.alignment, alignment, "alignment of \(T.self)", file: file, line: line)
  }

  func testEndpointKey() {
    assertLayout(junction_endpoint_key.self, size: 4, alignment: 4)
    XCTAssertEqual(MemoryLayout<junction_endpoint_key>.offset(of: \.ifindex), 0)
  }

  func testEndpointCounters() {
    assertLayout(junction_endpoint_counters.self, size: 32, alignment: 8)
    XCTAssertEqual(MemoryLayout<junction_endpoint_counters>.offset(of: \.from_packets), 0)
    XCTAssertEqual(MemoryLayout<junction_endpoint_counters>.offset(of: \.from_bytes), 8)
    XCTAssertEqual(MemoryLayout<junction_endpoint_counters>.offset(of: \.to_packets), 16)
    XCTAssertEqual(MemoryLayout<junction_endpoint_counters>.offset(of: \.to_bytes), 24)
  }

  func testDropKey() {
    assertLayout(junction_drop_key.self, size: 8, alignment: 4)
    XCTAssertEqual(MemoryLayout<junction_drop_key>.offset(of: \.reason), 0)
    XCTAssertEqual(MemoryLayout<junction_drop_key>.offset(of: \.direction), 4)
  }

  func testDropCounters() {
    assertLayout(junction_drop_counters.self, size: 16, alignment: 8)
    XCTAssertEqual(MemoryLayout<junction_drop_counters>.offset(of: \.packets), 0)
    XCTAssertEqual(MemoryLayout<junction_drop_counters>.offset(of: \.bytes), 8)
  }

  func testServiceKey() {
    typealias T = junction_lb4_service_key
    assertLayout(T.self, size: 12, alignment: 4)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.address), 0)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.port), 4)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.proto), 6)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.scope), 7)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.slot), 8)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.pad2), 10)
  }

  func testService() {
    typealias T = junction_lb4_service
    assertLayout(T.self, size: 16, alignment: 4)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.backend_id), 0)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.affinity_timeout), 4)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.count), 8)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.rev_nat_id), 10)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.flags), 12)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.proxy_port), 14)
  }

  /// The L7 proxy redirect: a frontend flag, the port in the former pad (same size, so
  /// pinned maps of the same ABI version stay compatible: their zero reads "no proxy"), a
  /// trace point, a verdict and a drop reason appended to their enums.
  func testProxyRedirect() {
    XCTAssertEqual(JUNCTION_SVC_F_L7_PROXY, 64)
    XCTAssertEqual(JUNCTION_DIR_TO_PROXY.rawValue, 5)
    XCTAssertEqual(JUNCTION_VERDICT_REDIRECTED.rawValue, 5)
    XCTAssertEqual(JUNCTION_DROP_PROXY_UNAVAILABLE.rawValue, 13)
    XCTAssertEqual(UInt32(JUNCTION_MARK_TO_PROXY) & ~UInt32(JUNCTION_MARK_TO_PROXY_MASK), 0)
    assertLayout(junction_flow_event.self, size: 64, alignment: 8)
  }

  /// The proxy listener map (SOCKHASH): keyed by the proxy port, host order, 4 bytes;
  /// the sk_lookup program and its link pin are named within the kernel's 15 characters.
  func testProxyListeners() {
    assertLayout(junction_proxy_listener_key.self, size: 4, alignment: 4)
    XCTAssertEqual(MemoryLayout.offset(of: \junction_proxy_listener_key.proxy_port), 0)
    XCTAssertEqual(JUNCTION_MAP_PROXY_LISTENERS, "jnc_proxy_lsn")
    XCTAssertEqual(JUNCTION_PROG_PROXY_LOOKUP, "proxy_lookup")
    XCTAssertEqual(JUNCTION_LINK_PROXY_LOOKUP, "proxy_lookup_link")
    XCTAssertEqual(JUNCTION_PROXY_LISTENERS_MAX, 256)
    for name in [JUNCTION_MAP_PROXY_LISTENERS, JUNCTION_PROG_PROXY_LOOKUP] {
      XCTAssertLessThanOrEqual(name.utf8.count, 15, name)
      XCTAssertFalse(name.contains("."), name)
    }
  }

  func testBackend() {
    assertLayout(junction_lb4_backend_key.self, size: 4, alignment: 4)
    typealias T = junction_lb4_backend
    assertLayout(T.self, size: 8, alignment: 4)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.address), 0)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.port), 4)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.proto), 6)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.flags), 7)
  }

  func testReverseNAT() {
    assertLayout(junction_lb4_revnat_key.self, size: 4, alignment: 2)
    XCTAssertEqual(MemoryLayout<junction_lb4_revnat_key>.offset(of: \.rev_nat_id), 0)
    XCTAssertEqual(MemoryLayout<junction_lb4_revnat_key>.offset(of: \.pad), 2)
    typealias T = junction_lb4_revnat
    assertLayout(T.self, size: 8, alignment: 4)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.address), 0)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.port), 4)
    XCTAssertEqual(MemoryLayout<T>.offset(of: \.pad), 6)
  }

  func testAffinity() {
    typealias K = junction_lb4_affinity_key
    assertLayout(K.self, size: 8, alignment: 4)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.client), 0)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.rev_nat_id), 4)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.pad), 6)
    typealias V = junction_lb4_affinity
    assertLayout(V.self, size: 16, alignment: 8)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.last_used), 0)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.backend_id), 8)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.pad), 12)
  }

  func testConntrack() {
    typealias K = junction_ct4_key
    assertLayout(K.self, size: 16, alignment: 4)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.saddr), 0)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.daddr), 4)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.sport), 8)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.dport), 10)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.proto), 12)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.direction), 13)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.pad), 14)
    typealias V = junction_ct4_entry
    assertLayout(V.self, size: 24, alignment: 8)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.last_seen), 0)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.backend_id), 8)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.rev_nat_id), 12)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.flags), 14)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.nat_address), 16)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.nat_port), 20)
  }

  /// The IPv6 twins: addresses are four __be32 (16 bytes, 4-byte aligned).
  func testIPv6ServiceMaps() {
    typealias S = junction_lb6_service_key
    assertLayout(S.self, size: 24, alignment: 4)
    XCTAssertEqual(MemoryLayout<S>.offset(of: \.address), 0)
    XCTAssertEqual(MemoryLayout<S>.offset(of: \.port), 16)
    XCTAssertEqual(MemoryLayout<S>.offset(of: \.proto), 18)
    XCTAssertEqual(MemoryLayout<S>.offset(of: \.scope), 19)
    XCTAssertEqual(MemoryLayout<S>.offset(of: \.slot), 20)
    XCTAssertEqual(MemoryLayout<S>.offset(of: \.pad2), 22)
    typealias B = junction_lb6_backend
    assertLayout(B.self, size: 20, alignment: 4)
    XCTAssertEqual(MemoryLayout<B>.offset(of: \.address), 0)
    XCTAssertEqual(MemoryLayout<B>.offset(of: \.port), 16)
    XCTAssertEqual(MemoryLayout<B>.offset(of: \.proto), 18)
    XCTAssertEqual(MemoryLayout<B>.offset(of: \.flags), 19)
    typealias R = junction_lb6_revnat
    assertLayout(R.self, size: 20, alignment: 4)
    XCTAssertEqual(MemoryLayout<R>.offset(of: \.address), 0)
    XCTAssertEqual(MemoryLayout<R>.offset(of: \.port), 16)
    XCTAssertEqual(MemoryLayout<R>.offset(of: \.pad), 18)
    typealias A = junction_lb6_affinity_key
    assertLayout(A.self, size: 20, alignment: 4)
    XCTAssertEqual(MemoryLayout<A>.offset(of: \.client), 0)
    XCTAssertEqual(MemoryLayout<A>.offset(of: \.rev_nat_id), 16)
    XCTAssertEqual(MemoryLayout<A>.offset(of: \.pad), 18)
  }

  func testIPv6Conntrack() {
    typealias K = junction_ct6_key
    assertLayout(K.self, size: 40, alignment: 4)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.saddr), 0)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.daddr), 16)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.sport), 32)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.dport), 34)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.proto), 36)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.direction), 37)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.pad), 38)
    typealias V = junction_ct6_entry
    assertLayout(V.self, size: 40, alignment: 8)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.last_seen), 0)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.backend_id), 8)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.rev_nat_id), 12)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.flags), 14)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.nat_address), 16)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.nat_port), 32)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.pad), 34)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.pad2), 36)
  }

  func testNorthSouth() {
    assertLayout(junction_dsr_opt4.self, size: 8, alignment: 4)
    XCTAssertEqual(MemoryLayout<junction_dsr_opt4>.offset(of: \.port), 2)
    XCTAssertEqual(MemoryLayout<junction_dsr_opt4>.offset(of: \.address), 4)
    assertLayout(junction_device_key.self, size: 4, alignment: 4)
    assertLayout(junction_device.self, size: 24, alignment: 4)
    XCTAssertEqual(MemoryLayout<junction_device>.offset(of: \.address6), 8)
    // Cilium's struct dsr_opt_v6, byte for byte (24 bytes: the extension header's length 2).
    assertLayout(junction_dsr_opt6.self, size: 24, alignment: 4)
    XCTAssertEqual(MemoryLayout<junction_dsr_opt6>.offset(of: \.type), 2)
    XCTAssertEqual(MemoryLayout<junction_dsr_opt6>.offset(of: \.address), 4)
    XCTAssertEqual(MemoryLayout<junction_dsr_opt6>.offset(of: \.port), 20)
    XCTAssertEqual(JUNCTION_DSR6_EXT_LEN, 24)
    typealias C = junction_node_config
    assertLayout(C.self, size: 16, alignment: 8)
    XCTAssertEqual(MemoryLayout<C>.offset(of: \.snat_port_min), 8)
    XCTAssertEqual(MemoryLayout<C>.offset(of: \.nodeport_max), 14)
  }

  func testSocketReverseNAT() {
    typealias K = junction_lb4_sock_key
    assertLayout(K.self, size: 16, alignment: 8)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.address), 8)
    XCTAssertEqual(MemoryLayout<K>.offset(of: \.port), 12)
    typealias V = junction_lb4_sock_revnat
    assertLayout(V.self, size: 8, alignment: 4)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.rev_nat_id), 6)
    typealias K6 = junction_lb6_sock_key
    assertLayout(K6.self, size: 32, alignment: 8)
    XCTAssertEqual(MemoryLayout<K6>.offset(of: \.address), 8)
    XCTAssertEqual(MemoryLayout<K6>.offset(of: \.port), 24)
    typealias V6 = junction_lb6_sock_revnat
    assertLayout(V6.self, size: 20, alignment: 4)
    XCTAssertEqual(MemoryLayout<V6>.offset(of: \.port), 16)
    XCTAssertEqual(MemoryLayout<V6>.offset(of: \.rev_nat_id), 18)
  }

  func testPodNetnsMap() {
    assertLayout(junction_pod_netns_key.self, size: 8, alignment: 8)
    typealias V = junction_pod_netns
    assertLayout(V.self, size: 24, alignment: 4)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.flags), 4)
    XCTAssertEqual(MemoryLayout<V>.offset(of: \.address6), 8)
    XCTAssertEqual(JUNCTION_POD_NETNS_F_NO_SOCKET_LB, 1)
    XCTAssertEqual(JUNCTION_MAP_POD_NETNS, "jnc_pod_netns")
  }

  /// The flow event record the datapath writes to the jnc_events ring and the agent reads
  /// byte for byte (no key or value size check protects it: the ring carries raw records).
  func testFlowEvent() {
    typealias T = junction_flow_event
    assertLayout(T.self, size: 64, alignment: 8)
    let offsets: [(PartialKeyPath<T>, Int, String)] = [
      (\.timestamp, 0, "timestamp"), (\.socket_cookie, 8, "socket_cookie"),
      (\.ifindex, 16, "ifindex"), (\.length, 20, "length"), (\.saddr, 24, "saddr"),
      (\.daddr, 28, "daddr"), (\.sport, 32, "sport"), (\.dport, 34, "dport"),
      (\.nat_address, 36, "nat_address"), (\.nat_port, 40, "nat_port"),
      (\.rev_nat_id, 42, "rev_nat_id"), (\.drop_reason, 44, "drop_reason"), (\.kind, 46, "kind"),
      (\.point, 47, "point"), (\.verdict, 48, "verdict"), (\.proto, 49, "proto"),
      (\.tcp_flags, 50, "tcp_flags"), (\.flags, 51, "flags"),
      (\.snat_address, 52, "snat_address"), (\.snat_port, 56, "snat_port"), (\.pad, 58, "pad"),
    ]
    for (path, offset, name) in offsets {
      XCTAssertEqual(MemoryLayout<T>.offset(of: path), offset, name)
    }
  }

  /// The IPv6 record (ABI 6) in the same ring: told from the IPv4 one by its size alone, so
  /// the two sizes must differ; saddr/daddr and sport/dport contiguous (one load each).
  func testFlowEvent6() {
    typealias T = junction_flow_event6
    assertLayout(T.self, size: 112, alignment: 8)
    XCTAssertNotEqual(MemoryLayout<T>.size, MemoryLayout<junction_flow_event>.size)
    let offsets: [(PartialKeyPath<T>, Int, String)] = [
      (\.timestamp, 0, "timestamp"), (\.socket_cookie, 8, "socket_cookie"),
      (\.ifindex, 16, "ifindex"), (\.length, 20, "length"), (\.saddr, 24, "saddr"),
      (\.daddr, 40, "daddr"), (\.nat_address, 56, "nat_address"),
      (\.snat_address, 72, "snat_address"), (\.sport, 88, "sport"), (\.dport, 90, "dport"),
      (\.nat_port, 92, "nat_port"), (\.snat_port, 94, "snat_port"),
      (\.rev_nat_id, 96, "rev_nat_id"), (\.drop_reason, 98, "drop_reason"), (\.kind, 100, "kind"),
      (\.point, 101, "point"), (\.verdict, 102, "verdict"), (\.proto, 103, "proto"),
      (\.tcp_flags, 104, "tcp_flags"), (\.flags, 105, "flags"), (\.pad, 106, "pad"),
    ]
    for (path, offset, name) in offsets {
      XCTAssertEqual(MemoryLayout<T>.offset(of: path), offset, name)
    }
  }

  func testMonitorConfigAndLostCounter() {
    assertLayout(junction_monitor_config.self, size: 8, alignment: 4)
    XCTAssertEqual(MemoryLayout<junction_monitor_config>.offset(of: \.level), 0)
    assertLayout(junction_events_lost.self, size: 8, alignment: 8)
    XCTAssertEqual(JUNCTION_MAP_EVENTS, "jnc_events")
    XCTAssertEqual(JUNCTION_MAP_EVENTS_LOST, "jnc_ev_lost")
    XCTAssertEqual(JUNCTION_MAP_MONITOR_CONFIG, "jnc_mon_cfg")
    XCTAssertEqual(JUNCTION_EVENTS_RING_SIZE, 1 << 20)
    // Stored and shown: append only.
    XCTAssertEqual(
      [
        JUNCTION_MONITOR_OFF.rawValue, JUNCTION_MONITOR_FLOWS.rawValue,
        JUNCTION_MONITOR_ALL.rawValue,
      ],
      [0, 1, 2])
    XCTAssertEqual(
      [JUNCTION_FLOW_TRACE.rawValue, JUNCTION_FLOW_DROP.rawValue, JUNCTION_FLOW_SOCK.rawValue],
      [1, 2, 3])
    // Hubble's Verdict numbers.
    XCTAssertEqual(
      [
        JUNCTION_VERDICT_FORWARDED.rawValue, JUNCTION_VERDICT_DROPPED.rawValue,
        JUNCTION_VERDICT_TRANSLATED.rawValue,
      ], [1, 2, 7])
    XCTAssertEqual(
      [
        JUNCTION_FLOW_F_REPLY, JUNCTION_FLOW_F_REPLY_KNOWN, JUNCTION_FLOW_F_NEW,
        JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_DSR, JUNCTION_FLOW_F_SNAT, JUNCTION_FLOW_F_LRP,
      ], [1, 2, 4, 8, 16, 32, 64])
  }

  func testConstants() {
    XCTAssertEqual(JUNCTION_ABI_VERSION, 6)
    // The conntrack lifetimes the datapath (SNAT take-over) and the agent's sweep share.
    XCTAssertEqual(
      [
        JUNCTION_CT_CLOSE_TIMEOUT_SECONDS, JUNCTION_CT_TCP_LIFETIME_SECONDS,
        JUNCTION_CT_NONTCP_LIFETIME_SECONDS,
      ], [10, 21600, 60])
    XCTAssertEqual(JUNCTION_MAP_ENDPOINT_COUNTERS, "jnc_ep_counters")
    XCTAssertEqual(JUNCTION_MAP_DROPS, "jnc_drops")
    XCTAssertEqual(JUNCTION_PROG_FROM_ENDPOINT, "from_endpoint")
    XCTAssertEqual(JUNCTION_PROG_TO_ENDPOINT, "to_endpoint")
    XCTAssertEqual(JUNCTION_ENDPOINT_COUNTERS_MAX, 16384)
    XCTAssertEqual(JUNCTION_DROPS_MAX, 1024)
    XCTAssertEqual(JUNCTION_MAP_LB4_SERVICES, "jnc_lb4_svc")
    XCTAssertEqual(JUNCTION_MAP_LB4_BACKENDS, "jnc_lb4_be")
    XCTAssertEqual(JUNCTION_MAP_LB4_REVNAT, "jnc_lb4_revnat")
    XCTAssertEqual(JUNCTION_MAP_LB4_AFFINITY, "jnc_lb4_aff")
    XCTAssertEqual(JUNCTION_MAP_LB4_MAGLEV, "jnc_lb4_maglev")
    XCTAssertEqual(JUNCTION_MAP_CT4, "jnc_ct4")
    XCTAssertEqual(JUNCTION_LB4_SERVICES_MAX, 65536)
    XCTAssertEqual(JUNCTION_LB4_BACKENDS_MAX, 65536)
    XCTAssertEqual(JUNCTION_LB4_REVNAT_MAX, 65535)
    XCTAssertEqual(JUNCTION_LB4_AFFINITY_MAX, 65536)
    XCTAssertEqual(JUNCTION_LB4_MAGLEV_MAX, 65535)
    XCTAssertEqual(JUNCTION_CT4_MAX, 262144)
    XCTAssertEqual(JUNCTION_MAP_LB6_SERVICES, "jnc_lb6_svc")
    XCTAssertEqual(JUNCTION_MAP_LB6_BACKENDS, "jnc_lb6_be")
    XCTAssertEqual(JUNCTION_MAP_LB6_REVNAT, "jnc_lb6_revnat")
    XCTAssertEqual(JUNCTION_MAP_LB6_AFFINITY, "jnc_lb6_aff")
    XCTAssertEqual(JUNCTION_MAP_CT6, "jnc_ct6")
    XCTAssertEqual(JUNCTION_LB6_SERVICES_MAX, 65536)
    XCTAssertEqual(JUNCTION_LB6_BACKENDS_MAX, 65536)
    XCTAssertEqual(JUNCTION_LB6_REVNAT_MAX, 65535)
    XCTAssertEqual(JUNCTION_LB6_AFFINITY_MAX, 65536)
    XCTAssertEqual(JUNCTION_MAP_LB6_SOCK_REVNAT, "jnc_lb6_sk_rev")
    XCTAssertEqual(JUNCTION_LB6_SOCK_REVNAT_MAX, JUNCTION_LB4_SOCK_REVNAT_MAX)
    XCTAssertEqual(JUNCTION_CT6_MAX, 262144)
    // Maglev: a prime table size and a seed every node shares.
    XCTAssertEqual(JUNCTION_MAGLEV_TABLE_SIZE, 16381)
    XCTAssertTrue((2..<128).allSatisfy { JUNCTION_MAGLEV_TABLE_SIZE % $0 != 0 })
    XCTAssertEqual(JUNCTION_MAGLEV_HASH_SEED, 0x4a4e_4331)
    XCTAssertEqual(JUNCTION_SVC_F_AFFINITY, 1)
    XCTAssertEqual(JUNCTION_SVC_F_MAGLEV, 2)
    XCTAssertEqual(JUNCTION_BE_F_TERMINATING, 1)
    XCTAssertEqual(JUNCTION_CT_F_HAIRPIN, 1)
    // Conntrack flags are bits of one field: each its own bit (CLOSING is new in v3's flags).
    let conntrackFlags = [
      JUNCTION_CT_F_HAIRPIN, JUNCTION_CT_F_SNAT, JUNCTION_CT_F_DSR, JUNCTION_CT_F_EXTERNAL,
      JUNCTION_CT_F_CLOSING,
    ]
    XCTAssertEqual(conntrackFlags, [1, 2, 4, 8, 16])
    // The kernel keeps 15 characters of a map or program name.
    for name in [
      JUNCTION_MAP_ENDPOINT_COUNTERS, JUNCTION_MAP_DROPS, JUNCTION_PROG_FROM_ENDPOINT,
      JUNCTION_PROG_TO_ENDPOINT, JUNCTION_MAP_LB4_SERVICES, JUNCTION_MAP_LB4_BACKENDS,
      JUNCTION_MAP_LB4_REVNAT, JUNCTION_MAP_LB4_AFFINITY, JUNCTION_MAP_LB4_MAGLEV,
      JUNCTION_MAP_CT4, JUNCTION_MAP_EVENTS, JUNCTION_MAP_EVENTS_LOST,
      JUNCTION_MAP_MONITOR_CONFIG, JUNCTION_MAP_LB6_SERVICES, JUNCTION_MAP_LB6_BACKENDS,
      JUNCTION_MAP_LB6_REVNAT, JUNCTION_MAP_LB6_AFFINITY, JUNCTION_MAP_CT6,
    ] {
      XCTAssertLessThanOrEqual(name.utf8.count, 15, name)
      // bpffs refuses pin names with a dot.
      XCTAssertFalse(name.contains("."), name)
    }
  }

  /// Stored in pinned maps and shown to users: append only, never renumber.
  func testEnumValuesAreStable() {
    XCTAssertEqual(JUNCTION_DIR_FROM_ENDPOINT.rawValue, 0)
    XCTAssertEqual(JUNCTION_DIR_TO_ENDPOINT.rawValue, 1)
    let reasons: [(junction_drop_reason, UInt32)] = [
      (JUNCTION_DROP_OK, 0), (JUNCTION_DROP_UNKNOWN, 1), (JUNCTION_DROP_INVALID_PACKET, 2),
      (JUNCTION_DROP_UNSUPPORTED_L3, 3), (JUNCTION_DROP_NO_SERVICE, 4),
      (JUNCTION_DROP_NO_BACKEND, 5), (JUNCTION_DROP_CT_MAP_FULL, 6),
      (JUNCTION_DROP_NAT_FAILED, 7), (JUNCTION_DROP_CSUM_FAILED, 8), (JUNCTION_DROP_POLICY, 9),
      (JUNCTION_DROP_PROXY_UNAVAILABLE, 13), (JUNCTION_DROP_INVALID_EXTHDR, 14),
    ]
    for (reason, value) in reasons {
      XCTAssertEqual(reason.rawValue, value, "\(reason)")
    }
    XCTAssertEqual(JUNCTION_CT_SERVICE.rawValue, 0)
    XCTAssertEqual(JUNCTION_CT_REPLY.rawValue, 1)
  }

  func testCountersSumFieldByField() {
    var total = junction_endpoint_counters()
    total.add(
      junction_endpoint_counters(from_packets: 1, from_bytes: 60, to_packets: 2, to_bytes: 120))
    total.add(
      junction_endpoint_counters(
        from_packets: .max, from_bytes: 40, to_packets: 0, to_bytes: 0))
    XCTAssertEqual(total.from_packets, 0, "wraps like the datapath's u64")
    XCTAssertEqual(total.from_bytes, 100)
    XCTAssertEqual(total.to_packets, 2)
    XCTAssertEqual(total.to_bytes, 120)
  }
}
