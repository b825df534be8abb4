/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 service load balancing, the twin of lb4.h over the jnc_lb6_* maps and jnc_ct6:
 * backend selection (conntrack, ClientIP affinity, Maglev, random) and the conntrack
 * entries of a connection. The same rules as lb4.h (read its comments); only the address
 * width differs. Maglev tables are shared with IPv4 in jnc_lb4_maglev (keyed by rev_nat_id).
 */
#ifndef JUNCTION_LIB_LB6_H
#define JUNCTION_LIB_LB6_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lib/jhash.h"
#include "lib/lb4.h"
#include "lib/maps.h"
#include "lib/parse6.h"

static __always_inline struct junction_lb6_backend *active_backend6(__u32 id)
{
	const struct junction_lb4_backend_key key = { .backend_id = id };
	struct junction_lb6_backend *backend;

	if (!id)
		return NULL;
	backend = bpf_map_lookup_elem(&jnc_lb6_be, &key);
	if (!backend || (backend->flags & JUNCTION_BE_F_TERMINATING))
		return NULL;
	return backend;
}

static __always_inline __u32 select_random6(const struct junction_lb6_service_key *frontend,
					    const struct junction_lb4_service *service,
					    struct junction_lb6_backend **chosen)
{
	struct junction_lb6_service_key key = *frontend;
	__u32 count = service->count;
	__u32 start = bpf_get_prandom_u32() % count;
	struct junction_lb4_service *slot;

	for (__u32 probe = 0; probe < JNC_LB_SLOT_PROBES && probe < count; probe++) {
		key.slot = (start + probe) % count + 1;
		slot = bpf_map_lookup_elem(&jnc_lb6_svc, &key);
		if (slot && (*chosen = active_backend6(slot->backend_id)))
			return slot->backend_id;
	}
	return 0;
}

/* An address folded to one word for the Maglev hash (junction_abi.h documents it). */
static __always_inline __u32 fold6(const __be32 *address)
{
	return bpf_ntohl(address[0] ^ address[1] ^ address[2] ^ address[3]);
}

static __always_inline __u32 maglev_hash6(const struct jnc_packet6 *packet, int client_only)
{
	__u32 sport = client_only ? 0 : bpf_ntohs(packet->sport);

	return jnc_jhash_3words(fold6(packet->saddr), fold6(packet->daddr),
				(sport << 16) | bpf_ntohs(packet->dport),
				JUNCTION_MAGLEV_HASH_SEED + packet->proto);
}

static __always_inline __u32 select_maglev6(const struct jnc_packet6 *packet,
					    const struct junction_lb4_service *service,
					    struct junction_lb6_backend **chosen)
{
	__u32 id = maglev_slot(service,
			       maglev_hash6(packet, service->flags & JUNCTION_SVC_F_AFFINITY));

	return id && (*chosen = active_backend6(id)) ? id : 0;
}

static __always_inline __u32 select_affinity6(const struct junction_lb6_affinity_key *key,
					      const struct junction_lb4_service *service,
					      __u64 now, struct junction_lb6_backend **chosen)
{
	struct junction_lb4_affinity *entry = bpf_map_lookup_elem(&jnc_lb6_aff, key);

	if (!entry || now - entry->last_used > (__u64)service->affinity_timeout * 1000000000ULL)
		return 0;
	return (*chosen = active_backend6(entry->backend_id)) ? entry->backend_id : 0;
}

static __always_inline __u32 select_backend6(const struct jnc_packet6 *packet,
					     const struct junction_lb6_service_key *frontend,
					     const struct junction_lb4_service *service, __u64 now,
					     struct junction_lb6_backend **chosen)
{
	struct junction_lb6_affinity_key affinity_key = { .rev_nat_id = service->rev_nat_id };
	int affinity = service->flags & JUNCTION_SVC_F_AFFINITY;
	__u32 id = 0;

	jnc_addr6_copy(affinity_key.client, packet->saddr);
	if (affinity)
		id = select_affinity6(&affinity_key, service, now, chosen);
	if (!id && (service->flags & JUNCTION_SVC_F_MAGLEV))
		id = select_maglev6(packet, service, chosen);
	if (!id)
		id = select_random6(frontend, service, chosen);
	if (id && affinity) {
		const struct junction_lb4_affinity entry = { .last_used = now, .backend_id = id };

		bpf_map_update_elem(&jnc_lb6_aff, &affinity_key, &entry, BPF_ANY);
	}
	return id;
}

/* ---- Conntrack ------------------------------------------------------------------------ */

