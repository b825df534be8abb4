/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Junction datapath ABI: every BPF map key and value, and every name and constant that
 * the BPF programs (the C files in bpf/, built with clang -target bpf) and the agent and
 * the CNI plugin (Swift, through the DatapathABI module) must agree on. Nothing restates
 * these layouts by hand anywhere else; Tests/BPFKitTests/ABILayoutTests.swift pins sizes
 * and offsets.
 *
 * Rules, because both compilers and the kernel read the same bytes:
 * - only fixed-width <linux/types.h> types (__u32, __u64), never int/long/bool/enum members;
 * - padding spelled out (pad fields, zeroed by writers) so there is no compiler-inserted
 *   padding: the kernel hashes and compares hash-map keys byte for byte, and Swift's
 *   MemoryLayout<T>.size omits trailing padding that C's sizeof includes;
 * - no bitfields (Swift cannot take their offsets, and their layout is the compiler's);
 * - nothing BPF-only here (no SEC(), no map definitions): those live in the .c files, so
 *   this header also compiles in Swift's clang importer on the host target.
 *
 * Pinned maps outlive the agent, and libbpf reuses a pinned map only when its type, key
 * size, value size, max_entries and flags match. So a layout or max-entries change is an
 * ABI change: bump JUNCTION_ABI_VERSION. At start the agent replaces a pin of another
 * layout with the new map and writes it (SizedObject.swift); a map whose entries must survive
 * the upgrade (conntrack) is copied instead (ConntrackMaps.swift).
 */
#ifndef JUNCTION_ABI_H
#define JUNCTION_ABI_H

#include <linux/types.h>

/* Bumped on any change to a struct, enum value, map type or size below. */
#define JUNCTION_ABI_VERSION 6

/* ---- Names ---------------------------------------------------------------------------- */

/*
 * Map names are the names in the ELF object and the file names libbpf pins them under
 * (LIBBPF_PIN_BY_NAME: <pin root>/<name>). The kernel keeps at most 15 characters of an
 * object name (BPF_OBJ_NAME_LEN 16 with the NUL), hence the short "jnc_" prefix.
 */
#define JUNCTION_MAP_ENDPOINT_COUNTERS "jnc_ep_counters"
#define JUNCTION_MAP_DROPS "jnc_drops"
/* Service load balancing (IPv4): see "Service load balancing" below. */
#define JUNCTION_MAP_LB4_SERVICES "jnc_lb4_svc"
#define JUNCTION_MAP_LB4_BACKENDS "jnc_lb4_be"
#define JUNCTION_MAP_LB4_REVNAT "jnc_lb4_revnat"
#define JUNCTION_MAP_LB4_AFFINITY "jnc_lb4_aff"
#define JUNCTION_MAP_LB4_MAGLEV "jnc_lb4_maglev"
#define JUNCTION_MAP_CT4 "jnc_ct4"
/* Service load balancing (IPv6): see "Service load balancing (IPv6)" below. */
#define JUNCTION_MAP_LB6_SERVICES "jnc_lb6_svc"
#define JUNCTION_MAP_LB6_BACKENDS "jnc_lb6_be"
#define JUNCTION_MAP_LB6_REVNAT "jnc_lb6_revnat"
#define JUNCTION_MAP_LB6_AFFINITY "jnc_lb6_aff"
#define JUNCTION_MAP_CT6 "jnc_ct6"
/* North-south and socket load balancing: see "Node devices" and "Socket load balancing". */
#define JUNCTION_MAP_DEVICES "jnc_devices"
#define JUNCTION_MAP_NODE_CONFIG "jnc_node_cfg"
#define JUNCTION_MAP_LB4_SOCK_REVNAT "jnc_lb4_sk_rev"
#define JUNCTION_MAP_LB6_SOCK_REVNAT "jnc_lb6_sk_rev"
#define JUNCTION_MAP_POD_NETNS "jnc_pod_netns"
/* L7 proxy redirect: see "L7 proxy redirect" below. */
#define JUNCTION_MAP_PROXY_LISTENERS "jnc_proxy_lsn"
/* Flow events: see "Flow events" below. */
#define JUNCTION_MAP_EVENTS "jnc_events"
#define JUNCTION_MAP_EVENTS_LOST "jnc_ev_lost"
#define JUNCTION_MAP_MONITOR_CONFIG "jnc_mon_cfg"

/*
 * Program names are the C function names in bpf/endpoint.c; the agent pins them under these
 * names in its bpffs directory and the CNI plugin opens them from there.
 */
#define JUNCTION_PROG_FROM_ENDPOINT "from_endpoint"
#define JUNCTION_PROG_TO_ENDPOINT "to_endpoint"
/* bpf/netdev.c: tc ingress and egress of the node's devices (--devices), north-south. */
#define JUNCTION_PROG_FROM_NETDEV "from_netdev"
#define JUNCTION_PROG_TO_NETDEV "to_netdev"
/* bpf/sock.c: cgroup v2 socket hooks, for the node's own processes (socket LB). */
#define JUNCTION_PROG_SOCK_CONNECT4 "sock_connect4"
#define JUNCTION_PROG_SOCK_SENDMSG4 "sock_sendmsg4"
#define JUNCTION_PROG_SOCK_RECVMSG4 "sock_recvmsg4"
#define JUNCTION_PROG_SOCK_GETPEERNAME4 "sock_getpeername4"
#define JUNCTION_PROG_SOCK_CONNECT6 "sock_connect6"
#define JUNCTION_PROG_SOCK_SENDMSG6 "sock_sendmsg6"
#define JUNCTION_PROG_SOCK_RECVMSG6 "sock_recvmsg6"
#define JUNCTION_PROG_SOCK_GETPEERNAME6 "sock_getpeername6"
/* bpf/proxy_lookup.c: the node namespace's socket lookup (BPF_SK_LOOKUP), L7 proxy redirect.
 * Attached with a BPF link the agent pins under this name with the suffix below. */
#define JUNCTION_PROG_PROXY_LOOKUP "proxy_lookup"
#define JUNCTION_LINK_PROXY_LOOKUP "proxy_lookup_link"

/* ---- Sizes ---------------------------------------------------------------------------- */

/* Host-side veths on one node: far above any kubelet's max-pods, and a hash map only uses
 * memory for the entries it holds (per CPU, for per-CPU maps). */
#define JUNCTION_ENDPOINT_COUNTERS_MAX 16384
/* Every (reason, direction) pair, with room for reasons added later. */
#define JUNCTION_DROPS_MAX 1024

/*
 * Defaults for the load-balancing maps. The agent may size them from its config with
 * BPFObject.setMaxEntries before load (a different size is a different pinned map: see the
 * ABI rule at the top). Services, backends and rev-NAT are not preallocated, so a generous
 * maximum costs nothing until used; conntrack (a preallocated hash) and affinity (LRU) are
 * always preallocated by the kernel (~100 bytes per entry).
 */
/* Frontends x (1 master + one slot per active backend): 65536 is ~6k services of 10. */
#define JUNCTION_LB4_SERVICES_MAX 65536
#define JUNCTION_LB4_BACKENDS_MAX 65536
/* rev_nat_id is a __u16; id 0 means "none". */
#define JUNCTION_LB4_REVNAT_MAX 65535
#define JUNCTION_LB4_AFFINITY_MAX 65536
/* Services with a Maglev table (one 64 KiB inner map each, allocated only when set). */
#define JUNCTION_LB4_MAGLEV_MAX 65535
/* Two entries per connection (request and reply direction). */
#define JUNCTION_CT4_MAX 262144
/* IPv6 twins of the maps above (not yet sized from the agent's flags). */
#define JUNCTION_LB6_SERVICES_MAX 65536
#define JUNCTION_LB6_BACKENDS_MAX 65536
#define JUNCTION_LB6_REVNAT_MAX 65535
#define JUNCTION_LB6_AFFINITY_MAX 65536
#define JUNCTION_CT6_MAX 262144
/* Node devices the agent serves north-south (--devices). */
#define JUNCTION_DEVICES_MAX 64
/* Connected or sending sockets translated by socket LB (one entry per socket and backend). */
#define JUNCTION_LB4_SOCK_REVNAT_MAX 65536
#define JUNCTION_LB6_SOCK_REVNAT_MAX 65536
#define JUNCTION_POD_NETNS_MAX 16384

/*
 * The flow event ring (BPF_MAP_TYPE_RINGBUF): bytes, a power of 2 and a multiple of the page
 * size. 1 MiB holds ~14,500 IPv4 events of 64 bytes (+ 8 bytes of ring header each), or
 * ~8,700 IPv6 ones of 112: a burst of that many new connections or drops between two polls
 * of the agent before one is lost.
 */
#define JUNCTION_EVENTS_RING_SIZE (1 << 20)

/*
 * Maglev lookup table size M: a prime (Maglev needs M prime so every backend's permutation
 * visits every slot), > 100 x backends for <= 1% disruption on a change (Cilium's default).
 * Fixed, not configurable: it is the inner maps' value size, so changing it is an ABI change.
 */
#define JUNCTION_MAGLEV_TABLE_SIZE 16381
/*
 * The datapath's Maglev hash of a connection (bpf/lib/jhash.h: jhash_3words over the
 * 4-tuple in host byte order with this seed plus the protocol). The same on every node, so
 * two nodes with the same table send the same 5-tuple to the same backend.
 */
#define JUNCTION_MAGLEV_HASH_SEED 0x4a4e4331

/* ---- Directions ----------------------------------------------------------------------- */

/*
 * Seen from the endpoint (pod), as in Cilium: "from" is traffic the pod sends (tc ingress
 * on its host-side veth), "to" is traffic delivered to it (tc egress on the host-side veth).
 */
enum junction_direction {
	JUNCTION_DIR_FROM_ENDPOINT = 0,
	JUNCTION_DIR_TO_ENDPOINT = 1,
	/* A node device (--devices): tc ingress (from the network) and egress (to it). */
	JUNCTION_DIR_FROM_NETDEV = 2,
	JUNCTION_DIR_TO_NETDEV = 3,
	/* A socket hook (socket LB). */
	JUNCTION_DIR_SOCKET = 4,
	/* A flow trace point only (never a hook, never a drop direction): a redirected
	 * frontend's packet handed to the node's proxy listener (JUNCTION_SVC_F_L7_PROXY), seen
	 * by from_endpoint or from_netdev (the event's ifindex says which). */
	JUNCTION_DIR_TO_PROXY = 5,
};

/* ---- Drop reasons --------------------------------------------------------------------- */

/*
 * Why the datapath dropped a packet; every TC_ACT_SHOT is counted in JUNCTION_MAP_DROPS
 * under one of these. Values are stable (they are stored in pinned maps and shown by
 * junctionctl): append, never renumber. OK (0) is "not dropped" and is never counted.
 */
enum junction_drop_reason {
	JUNCTION_DROP_OK = 0,
	JUNCTION_DROP_UNKNOWN = 1,            /* a path with no better reason */
	JUNCTION_DROP_INVALID_PACKET = 2,     /* headers shorter than they claim, bad lengths */
	JUNCTION_DROP_UNSUPPORTED_L3 = 3,     /* a protocol the datapath refuses */
	JUNCTION_DROP_NO_SERVICE = 4,         /* reserved: service lookup policy */
	JUNCTION_DROP_NO_BACKEND = 5,         /* reserved: a service VIP with no backends */
	JUNCTION_DROP_CT_MAP_FULL = 6,        /* conntrack full: a new connection refused */
	JUNCTION_DROP_NAT_FAILED = 7,         /* reserved: DNAT/SNAT rewrite failed */
	JUNCTION_DROP_CSUM_FAILED = 8,        /* reserved: checksum fix-up failed */
	JUNCTION_DROP_POLICY = 9,             /* reserved: denied by policy */
	JUNCTION_DROP_FRAG_NEEDED = 10,       /* DSR: the option would exceed the MTU */
	JUNCTION_DROP_NO_NAT_PORT = 11,       /* SNAT: no free source port in the range */
	JUNCTION_DROP_FIB_FAILED = 12,        /* no route or neighbour to forward to */
	JUNCTION_DROP_PROXY_UNAVAILABLE = 13, /* L7 proxy frontend, no listener on its port */
	JUNCTION_DROP_INVALID_EXTHDR = 14,    /* IPv6: more extension headers than walked, or
					       * one cut short */
};

/* ---- Map: JUNCTION_MAP_ENDPOINT_COUNTERS (BPF_MAP_TYPE_PERCPU_HASH) ------------------- */

/* The endpoint's host-side veth, as the programs see it in skb->ifindex: on both its tc
 * ingress and tc egress hook that is the veth the program is attached to. */
struct junction_endpoint_key {
	__u32 ifindex;
};

/*
 * Packets and bytes (skb->len: the frame from the Ethernet header on, without FCS) per
 * direction. Per CPU, so the datapath adds without atomics; readers sum over all possible
 * CPUs. Counters only grow (wrapping at 2^64); an entry appears on a veth's first packet.
 */
struct junction_endpoint_counters {
	__u64 from_packets;
	__u64 from_bytes;
	__u64 to_packets;
	__u64 to_bytes;
};

/* ---- Map: JUNCTION_MAP_DROPS (BPF_MAP_TYPE_PERCPU_HASH) ------------------------------- */

struct junction_drop_key {
	__u32 reason;    /* enum junction_drop_reason */
	__u32 direction; /* enum junction_direction */
};

struct junction_drop_counters {
	__u64 packets;
	__u64 bytes;
};

/* ---- Service load balancing (IPv4) ---------------------------------------------------- */

/*
 * Layout, after Cilium's lb4 maps (slot-in-key scheme):
 *
 *   jnc_lb4_svc     HASH      {VIP, port, proto, slot} -> junction_lb4_service
 *                             slot 0 is the frontend ("master"): count, rev_nat_id, flags,
 *                             affinity timeout. Slots 1..count each name one ACTIVE backend
 *                             (backend_id); random selection picks slot 1 + rand % count.
 *   jnc_lb4_be      HASH      backend id -> address, port, proto, state flags
 *   jnc_lb4_revnat  HASH      rev_nat_id -> VIP, port (reply source rewrite)
 *   jnc_lb4_maglev  HASH_OF_MAPS rev_nat_id -> inner ARRAY (1 entry, key __u32 0) whose value
 *                             is __u32[JUNCTION_MAGLEV_TABLE_SIZE] backend ids: the whole table
 *                             is one value, written in one update, and swapped into the
 *                             outer map atomically; memory only for services using Maglev.
 *   jnc_lb4_aff     LRU_HASH  {client IP, rev_nat_id} -> backend id, last used
 *   jnc_ct4         HASH      5-tuple + direction -> backend id, rev_nat_id, last seen
 *                             (preallocated; full: new connections dropped, never evicted)
 *
 * Addresses and ports are in network byte order (__be*) exactly as in the packet; ids,
 * counts and timeouts in host order. Backend id 0 and rev_nat_id 0 mean "none".
 */

/* junction_lb4_service.flags */
#define JUNCTION_SVC_F_AFFINITY 1 /* ClientIP session affinity (affinity_timeout seconds) */
#define JUNCTION_SVC_F_MAGLEV 2   /* select through the jnc_lb4_maglev table */
/* NodePort, ExternalIPs or LoadBalancer: also served on the node's devices (from_netdev). */
#define JUNCTION_SVC_F_EXTERNAL 4
/* Remote backends are reached by DSR (the IPv4 option), not SNAT: set per frontend by the
 * agent from --lb-mode (dsr: all; hybrid: TCP only; snat: none). */
#define JUNCTION_SVC_F_DSR 8
/* A Local Redirect Policy frontend: slots are this node's pods of the policy. */
#define JUNCTION_SVC_F_LOCAL_REDIRECT 16
/* With LOCAL_REDIRECT: a client that is one of the slots' backends is not redirected; it
 * gets the same frontend under JUNCTION_SCOPE_REDIRECT_ORIGIN (the original Service), or,
 * when there is none, its packet passes untouched (an address matcher). */
#define JUNCTION_SVC_F_SKIP_FROM_BACKEND 32
/*
 * An L7 proxy frontend (a CiliumEnvoyConfig's or Ingress's Service, TCP only): a connection
 * to it is not balanced here but handed, destination unchanged (VIP:port) and source kept,
 * to the node's proxy listening on TCP port proxy_port in the node's namespace (bpf_sk_assign,
 * TPROXY-style, with skb->mark JUNCTION_MARK_TO_PROXY so the node routes it locally). No
 * conntrack, no NAT: the proxy's transparent socket answers from VIP:port itself.
 */
#define JUNCTION_SVC_F_L7_PROXY 64

/* junction_lb4_service_key.scope */
#define JUNCTION_SCOPE_DEFAULT 0
/* The original Service behind a LOCAL_REDIRECT frontend, for SKIP_FROM_BACKEND clients. */
#define JUNCTION_SCOPE_REDIRECT_ORIGIN 1

/* junction_lb4_backend.flags */
#define JUNCTION_BE_F_TERMINATING 1 /* keeps its conntrack entries, gets no new connection */
#define JUNCTION_BE_F_LOCAL 2       /* a pod on this node: reached without SNAT or DSR */

/* junction_ct4_entry.flags */
/*
 * The client is its own backend (same address): a hairpin. Its requests reach it from
 * JUNCTION_SERVICE_LOOPBACK_IPV4, so the REPLY entry is keyed backend -> loopback address.
 */
#define JUNCTION_CT_F_HAIRPIN 1
/*
 * The service loopback address (host order; 169.254.42.1, Cilium's default): the source a
 * hairpin connection's requests get, since a pod's kernel would drop a packet from its own
 * address. Its answers to this address are translated back to VIP:port -> pod and handed
 * straight back to the pod (from_endpoint). Pods need a route to it (their default route).
 */
#define JUNCTION_SERVICE_LOOPBACK_IPV4 0xa9fe2a01
/*
 * The IPv6 service loopback address, 100::a9fe:2a01, as its four 32-bit words (host order,
 * most significant first; each goes through htonl). The same role as the IPv4 one for an
 * IPv6 hairpin (jnc_ct6 entries flagged JUNCTION_CT_F_HAIRPIN; bpf/lib/hairpin6.h). In the
 * discard-only prefix 100::/64 (RFC 6666), so it is never a pod's, a Service's or a node's
 * address and never leaves the pod's veth. Not Cilium's default fe80::1: a link-local
 * destination makes the pod answer an unconnected UDP socket from its own link-local address
 * (source address selection, RFC 6724), which no hairpin entry matches, and is reachable
 * only when it is also the pod's gateway; a global-scope one goes out through the pod's
 * default route with the pod's own address as source, as 169.254.42.1 does for IPv4.
 */
#define JUNCTION_SERVICE_LOOPBACK_IPV6_W0 0x01000000
#define JUNCTION_SERVICE_LOOPBACK_IPV6_W1 0x00000000
#define JUNCTION_SERVICE_LOOPBACK_IPV6_W2 0x00000000
#define JUNCTION_SERVICE_LOOPBACK_IPV6_W3 0xa9fe2a01
/*
 * North-south, on the ingress node, a remote backend reached through SNAT. The SERVICE entry's
 * nat_address:nat_port is the node address and source port the connection leaves with; the
 * REPLY entry (keyed backend -> node address:nat port) holds the client's address:port.
 */
#define JUNCTION_CT_F_SNAT 2
/*
 * DSR. On the ingress node, a SERVICE entry: the connection was forwarded with the option
 * (later packets go to the same backend without it; no reply comes back). On the backend's
 * node, a REPLY entry (backend -> client): replies leave with nat_address:nat_port, the
 * frontend read from the option, as source (rev_nat_id 0: the frontend may be another
 * node's address).
 */
#define JUNCTION_CT_F_DSR 4
/* North-south to a backend on this node (client address kept): the REPLY entry is reverse
 * translated on the device's egress (to_netdev), not in to_endpoint. */
#define JUNCTION_CT_F_EXTERNAL 8
/*
 * The connection is closing: a TCP FIN or RST went through the entry (every IPv4 entry the
 * datapath looks up on a packet; with SNAT from_netdev sets it on both entries, SERVICE and
 * REPLY, when it sees one either way). The agent's conntrack sweep deletes a closing entry
 * once it has been idle for the close timeout (10 s) instead of the TCP lifetime. A closing
 * connection's SNAT port may be claimed again once the REPLY entry has been idle for the
 * close timeout (bpf/lib/snat.h), and a SYN on a closing SNAT SERVICE entry is a new
 * connection (the client reused its port), which gets a backend and a port of its own; a
 * SYN on another closing SERVICE entry clears the flag (the tuple is in use again).
 */
#define JUNCTION_CT_F_CLOSING 16

/*
 * Conntrack lifetimes, in seconds of idleness (now - last_seen, CLOCK_MONOTONIC), Cilium's:
 * the agent's sweep deletes an entry idle longer (jnc_ct4 and jnc_ct6 never evict), and an
 * SNAT port's expired REPLY entry may be taken over earlier (bpf/lib/snat.h).
 *   CLOSE    a TCP entry with JUNCTION_CT_F_CLOSING: enough for the last ACKs and
 *            retransmitted FINs to get through;
 *   TCP      an open TCP connection (keep-alive probes refresh it sooner);
 *   NONTCP   a UDP flow (no close to see; DNS-like flows are short).
 */
#define JUNCTION_CT_CLOSE_TIMEOUT_SECONDS 10
#define JUNCTION_CT_TCP_LIFETIME_SECONDS 21600
#define JUNCTION_CT_NONTCP_LIFETIME_SECONDS 60

struct junction_lb4_service_key {
	__be32 address; /* VIP */
	__be16 port;    /* service port */
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 scope;     /* JUNCTION_SCOPE_* */
	__u16 slot;     /* 0: the frontend; 1..count: backend slots */
	__u16 pad2;
};

struct junction_lb4_service {
	__u32 backend_id;       /* slots only: the backend in this slot */
	__u32 affinity_timeout; /* frontend only: seconds, with JUNCTION_SVC_F_AFFINITY */
	__u16 count;            /* frontend only: slots 1..count, all active backends */
	__u16 rev_nat_id;       /* frontend only: key of jnc_lb4_revnat and jnc_lb4_maglev */
	__u16 flags;            /* frontend only: JUNCTION_SVC_F_* */
	__u16 proxy_port;       /* frontend only, with JUNCTION_SVC_F_L7_PROXY: host order; else 0 */
};

struct junction_lb4_backend_key {
	__u32 backend_id;
};

struct junction_lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags; /* JUNCTION_BE_F_*; 0 = active */
};

