// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Endpoint programs, attached by the CNI plugin to each pod's host-side veth through a
 * clsact qdisc:
 *   from_endpoint  tc ingress of the host-side veth = packets the pod sends
 *   to_endpoint    tc egress of the host-side veth  = packets delivered to the pod
 *
 * Both count packets and bytes per endpoint (every packet, before anything else). On top:
 *   from_endpoint  IPv4 TCP/UDP to a service VIP:port -> pick a backend (conntrack entry,
 *                  else ClientIP affinity, else Maglev or random), record the connection
 *                  in conntrack, DNAT to the backend (the pod-side half of kube-proxy);
 *   to_endpoint    a reply from a backend of a connection in conntrack -> source rewritten
 *                  back to the VIP:port (reverse NAT), wherever the backend lives.
 * Everything else passes untouched. Layout (Cilium / Katran style): maps declared once at
 * the top, one small always-inline helper per concern (lib/parse.h, lib/nat.h,
 * lib/jhash.h, and the map-bound ones here), entry points that only chain helpers. Every
 * drop goes through drop() so it is counted with a reason; nothing returns TC_ACT_SHOT
 * directly.
 *
 * Layouts and names come from junction_abi.h, the one header Swift imports as well.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"
#include "lib/icmp.h"
#include "lib/jhash.h"
#include "lib/nat.h"
#include "lib/parse.h"

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

/*
 * Service tables, written only by the agent (the datapath reads them). Not preallocated:
 * memory for the services that exist, so the agent can size them generously.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb4_service_key);
	__type(value, struct junction_lb4_service);
	__uint(max_entries, JUNCTION_LB4_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb4_backend_key);
	__type(value, struct junction_lb4_backend);
	__uint(max_entries, JUNCTION_LB4_BACKENDS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb4_revnat_key);
	__type(value, struct junction_lb4_revnat);
	__uint(max_entries, JUNCTION_LB4_REVNAT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_revnat SEC(".maps");

/* Written by the datapath on every new connection to an affinity service; LRU so a full
 * map forgets the least recently used client instead of refusing a new one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct junction_lb4_affinity_key);
	__type(value, struct junction_lb4_affinity);
	__uint(max_entries, JUNCTION_LB4_AFFINITY_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_aff SEC(".maps");

/*
 * One Maglev table per service, by rev_nat_id. The inner map is the template the agent's
 * tables must match (ARRAY, key __u32, one value of the whole table): the agent creates a
 * map per table, fills it in one write and swaps it in with one outer update.
 */
struct jnc_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32[JUNCTION_MAGLEV_TABLE_SIZE]);
	__uint(max_entries, 1);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, struct junction_lb4_revnat_key);
	__uint(max_entries, JUNCTION_LB4_MAGLEV_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct jnc_maglev_inner);
} jnc_lb4_maglev SEC(".maps");

/*
 * Connections to services, two entries each (JUNCTION_CT_SERVICE as the client sends,
 * JUNCTION_CT_REPLY as the backend answers), so both directions are one exact lookup.
 * LRU: a full table evicts the coldest connection rather than failing new ones; nothing
 * else expires entries (last_seen is there for an agent-side sweep).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct junction_ct4_key);
	__type(value, struct junction_ct4_entry);
	__uint(max_entries, JUNCTION_CT4_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_ct4 SEC(".maps");

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

/* Count a packet that does not reach its destination under its reason and direction. */
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
}

/* Count the drop under its reason and direction, and return the verdict that drops. */
static __always_inline int drop(const struct __sk_buff *skb, __u32 reason, __u32 direction)
{
	count_drop(skb, reason, direction);
	return TC_ACT_SHOT;
}

/* ---- Service load balancing --------------------------------------------------------- */

/* How many slots random selection tries past a terminating or vanished backend: the agent
 * keeps only active backends in slots, so this only covers its update windows. */
#define JNC_LB_SLOT_PROBES 4

