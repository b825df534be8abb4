/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service load balancing shared by every hook: backend selection (conntrack, ClientIP
 * affinity, Maglev, random) and the conntrack entries of a connection.
 */
#ifndef JUNCTION_LIB_LB4_H
#define JUNCTION_LIB_LB4_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lib/jhash.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/stages.h"


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

/* The backend id in the slot of the service's Maglev table that `hash` falls in; 0 when the
 * service has no table yet. Both families share the table map (it is keyed by rev-NAT id). */
static __always_inline __u32 maglev_slot(const struct junction_lb4_service *service, __u32 hash)
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
	index = hash % JUNCTION_MAGLEV_TABLE_SIZE;
	/* Hide the modulo from clang so the bound check the verifier needs stays in. */
	asm volatile("" : "+r"(index));
	if (index >= JUNCTION_MAGLEV_TABLE_SIZE)
		return 0;
	return table[index];
}

/* The table's backend for this connection; 0 when the service has no table yet or the
 * slot's backend is gone or terminating (the caller falls back to random). */
static __always_inline __u32 select_maglev(const struct jnc_packet *packet,
					   const struct junction_lb4_service *service,
					   struct junction_lb4_backend **chosen)
{
	__u32 id = maglev_slot(service,
			       maglev_hash(packet, service->flags & JUNCTION_SVC_F_AFFINITY));

	return id && (*chosen = active_backend(id)) ? id : 0;
}

/* The client's affinity backend, if the entry is younger than the service's timeout and
 * the backend still takes connections. `now - last_used` cannot underflow, also on a
 * machine booted seconds ago: last_used is a bpf_ktime_get_ns (CLOCK_MONOTONIC, from boot)
 * this datapath wrote earlier, the agent never writes one, and the maps do not outlive a
 * reboot. (A value from the future, only a test could write, reads as expired.) */
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

	if (jnc_skip(JNC_STAGE_SELECT)) {
		*chosen = active_backend(1);
		return 1;
	}
	if (affinity && !jnc_skip(JNC_STAGE_AFFINITY))
		id = select_affinity(&affinity_key, service, now, chosen);
	if (!id && (service->flags & JUNCTION_SVC_F_MAGLEV))
		id = select_maglev(packet, service, chosen);
	if (!id)
		id = select_random(frontend, service, chosen);
	if (id && affinity && !jnc_skip(JNC_STAGE_AFFINITY)) {
		/* Timed from the last new connection, as kube-proxy's "recent" match does. */
		const struct junction_lb4_affinity entry = { .last_used = now, .backend_id = id };

		bpf_map_update_elem(&jnc_lb4_aff, &affinity_key, &entry, BPF_ANY);
	}
	return id;
}

/* ---- Conntrack keys ------------------------------------------------------------------- */

static __always_inline struct junction_ct4_key ct_key(__be32 saddr, __be32 daddr, __be16 sport,
						      __be16 dport, __u8 proto, __u8 direction)
{
	struct junction_ct4_key key = {
		.saddr = saddr,
		.daddr = daddr,
		.sport = sport,
		.dport = dport,
		.proto = proto,
		.direction = direction,
	};
	return key;
}

/* The key of the packet's own tuple in `direction`. */
static __always_inline struct junction_ct4_key ct_key_of(const struct jnc_packet *packet,
							 __u8 direction)
{
	return ct_key(packet->saddr, packet->daddr, packet->sport, packet->dport, packet->proto,
		      direction);
}

/* The REPLY key of the backend's answers to the packet's client, unchanged addresses. */
static __always_inline struct junction_ct4_key ct_reply_key(const struct jnc_packet *packet,
							    __be32 backend, __be16 backend_port)
{
	return ct_key(backend, packet->saddr, backend_port, packet->sport, packet->proto,
		      JUNCTION_CT_REPLY);
}

/* Records a connection under `request` and, unless NULL, `reply`; 0, or a negative errno.
 * Reply first: once the request entry exists, its packets are translated, and the answer
 * must already find its way back. */