/* Key of both jnc_lb4_revnat and jnc_lb4_maglev. */
struct junction_lb4_revnat_key {
	__u16 rev_nat_id;
	__u16 pad;
};

struct junction_lb4_revnat {
	__be32 address; /* VIP */
	__be16 port;    /* service port */
	__u16 pad;
};

struct junction_lb4_affinity_key {
	__be32 client;
	__u16 rev_nat_id;
	__u16 pad;
};

struct junction_lb4_affinity {
	__u64 last_used; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) of the last new connection */
	__u32 backend_id;
	__u32 pad;
};

/* junction_ct4_key.direction */
enum junction_ct_direction {
	/* The client's packets as it sends them: saddr/sport client, daddr/dport the VIP. */
	JUNCTION_CT_SERVICE = 0,
	/* The backend's replies as they arrive: saddr/sport backend, daddr/dport client. */
	JUNCTION_CT_REPLY = 1,
};

struct junction_ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 direction; /* enum junction_ct_direction */
	__u16 pad;
};

struct junction_ct4_entry {
	__u64 last_seen; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) of the last packet */
	__u32 backend_id;
	__u16 rev_nat_id;
	__u16 flags;        /* JUNCTION_CT_F_* */
	__be32 nat_address; /* SNAT and DSR: see JUNCTION_CT_F_SNAT, JUNCTION_CT_F_DSR; else 0 */
	__be16 nat_port;
	__u16 pad;
};