/* The backend `id` if it exists and takes new connections. */
static __always_inline struct junction_lb4_backend *active_backend(__u32 id)
{
	const struct junction_lb4_backend_key key = { .backend_id = id };
	struct junction_lb4_backend *backend;

	if (!id)
		return NULL;
	backend = bpf_map_lookup_elem(&jnc_lb4_be, &key);
	if (!backend || (backend->flags & JUNCTION_BE_F_TERMINATING))
		return NULL;
	return backend;
}

static __always_inline __u32 select_random(const struct junction_lb4_service_key *frontend,
					   const struct junction_lb4_service *service,
					   struct junction_lb4_backend **chosen)
{
	struct junction_lb4_service_key key = *frontend;
	__u32 count = service->count;
	__u32 start = bpf_get_prandom_u32() % count;
	struct junction_lb4_service *slot;

	for (__u32 probe = 0; probe < JNC_LB_SLOT_PROBES && probe < count; probe++) {
		key.slot = (start + probe) % count + 1;
		slot = bpf_map_lookup_elem(&jnc_lb4_svc, &key);
		if (slot && (*chosen = active_backend(slot->backend_id)))
			return slot->backend_id;
	}
	return 0;
}

/*
 * The Maglev hash of the connection (the formula JUNCTION_MAGLEV_HASH_SEED documents). With
 * ClientIP affinity the client port is left out, so one client maps to one slot.
 */
static __always_inline __u32 maglev_hash(const struct jnc_packet *packet, int client_only)
{
	__u32 sport = client_only ? 0 : bpf_ntohs(packet->sport);

	return jnc_jhash_3words(bpf_ntohl(packet->saddr), bpf_ntohl(packet->daddr),
				(sport << 16) | bpf_ntohs(packet->dport),
				JUNCTION_MAGLEV_HASH_SEED + packet->proto);
}

/* The table's backend for this connection; 0 when the service has no table yet or the
 * slot's backend is gone or terminating (the caller falls back to random). */
static __always_inline __u32 select_maglev(const struct jnc_packet *packet,
					   const struct junction_lb4_service *service,
					   struct junction_lb4_backend **chosen)
{
	const struct junction_lb4_revnat_key key = { .rev_nat_id = service->rev_nat_id };
	const __u32 zero = 0;
	__u32 *table;
	__u32 index;
	void *inner;

	inner = bpf_map_lookup_elem(&jnc_lb4_maglev, &key);
	if (!inner)
		return 0;
	table = bpf_map_lookup_elem(inner, &zero);
	if (!table)
		return 0;
	index = maglev_hash(packet, service->flags & JUNCTION_SVC_F_AFFINITY) %
		JUNCTION_MAGLEV_TABLE_SIZE;
	/* Hide the modulo from clang so the bound check the verifier needs stays in. */
	asm volatile("" : "+r"(index));
	if (index >= JUNCTION_MAGLEV_TABLE_SIZE)
		return 0;
	return (*chosen = active_backend(table[index])) ? table[index] : 0;
}

/* The client's affinity backend, if the entry is younger than the service's timeout and
 * the backend still takes connections. */
static __always_inline __u32 select_affinity(const struct junction_lb4_affinity_key *key,
					     const struct junction_lb4_service *service, __u64 now,
					     struct junction_lb4_backend **chosen)
{
	struct junction_lb4_affinity *entry = bpf_map_lookup_elem(&jnc_lb4_aff, key);

	if (!entry || now - entry->last_used > (__u64)service->affinity_timeout * 1000000000ULL)
		return 0;
	return (*chosen = active_backend(entry->backend_id)) ? entry->backend_id : 0;
}

/* A new connection's backend: affinity, else Maglev when flagged, else random. The
 * backend's entry comes back in *chosen, so the caller does not look it up again. */
