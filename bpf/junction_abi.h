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
 * ABI change: bump JUNCTION_ABI_VERSION, and the agent pins the new maps beside the old.
 */
#ifndef JUNCTION_ABI_H
#define JUNCTION_ABI_H

#include <linux/types.h>

/* Bumped on any change to a struct, enum value, map type or size below. */
#define JUNCTION_ABI_VERSION 1

/* ---- Names ---------------------------------------------------------------------------- */

/*
 * Map names are the names in the ELF object and the file names libbpf pins them under
 * (LIBBPF_PIN_BY_NAME: <pin root>/<name>). The kernel keeps at most 15 characters of an
 * object name (BPF_OBJ_NAME_LEN 16 with the NUL), hence the short "jnc_" prefix.
 */
#define JUNCTION_MAP_ENDPOINT_COUNTERS "jnc_ep_counters"
#define JUNCTION_MAP_DROPS "jnc_drops"

/*
 * Program names are the C function names in bpf/endpoint.c; the agent pins them under these
 * names in its bpffs directory and the CNI plugin opens them from there.
 */
#define JUNCTION_PROG_FROM_ENDPOINT "from_endpoint"
#define JUNCTION_PROG_TO_ENDPOINT "to_endpoint"

/* ---- Sizes ---------------------------------------------------------------------------- */

/* Host-side veths on one node: far above any kubelet's max-pods, and a hash map only uses
 * memory for the entries it holds (per CPU, for per-CPU maps). */
#define JUNCTION_ENDPOINT_COUNTERS_MAX 16384
/* Every (reason, direction) pair, with room for reasons added later. */
#define JUNCTION_DROPS_MAX 1024

/* ---- Directions ----------------------------------------------------------------------- */

/*
 * Seen from the endpoint (pod), as in Cilium: "from" is traffic the pod sends (tc ingress
 * on its host-side veth), "to" is traffic delivered to it (tc egress on the host-side veth).
 */
enum junction_direction {
	JUNCTION_DIR_FROM_ENDPOINT = 0,
	JUNCTION_DIR_TO_ENDPOINT = 1,
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
	JUNCTION_DROP_CT_MAP_FULL = 6,        /* reserved: conntrack could not insert */
	JUNCTION_DROP_NAT_FAILED = 7,         /* reserved: DNAT/SNAT rewrite failed */
	JUNCTION_DROP_CSUM_FAILED = 8,        /* reserved: checksum fix-up failed */
	JUNCTION_DROP_POLICY = 9,             /* reserved: denied by policy */
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

#endif /* JUNCTION_ABI_H */