/* ---- Service load balancing (IPv6) ---------------------------------------------------- */

/*
 * The IPv6 twins of the maps above, one table per family as Cilium's lb6_* maps and as
 * kube-proxy's per-family proxiers: a v4-only Service has no entry here, so IPv6 traffic can
 * never match it, and a dual-stack Service's IPv6 frontend has IPv6 backends only.
 *
 *   jnc_lb6_svc     HASH      {VIP6, port, proto, scope, slot} -> junction_lb4_service
 *                             (the value has no address: one layout for both families)
 *   jnc_lb6_be      HASH      junction_lb4_backend_key -> junction_lb6_backend
 *   jnc_lb6_revnat  HASH      junction_lb4_revnat_key -> junction_lb6_revnat
 *   jnc_lb6_aff     LRU_HASH  {client IPv6, rev_nat_id} -> junction_lb4_affinity
 *   jnc_ct6         HASH      junction_ct6_key -> junction_ct6_entry (as jnc_ct4)
 *   Maglev tables stay in jnc_lb4_maglev: it is keyed by rev_nat_id, and rev_nat_ids and
 *   backend ids come from one allocator for both families, so they never collide.
 *
 * Addresses are the 16 network-order bytes as in the packet (four __be32 so that keys are
 * 4-byte aligned and compare word by word). The flags, directions and ids mean what they
 * mean for IPv4.
 *
 * The datapath's IPv6 Maglev hash folds each address into one word (the XOR of its four
 * words, as loaded from the packet, then in host order) and hashes it as the IPv4 one
 * (JUNCTION_MAGLEV_HASH_SEED).
 */