static __always_inline __u32 select_backend(const struct jnc_packet *packet,
					    const struct junction_lb4_service_key *frontend,
					    const struct junction_lb4_service *service, __u64 now,
					    struct junction_lb4_backend **chosen)
{
	const struct junction_lb4_affinity_key affinity_key = {
		.client = packet->saddr,
		.rev_nat_id = service->rev_nat_id,
	};
	int affinity = service->flags & JUNCTION_SVC_F_AFFINITY;
	__u32 id = 0;

	if (affinity)
		id = select_affinity(&affinity_key, service, now, chosen);
	if (!id && (service->flags & JUNCTION_SVC_F_MAGLEV))
		id = select_maglev(packet, service, chosen);
	if (!id)
		id = select_random(frontend, service, chosen);
	if (id && affinity) {
		/* Timed from the last new connection, as kube-proxy's "recent" match does. */
		const struct junction_lb4_affinity entry = { .last_used = now, .backend_id = id };

		bpf_map_update_elem(&jnc_lb4_aff, &affinity_key, &entry, BPF_ANY);
	}
	return id;
}

/* Records both directions of a new connection; 0, or a negative errno. */
static __always_inline int ct_create(const struct jnc_packet *packet,
				     const struct junction_lb4_backend *backend, __u32 backend_id,
				     __u16 rev_nat_id, __u64 now)
{
	const struct junction_ct4_key service_key = {
		.saddr = packet->saddr,
		.daddr = packet->daddr,
		.sport = packet->sport,
		.dport = packet->dport,
		.proto = packet->proto,
		.direction = JUNCTION_CT_SERVICE,
	};
	const struct junction_ct4_key reply_key = {
		.saddr = backend->address,
		.daddr = packet->saddr,
		.sport = backend->port,
		.dport = packet->sport,
		.proto = packet->proto,
		.direction = JUNCTION_CT_REPLY,
	};
	const struct junction_ct4_entry entry = {
		.last_seen = now,
		.backend_id = backend_id,
		.rev_nat_id = rev_nat_id,
		.flags = backend->address == packet->saddr ? JUNCTION_CT_F_HAIRPIN : 0,
	};
	int err;

	/* Reply first: once the request entry exists, its packets are DNATed, and the answer
	 * must already find its way back. */
	err = bpf_map_update_elem(&jnc_ct4, &reply_key, &entry, BPF_ANY);
	if (err < 0)
		return err;
	return bpf_map_update_elem(&jnc_ct4, &service_key, &entry, BPF_ANY);
}

/*
 * The backend of an existing connection, or 0 for a new one. A connection keeps its
 * backend while the backend exists, terminating or not (graceful termination); a TCP SYN
 * on a tuple whose backend is terminating is a new connection reusing the ports, and
 * re-selects, as does a tuple last used for another service (rev_nat_id reused).
 */
static __always_inline __u32 ct_lookup_service(const struct jnc_packet *packet,
					       const struct junction_lb4_service *service,
					       __u64 now, struct junction_lb4_backend **chosen)
{
	const struct junction_ct4_key key = {
		.saddr = packet->saddr,
		.daddr = packet->daddr,
		.sport = packet->sport,
		.dport = packet->dport,
		.proto = packet->proto,
		.direction = JUNCTION_CT_SERVICE,
	};
	struct junction_lb4_backend_key backend_key = {};
	struct junction_lb4_backend *backend;
	struct junction_ct4_entry *entry;
	int syn = packet->proto == IPPROTO_TCP &&
		  (packet->tcp_flags & (JNC_TCP_FLAG_SYN | JNC_TCP_FLAG_ACK)) == JNC_TCP_FLAG_SYN;

	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (!entry || entry->rev_nat_id != service->rev_nat_id)
		return 0;
	backend_key.backend_id = entry->backend_id;
	backend = bpf_map_lookup_elem(&jnc_lb4_be, &backend_key);
	if (!backend || (syn && (backend->flags & JUNCTION_BE_F_TERMINATING)))
		return 0;
	entry->last_seen = now;
	*chosen = backend;
	return entry->backend_id;
}