static __always_inline int ct_insert(const struct junction_ct4_key *request,
				     const struct junction_ct4_key *reply,
				     const struct junction_ct4_entry *entry)
{
	int err;

	if (reply && !jnc_skip(JNC_STAGE_CT_REPLY)) {
		err = bpf_map_update_elem(&jnc_ct4, reply, entry, BPF_ANY);
		if (err < 0)
			return err;
	}
	err = jnc_skip(JNC_STAGE_CT_REQUEST) ? 0
					     : bpf_map_update_elem(&jnc_ct4, request, entry, BPF_ANY);
	/* The map is full (-E2BIG: it never evicts): the connection is refused, so its reply
	 * entry would only hold a slot until the agent's sweep. */
	if (err < 0 && reply)
		bpf_map_delete_elem(&jnc_ct4, reply);
	return err;
}

/* A TCP FIN or RST through `entry`: closing (the agent's sweep then keeps it only for the
 * close timeout, not the TCP lifetime). */
static __always_inline void ct_note_close(struct junction_ct4_entry *entry,
					  const struct jnc_packet *packet)
{
	if (jnc_tcp_closes(packet))
		entry->flags |= JUNCTION_CT_F_CLOSING;
}

/* Records both directions of a new connection, with `flags` (JUNCTION_CT_F_*; HAIRPIN is
 * added here when the client is its own backend); 0, or a negative errno. */
static __always_inline int ct_create(const struct jnc_packet *packet,
				     const struct junction_lb4_backend *backend, __u32 backend_id,
				     __u16 rev_nat_id, __u16 flags, __u64 now)
{
	const int hairpin = !jnc_skip(JNC_STAGE_HAIRPIN) && backend->address == packet->saddr;
	const struct junction_ct4_key service_key = ct_key_of(packet, JUNCTION_CT_SERVICE);
	struct junction_ct4_key reply_key = ct_reply_key(packet, backend->address, backend->port);
	const struct junction_ct4_entry entry = {
		.last_seen = now,
		.backend_id = backend_id,
		.rev_nat_id = rev_nat_id,
		.flags = flags | (hairpin ? JUNCTION_CT_F_HAIRPIN : 0),
	};

	/* A hairpin's requests arrive from the service loopback address: so do its replies. */
	if (hairpin)
		reply_key.daddr = bpf_htonl(JUNCTION_SERVICE_LOOPBACK_IPV4);
	return ct_insert(&service_key, &reply_key, &entry);
}

/*
 * The backend of an existing connection, or 0 for a new one. A connection keeps its
 * backend while the backend exists, terminating or not (graceful termination); a TCP SYN
 * on a tuple whose backend is terminating is a new connection reusing the ports, and
 * re-selects, as does a tuple last used for another service (rev_nat_id reused). The
 * backend's entry comes back in *chosen and, when `found` is not NULL, the conntrack entry
 * in *found, so callers need no second lookup.
 */
static __always_inline __u32 ct_lookup_service(const struct jnc_packet *packet,
					       const struct junction_lb4_service *service,
					       __u64 now, struct junction_lb4_backend **chosen,
					       struct junction_ct4_entry **found)
{
	const struct junction_ct4_key key = ct_key_of(packet, JUNCTION_CT_SERVICE);
	struct junction_lb4_backend_key backend_key = {};
	struct junction_lb4_backend *backend;
	struct junction_ct4_entry *entry;
	int syn = jnc_tcp_opens(packet);

	if (jnc_skip(JNC_STAGE_CT_LOOKUP))
		return 0;
	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (jnc_skip(JNC_STAGE_ALWAYS_NEW))
		return 0;
	if (!entry || entry->rev_nat_id != service->rev_nat_id)
		return 0;
	backend_key.backend_id = entry->backend_id;
	backend = bpf_map_lookup_elem(&jnc_lb4_be, &backend_key);
	if (!backend || (syn && (backend->flags & JUNCTION_BE_F_TERMINATING)))
		return 0;
	entry->last_seen = now;
	ct_note_close(entry, packet);
	/* A SYN reusing a closing tuple opens it again (SNAT entries excepted: from_netdev
	 * gives such a SYN a connection and a port of its own). */
	if (syn && !(entry->flags & JUNCTION_CT_F_SNAT))
		entry->flags &= ~JUNCTION_CT_F_CLOSING;
	*chosen = backend;
	if (found)
		*found = entry;
	return entry->backend_id;
}

#endif /* JUNCTION_LIB_LB4_H */