struct junction_lb6_service_key {
	__be32 address[4]; /* VIP */
	__be16 port;
	__u8 proto;
	__u8 scope; /* JUNCTION_SCOPE_* */
	__u16 slot; /* 0: the frontend; 1..count: backend slots */
	__u16 pad2;
};

struct junction_lb6_backend {
	__be32 address[4];
	__be16 port;
	__u8 proto;
	__u8 flags; /* JUNCTION_BE_F_*; 0 = active */
};

struct junction_lb6_revnat {
	__be32 address[4]; /* VIP */
	__be16 port;
	__u16 pad;
};

struct junction_lb6_affinity_key {
	__be32 client[4];
	__u16 rev_nat_id;
	__u16 pad;
};

struct junction_ct6_key {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 direction; /* enum junction_ct_direction */
	__u16 pad;
};

struct junction_ct6_entry {
	__u64 last_seen; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) of the last packet */
	__u32 backend_id;
	__u16 rev_nat_id;
	__u16 flags; /* JUNCTION_CT_F_*: as IPv4's (north-south: SNAT, DSR, EXTERNAL, CLOSING) */
	/* SNAT and DSR: as junction_ct4_entry's (the node's or the client's IPv6 address, or
	 * the DSR option's frontend); else 0. */
	__be32 nat_address[4];
	__be16 nat_port;
	__u16 pad;
	__u32 pad2;
};

