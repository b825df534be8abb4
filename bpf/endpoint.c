// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Endpoint programs, attached by the CNI plugin to each pod's host-side veth through a
 * clsact qdisc:
 *   from_endpoint  tc ingress of the host-side veth = packets the pod sends
 *   to_endpoint    tc egress of the host-side veth  = packets delivered to the pod
 *
 * Today they count packets and bytes per endpoint and pass everything. The layout is the
 * one later stages slot into (Cilium / Katran style): maps declared once at the top, one
 * small always-inline helper per concern (count, drop, and later parse, service lookup,
 * conntrack, NAT, checksum), and entry points that only chain helpers. Every drop goes
 * through drop() so it is counted with a reason; nothing returns TC_ACT_SHOT directly.
 *
 * Layouts and names come from junction_abi.h, the one header Swift imports as well.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- Maps ------------------------------------------------------------------------------ */

/*
 * All maps are pinned by name (<pin root>/<map name>), so a restarted or upgraded agent
 * reloading this object gets the same maps back from libbpf, counters and (later) service
 * and conntrack state intact, instead of fresh empty ones. The variable names are the
 * JUNCTION_MAP_* names; the tests look every map up by those constants.
 */

/* Per endpoint counters. Per CPU: no atomics on the fast path. No prealloc: memory only
 * for the endpoints that exist (entries are created on a veth's first packet). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct junction_endpoint_key);
	__type(value, struct junction_endpoint_counters);
	__uint(max_entries, JUNCTION_ENDPOINT_COUNTERS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_ep_counters SEC(".maps");

/* Drops by (reason, direction). Preallocated: counting a drop must not need memory when
 * the node is short of it, which is when drops happen. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct junction_drop_key);
	__type(value, struct junction_drop_counters);
	__uint(max_entries, JUNCTION_DROPS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_drops SEC(".maps");

/* ---- Helpers --------------------------------------------------------------------------- */

/*
 * The value for `key` in a per-CPU hash map, created zeroed if missing. BPF_NOEXIST plus a
 * second lookup covers the race with another CPU inserting the same key; NULL only when
 * the map is full, and callers treat counting as best effort (never a reason to drop).
 */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *zero)
{
	void *value = bpf_map_lookup_elem(map, key);

	if (value)
		return value;
	bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* skb->ifindex is the veth the program is attached to, on tc ingress and egress alike. */
static __always_inline void count_endpoint(const struct __sk_buff *skb, __u32 direction)
{
	const struct junction_endpoint_key key = { .ifindex = skb->ifindex };
	const struct junction_endpoint_counters zero = {};
	struct junction_endpoint_counters *counters;

	counters = lookup_or_init(&jnc_ep_counters, &key, &zero);
	if (!counters)
		return;
	if (direction == JUNCTION_DIR_FROM_ENDPOINT) {
		counters->from_packets++;
		counters->from_bytes += skb->len;
	} else {
		counters->to_packets++;
		counters->to_bytes += skb->len;
	}
}

/* Count the drop under its reason and direction, and return the verdict that drops. */
static __always_inline __attribute__((unused)) int drop(const struct __sk_buff *skb,
							 __u32 reason, __u32 direction)
{
	const struct junction_drop_key key = { .reason = reason, .direction = direction };
	const struct junction_drop_counters zero = {};
	struct junction_drop_counters *counters;

	counters = lookup_or_init(&jnc_drops, &key, &zero);
	if (counters) {
		counters->packets++;
		counters->bytes += skb->len;
	}
	return TC_ACT_SHOT;
}

/* ---- Entry points ---------------------------------------------------------------------- */

SEC("tc")
int from_endpoint(struct __sk_buff *skb)
{
	count_endpoint(skb, JUNCTION_DIR_FROM_ENDPOINT);
	return TC_ACT_OK;
}

SEC("tc")
int to_endpoint(struct __sk_buff *skb)
{
	count_endpoint(skb, JUNCTION_DIR_TO_ENDPOINT);
	return TC_ACT_OK;
}
