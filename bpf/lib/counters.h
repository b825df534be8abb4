/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counting: per endpoint packets and bytes, and every drop with its reason and direction.
 */
#ifndef JUNCTION_LIB_COUNTERS_H
#define JUNCTION_LIB_COUNTERS_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/events.h"
#include "lib/maps.h"
#include "lib/stages.h"


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

	if (jnc_skip(JNC_STAGE_COUNT))
		return;
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

/* Count a packet that does not reach its destination under its reason and direction, and
 * tell the agent (a drop event, unless the monitor level is off). */
static __always_inline void count_drop(const struct __sk_buff *skb, __u32 reason, __u32 direction)
{
	const struct junction_drop_key key = { .reason = reason, .direction = direction };
	const struct junction_drop_counters zero = {};
	struct junction_drop_counters *counters;

	counters = lookup_or_init(&jnc_drops, &key, &zero);
	if (counters) {
		counters->packets++;
		counters->bytes += skb->len;
	}
	jnc_emit_drop(skb, reason, direction);
}

/* Count the drop under its reason and direction, and return the verdict that drops. */
static __always_inline int drop(const struct __sk_buff *skb, __u32 reason, __u32 direction)
{
	count_drop(skb, reason, direction);
	return TC_ACT_SHOT;
}

#endif /* JUNCTION_LIB_COUNTERS_H */