/* ---- Node devices (north-south) ------------------------------------------------------- */

/*
 * DSR option (IPv4), after Cilium's: inserted right after the 20-byte header of the SYN (TCP)
 * or of every datagram (UDP) forwarded to a remote backend; ihl += 2, tot_len += 8. Copied
 * flag set, class 0, number 26: type 0x9a. On the wire: type, length 8, the frontend's port,
 * the frontend's address (both network order).
 */
#define JUNCTION_DSR_OPT_TYPE 0x9a
#define JUNCTION_DSR_OPT_LEN 8

struct junction_dsr_opt4 {
	__u8 type;
	__u8 len;
	__be16 port;
	__be32 address;
};

/* Map: JUNCTION_MAP_DEVICES (HASH), written by the agent for each --devices interface. */
struct junction_device_key {
	__u32 ifindex;
};

struct junction_device {
	__be32 address; /* the node's IPv4 address on it: the SNAT source */
	__u32 mtu;      /* the DSR option must fit in it */
	/* The node's first global IPv6 address on it (never link-local): the IPv6 SNAT source;
	 * all zero when it has none (IPv6 NodePort connections to remote backends by SNAT
	 * are then dropped, NAT_FAILED). */
	__be32 address6[4];
};

/*
 * DSR over IPv6, Cilium's encoding (bpf/lib/nodeport.h, struct dsr_opt_v6), so that a Junction
 * node and a Cilium node can be each other's ingress or backend node: a Destination Options
 * extension header inserted right after the 40-byte IPv6 header of the SYN (TCP) or of every
 * datagram (UDP) forwarded to a remote backend; payload_len += 24. The header: next header
 * (what followed the IPv6 header), length 2 ((2 + 1) x 8 = 24 bytes), then one option of type
 * 0x1b (high bits 00: a node that does not know it skips it; change bit 0) and length 20:
 * the frontend's 16-byte address and its port (network order), then 2 zero bytes (two Pad1
 * options).
 */