static __always_inline struct junction_ct6_key ct6_key(const __be32 *saddr, const __be32 *daddr,
						       __be16 sport, __be16 dport, __u8 proto,
						       __u8 direction)
{
	struct junction_ct6_key key = {
		.sport = sport,
		.dport = dport,
		.proto = proto,
		.direction = direction,
	};

	jnc_addr6_copy(key.saddr, saddr);
	jnc_addr6_copy(key.daddr, daddr);
	return key;
}

static __always_inline struct junction_ct6_key ct6_key_of(const struct jnc_packet6 *packet,
							  __u8 direction)
{
	return ct6_key(packet->saddr, packet->daddr, packet->sport, packet->dport, packet->proto,
		       direction);
}

/* JUNCTION_SERVICE_LOOPBACK_IPV6 (junction_abi.h) in network order, into `address`. */
static __always_inline void jnc_service_loopback6(__be32 *address)
{
	address[0] = bpf_htonl(JUNCTION_SERVICE_LOOPBACK_IPV6_W0);
	address[1] = bpf_htonl(JUNCTION_SERVICE_LOOPBACK_IPV6_W1);
	address[2] = bpf_htonl(JUNCTION_SERVICE_LOOPBACK_IPV6_W2);
	address[3] = bpf_htonl(JUNCTION_SERVICE_LOOPBACK_IPV6_W3);
}

/* Both directions of a new connection, reply first (see lb4.h ct_insert). A client that is
 * its own backend is a hairpin (lib/hairpin6.h), as in lb4.h ct_create. */
static __always_inline int ct6_create(const struct jnc_packet6 *packet,
				      const struct junction_lb6_backend *backend, __u32 backend_id,
				      __u16 rev_nat_id, __u64 now)
{
	const int hairpin = jnc_addr6_equal(backend->address, packet->saddr);
	const struct junction_ct6_key service_key = ct6_key_of(packet, JUNCTION_CT_SERVICE);
	struct junction_ct6_key reply_key =
		ct6_key(backend->address, packet->saddr, backend->port, packet->sport,
			packet->proto, JUNCTION_CT_REPLY);
	const struct junction_ct6_entry entry = {
		.last_seen = now,
		.backend_id = backend_id,
		.rev_nat_id = rev_nat_id,
		.flags = hairpin ? JUNCTION_CT_F_HAIRPIN : 0,
	};
	int err;

	/* A hairpin's requests arrive from the service loopback address: so do its replies. */
	if (hairpin)
		jnc_service_loopback6(reply_key.daddr);

	err = bpf_map_update_elem(&jnc_ct6, &reply_key, &entry, BPF_ANY);
	if (err < 0)
		return err;
	err = bpf_map_update_elem(&jnc_ct6, &service_key, &entry, BPF_ANY);
	if (err < 0) /* full: refused, so no reply entry either (lb4.h ct_insert) */
		bpf_map_delete_elem(&jnc_ct6, &reply_key);
	return err;
}

/* lb4.h's ct_note_close over jnc_ct6: a TCP FIN or RST makes the entry closing, so the
 * agent's sweep keeps it for the close timeout, not the TCP lifetime (the map never evicts). */
static __always_inline void ct6_note_close(struct junction_ct6_entry *entry,
					   const struct jnc_packet6 *packet)
{
	if (jnc_tcp6_closes(packet))
		entry->flags |= JUNCTION_CT_F_CLOSING;
}

/* The backend of an existing connection, or 0 for a new one (lb4.h ct_lookup_service). */
static __always_inline __u32 ct6_lookup_service(const struct jnc_packet6 *packet,
						const struct junction_lb4_service *service,
						__u64 now, struct junction_lb6_backend **chosen)
{
	const struct junction_ct6_key key = ct6_key_of(packet, JUNCTION_CT_SERVICE);
	struct junction_lb4_backend_key backend_key = {};
	struct junction_lb6_backend *backend;
	struct junction_ct6_entry *entry;

	entry = bpf_map_lookup_elem(&jnc_ct6, &key);
	if (!entry || entry->rev_nat_id != service->rev_nat_id)
		return 0;
	backend_key.backend_id = entry->backend_id;
	backend = bpf_map_lookup_elem(&jnc_lb6_be, &backend_key);
	if (!backend || (jnc_tcp6_opens(packet) && (backend->flags & JUNCTION_BE_F_TERMINATING)))
		return 0;
	entry->last_seen = now;
	ct6_note_close(entry, packet);
	/* A SYN reusing a closing tuple opens it again (as lb4.h; SNAT entries are
	 * nodeport6.h's). */
	if (jnc_tcp6_opens(packet) && !(entry->flags & JUNCTION_CT_F_SNAT))
		entry->flags &= ~JUNCTION_CT_F_CLOSING;
	*chosen = backend;
	return entry->backend_id;
}

#endif /* JUNCTION_LIB_LB6_H */