/* from_endpoint, for a packet to a service frontend: pick, record, DNAT. */
static __always_inline int lb4_service(struct __sk_buff *skb, const struct jnc_packet *packet,
				       const struct junction_lb4_service_key *frontend,
				       const struct junction_lb4_service *service)
{
	const __u32 direction = JUNCTION_DIR_FROM_ENDPOINT;
	struct junction_lb4_backend *backend = NULL;
	__u64 now = bpf_ktime_get_ns();
	__u32 id;

	/* As kube-proxy's REJECT: the client hears "port unreachable" at once. Counted (before
	 * the rewrite, with the original length) as dropped: the request goes nowhere. */
	if (service->count == 0) {
		count_drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		return jnc_icmp_port_unreachable(skb, packet);
	}
	id = ct_lookup_service(packet, service, now, &backend);
	if (!id) {
		id = select_backend(packet, frontend, service, now, &backend);
		if (!id || !backend)
			return drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		if (ct_create(packet, backend, id, service->rev_nat_id, now) < 0)
			return drop(skb, JUNCTION_DROP_CT_MAP_FULL, direction);
	}
	if (jnc_nat_rewrite(skb, packet, JNC_IPV4_DADDR_OFF, packet->daddr, backend->address,
			    packet->l4_off + 2, packet->dport, backend->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	return TC_ACT_OK;
}

/* to_endpoint: a reply of a service connection gets the VIP:port back as its source. */
static __always_inline int lb4_reverse_nat(struct __sk_buff *skb, const struct jnc_packet *packet)
{
	const struct junction_ct4_key key = {
		.saddr = packet->saddr,
		.daddr = packet->daddr,
		.sport = packet->sport,
		.dport = packet->dport,
		.proto = packet->proto,
		.direction = JUNCTION_CT_REPLY,
	};
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb4_revnat *revnat;
	struct junction_ct4_entry *entry;

	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (!entry)
		return TC_ACT_OK;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);
	/* The service is gone: nothing to translate back to; the client drops the packet. */
	if (!revnat)
		return TC_ACT_OK;
	entry->last_seen = bpf_ktime_get_ns();
	if (jnc_nat_rewrite(skb, packet, JNC_IPV4_SADDR_OFF, packet->saddr, revnat->address,
			    packet->l4_off, packet->sport, revnat->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_ENDPOINT);
	return TC_ACT_OK;
}

/* ---- Entry points ---------------------------------------------------------------------- */

SEC("tc")
int from_endpoint(struct __sk_buff *skb)
{
	struct junction_lb4_service_key frontend = {};
	struct junction_lb4_service *service;
	struct jnc_packet packet = {};

	count_endpoint(skb, JUNCTION_DIR_FROM_ENDPOINT);
	switch (jnc_parse_ipv4(skb, &packet)) {
	case JNC_PARSE_OK:
		break;
	case JNC_PARSE_INVALID:
		return drop(skb, JUNCTION_DROP_INVALID_PACKET, JUNCTION_DIR_FROM_ENDPOINT);
	default:
		return TC_ACT_OK;
	}
	frontend.address = packet.daddr;
	frontend.port = packet.dport;
	frontend.proto = packet.proto;
	service = bpf_map_lookup_elem(&jnc_lb4_svc, &frontend);
	if (!service)
		return TC_ACT_OK;
	return lb4_service(skb, &packet, &frontend, service);
}

SEC("tc")
int to_endpoint(struct __sk_buff *skb)
{
	struct jnc_packet packet = {};

	count_endpoint(skb, JUNCTION_DIR_TO_ENDPOINT);
	switch (jnc_parse_ipv4(skb, &packet)) {
	case JNC_PARSE_OK:
		return lb4_reverse_nat(skb, &packet);
	case JNC_PARSE_INVALID:
		return drop(skb, JUNCTION_DROP_INVALID_PACKET, JUNCTION_DIR_TO_ENDPOINT);
	default:
		return TC_ACT_OK;
	}
}