#define JUNCTION_DSR6_OPT_TYPE 0x1b
#define JUNCTION_DSR6_OPT_LEN 20
#define JUNCTION_DSR6_EXT_LEN 24
#define JUNCTION_DSR6_NEXTHDR_DEST 60

struct junction_dsr_opt6 {
	__u8 nexthdr;
	__u8 hdrlen; /* 8-byte units beyond the first 8: 2 */
	__u8 type;   /* JUNCTION_DSR6_OPT_TYPE */
	__u8 len;    /* JUNCTION_DSR6_OPT_LEN */
	__be32 address[4];
	__be16 port;
	__u16 pad;
};

/* The agent's default ranges (--node-port-range: Kubernetes' default; --snat-port-range:
 * Cilium's NodePort SNAT ports); the SNAT pair is also what the datapath uses until the
 * agent has written jnc_node_cfg. */
#define JUNCTION_NODEPORT_MIN_DEFAULT 30000
#define JUNCTION_NODEPORT_MAX_DEFAULT 32767
#define JUNCTION_SNAT_PORT_MIN_DEFAULT 32768
#define JUNCTION_SNAT_PORT_MAX_DEFAULT 65535

/* Map: JUNCTION_MAP_NODE_CONFIG (ARRAY, one entry, key __u32 0), written by the agent. */
struct junction_node_config {
	/* The network namespace of the node (bpf_get_netns_cookie of the agent's own): socket LB
	 * translates sockets in it and in the pods' namespaces of JUNCTION_MAP_POD_NETNS (empty
	 * with --socket-lb-hostns-only, as Cilium's socketLB.hostNamespaceOnly: pods are then
	 * translated per packet by from_endpoint). 0 = socket LB off. */
	__u64 host_netns_cookie;
	__u16 snat_port_min; /* SNAT source ports, host order, inclusive */
	__u16 snat_port_max;
	__u16 nodeport_min; /* the NodePort range, host order, inclusive */
	__u16 nodeport_max;
};

/* ---- L7 proxy redirect ---------------------------------------------------------------- */

/*
 * skb->mark of a packet handed to the proxy listener (JUNCTION_SVC_F_L7_PROXY). Its
 * destination is not a local address, so the agent routes marked packets to the node
 * itself: an `ip rule` fwmark JUNCTION_MARK_TO_PROXY/JUNCTION_MARK_TO_PROXY_MASK lookup
 * table JUNCTION_PROXY_ROUTE_TABLE, which holds `local 0.0.0.0/0 dev lo` (as Cilium's
 * proxy routing, table 2005 for mark 0x200/0xf00).
 */
#define JUNCTION_MARK_TO_PROXY 0x4a500000
#define JUNCTION_MARK_TO_PROXY_MASK 0xffff0000
#define JUNCTION_PROXY_ROUTE_TABLE 2027
/* The rule's priority: after the local table's (0), before main's (32766). */
#define JUNCTION_PROXY_RULE_PRIORITY 9

/*
 * Map: JUNCTION_MAP_PROXY_LISTENERS (SOCKHASH). The node's proxy listeners, by proxy port:
 * the agent finds the listening socket on proxy_port in the proxy's process and inserts it
 * (value: the socket's descriptor on update, its cookie on a lookup from user space); the
 * kernel removes an entry when its socket closes. With an entry, a redirected SYN is not
 * bpf_sk_assign-ed at tc: it only gets the mark, and JUNCTION_PROG_PROXY_LOOKUP hands it to
 * the listener from the kernel's own listener lookup, which runs after the established and
 * TIME_WAIT lookup, so a SYN that reuses the 4-tuple of the proxy's TIME_WAIT connection
 * opens a new connection as on a directly reached listener (bpf_sk_assign skips that lookup,
 * and the kernel then drops the SYN as a duplicate: the client retransmits after 1 s).
 * Without an entry (no agent to insert it yet) tc assigns the listener itself, as before.
 */
struct junction_proxy_listener_key {
	__u32 proxy_port; /* host order */
};

#define JUNCTION_PROXY_LISTENERS_MAX 256

/* ---- Socket load balancing ------------------------------------------------------------ */

/*
 * Map: JUNCTION_MAP_LB4_SOCK_REVNAT (LRU_HASH). connect4/sendmsg4 record, per socket
 * (bpf_get_socket_cookie) and backend, the frontend they translated; recvmsg4 and
 * getpeername4 put the frontend back, so a UDP client sees replies from the service address.
 */
struct junction_lb4_sock_key {
	__u64 cookie;
	__be32 address; /* backend */
	__be16 port;
	__u16 pad;
};

struct junction_lb4_sock_revnat {
	__be32 address; /* frontend */
	__be16 port;
	__u16 rev_nat_id;
};

/*
 * Map: JUNCTION_MAP_LB6_SOCK_REVNAT (LRU_HASH), the IPv6 twin: connect6/sendmsg6 to an IPv6
 * frontend record it, recvmsg6 and getpeername6 read it. An IPv4-mapped address
 * (::ffff:a.b.c.d) on a dual-stack AF_INET6 socket is an IPv4 frontend: the IPv4 service
 * maps translate it and its entry goes to JUNCTION_MAP_LB4_SOCK_REVNAT (the v4 address).
 */
struct junction_lb6_sock_key {
	__u64 cookie;
	__be32 address[4]; /* backend */
	__be16 port;
	__u16 pad;
	__u32 pad2;
};

struct junction_lb6_sock_revnat {
	__be32 address[4]; /* frontend */
	__be16 port;
	__u16 rev_nat_id;
};

/*
 * Map: JUNCTION_MAP_POD_NETNS (HASH). This node's pods, by the cookie of their network
 * namespace (bpf_get_netns_cookie; SO_NETNS_COOKIE from user space), written by the agent
 * when an endpoint registers and deleted when it goes, only with --socket-lb (not
 * --socket-lb-hostns-only). The socket programs translate a socket whose namespace is in it,
 * unless flagged JUNCTION_POD_NETNS_F_NO_SOCKET_LB (the pod's per-packet path then does, as
 * for a pod of no entry). The addresses are the client's for the selection (ClientIP
 * affinity, Maglev, skipRedirectFromBackend) when the socket is not bound to one yet: the
 * source address its packets will carry, as the per-packet path sees it. 0 / :: = none.
 */
struct junction_pod_netns_key {
	__u64 cookie;
};

#define JUNCTION_POD_NETNS_F_NO_SOCKET_LB 1

struct junction_pod_netns {
	__be32 address4;
	__u32 flags;
	__be32 address6[4];
};

/* ---- Flow events --------------------------------------------------------------------- */

/*
 * The datapath writes one junction_flow_event (IPv6: junction_flow_event6) per observed
 * packet to JUNCTION_MAP_EVENTS (a BPF ring buffer, one for all CPUs) and the agent's
 * consumer reads them (GET /v1/flows).
 * What is written depends on the monitor level in JUNCTION_MAP_MONITOR_CONFIG:
 * - OFF: nothing (also before the agent has written the level);
 * - FLOWS: a connection's first packet (TCP SYN, or a new service connection of any
 *   protocol, with its translation), TCP FIN and RST, every drop, socket LB's connect
 *   translations; established packets write nothing;
 * - ALL: every TCP/UDP packet the endpoint programs pass, every north-south packet
 *   the device programs translate, every drop, every socket translation (sendmsg4 per
 *   datagram).
 * The device programs (netdev.c) trace only the north-south traffic they handle (a packet to
 * an external frontend, a reply they translate back, a DSR option's packet on the backend's
 * node), never the node's own traffic, with JUNCTION_FLOW_F_DSR or _SNAT for how the
 * connection leaves the node (neither: a backend on this node).
 * A full ring never delays or drops a packet: the event is not written and
 * JUNCTION_MAP_EVENTS_LOST (per CPU) counts it.
 *
 * Two record layouts share the ring: junction_flow_event (64 bytes) for IPv4 packets and
 * sockets, junction_flow_event6 (112 bytes) for IPv6 ones, the same fields with 16-byte
 * addresses. A reader tells them apart by the record's length (a ring record carries its
 * exact length; no other record has either size). Why two and not one widened layout:
 * IPv4 keeps its 64 bytes, its ~14,500 events per MiB and its memset/copy cost per event
 * (one 112-byte layout for all would cut the ring to ~8,700 events and add 48 zeroed bytes to
 * every IPv4 event); and an IPv4 event of an earlier datapath still attached to a pod (the
 * ring is pinned) reads the same as a new one. A drop of an IPv6 frame is an IPv6 event;
 * a dual-stack socket's IPv4-mapped translation (::ffff:a.b.c.d) is an IPv4 event, as the
 * IPv4 path translates it.
 */
enum junction_monitor_level {
	JUNCTION_MONITOR_OFF = 0,
	JUNCTION_MONITOR_FLOWS = 1,
	JUNCTION_MONITOR_ALL = 2,
};

/* junction_flow_event.kind */
enum junction_flow_kind {
	JUNCTION_FLOW_TRACE = 1, /* a packet seen at a trace point (point), passed on */
	JUNCTION_FLOW_DROP = 2,  /* a packet dropped (drop_reason) */
	JUNCTION_FLOW_SOCK = 3,  /* socket LB translated a connect or send */
};

/* junction_flow_event.verdict: Hubble's Verdict numbers. */
enum junction_flow_verdict {
	JUNCTION_VERDICT_FORWARDED = 1,
	JUNCTION_VERDICT_DROPPED = 2,
	JUNCTION_VERDICT_REDIRECTED = 5, /* handed to the L7 proxy (point TO_PROXY) */
	JUNCTION_VERDICT_TRANSLATED = 7,
};

/* junction_flow_event.flags */
#define JUNCTION_FLOW_F_REPLY 1       /* the packet is a reply (with REPLY_KNOWN) */
#define JUNCTION_FLOW_F_REPLY_KNOWN 2 /* whether it is a reply is known (else unknown) */
#define JUNCTION_FLOW_F_NEW 4         /* the first packet of a connection */
/* nat_address:nat_port and rev_nat_id are set: the service translation. Without REPLY, the
 * destination (daddr:dport, the frontend) became nat_address:nat_port (the backend); with
 * REPLY, the source (the backend) became nat_address:nat_port (the frontend). */
#define JUNCTION_FLOW_F_XLATED 8
/* North-south: the connection goes to a remote backend with direct server return (on the
 * frontend's node), or came with a DSR option (on the backend's node: daddr:dport is then
 * the option's frontend, nat_address:nat_port the backend the packet is addressed to). */
#define JUNCTION_FLOW_F_DSR 16
/* North-south: the connection goes to a remote backend from the node's address
 * (snat_address:snat_port). Without REPLY the source became it; with REPLY the destination
 * (the node's address and port) became snat_address:snat_port, the client. */
#define JUNCTION_FLOW_F_SNAT 32
/* The frontend is a Local Redirect Policy's: redirected to a node-local pod. */
#define JUNCTION_FLOW_F_LRP 64

/* Map: JUNCTION_MAP_EVENTS (RINGBUF), records of this layout. */
struct junction_flow_event {
	__u64 timestamp;     /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u64 socket_cookie; /* SOCK events: bpf_get_socket_cookie; else 0 */
	__u32 ifindex;       /* skb->ifindex (the veth or device); 0 for SOCK events */
	__u32 length;        /* skb->len; 0 for SOCK events */
	__be32 saddr;        /* the packet as the program received it */
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__be32 nat_address;  /* with JUNCTION_FLOW_F_XLATED */
	__be16 nat_port;     /* with XLATED; at point TO_PROXY: the proxy port (network order) */
	__u16 rev_nat_id;    /* the service (jnc_lb4_revnat key), 0 = none */
	__u16 drop_reason;   /* DROP: enum junction_drop_reason */
	__u8 kind;           /* enum junction_flow_kind */
	__u8 point;          /* enum junction_direction: where it was seen */
	__u8 verdict;        /* enum junction_flow_verdict */
	__u8 proto;          /* IPPROTO_*; 0 when not IPv4 */
	__u8 tcp_flags;      /* the TCP header's flags byte (FIN 0x01 SYN 0x02 RST 0x04 ...) */
	__u8 flags;          /* JUNCTION_FLOW_F_* */
	__be32 snat_address; /* with JUNCTION_FLOW_F_SNAT */
	__be16 snat_port;
	__u8 pad[6];
};

/* JUNCTION_MAP_EVENTS' IPv6 records: junction_flow_event's fields (same meanings), the four
 * addresses 16 bytes each (network order, as in the IPv6 header), grouped so that saddr and
 * daddr are contiguous as in the header (one bpf_skb_load_bytes fills both) and the
 * ports are too (one load of the L4 header's first 4 bytes). proto: the upper-layer
 * protocol (TCP, UDP, ICMPv6) past the extension headers, 0 when not read. */
struct junction_flow_event6 {
	__u64 timestamp;
	__u64 socket_cookie;
	__u32 ifindex;
	__u32 length;
	__be32 saddr[4];
	__be32 daddr[4];
	__be32 nat_address[4];
	__be32 snat_address[4];
	__be16 sport;
	__be16 dport;
	__be16 nat_port;
	__be16 snat_port;
	__u16 rev_nat_id;
	__u16 drop_reason;
	__u8 kind;
	__u8 point;
	__u8 verdict;
	__u8 proto;
	__u8 tcp_flags;
	__u8 flags;
	__u8 pad[6];
};

/* Map: JUNCTION_MAP_MONITOR_CONFIG (ARRAY, one entry, key __u32 0), written by the agent. */
struct junction_monitor_config {
	__u32 level; /* enum junction_monitor_level */
	__u32 pad;
};

/* Map: JUNCTION_MAP_EVENTS_LOST (PERCPU_ARRAY, one entry, key __u32 0): events not
 * written because the ring was full. Readers sum over the CPUs. */
struct junction_events_lost {
	__u64 events;
};

#endif /* JUNCTION_ABI_H */
