/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * North-south SNAT over IPv6, the twin of snat.h over jnc_ct6: a connection to a remote
 * backend leaves the ingress node from the node's IPv6 address on the device and a port of
 * the node's SNAT range; the backend's replies come back to this node and are translated back
 * to the client. The same rules as snat.h (read its comments: port claim by a BPF_NOEXIST
 * insert, take-over of an expired port by compare-and-swap, closing on FIN/RST, the same
 * timeouts); only the address width differs.
 */
#ifndef JUNCTION_LIB_SNAT6_H
#define JUNCTION_LIB_SNAT6_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lib/lb6.h"
#include "lib/maps.h"
#include "lib/parse6.h"
#include "lib/snat.h"

/* The SERVICE key (client -> frontend) of the connection an SNAT REPLY entry belongs to. */
static __always_inline int jnc_snat6_service_key(const __be32 *client, __be16 client_port,
						 __u16 rev_nat_id, __u8 proto,
						 struct junction_ct6_key *key)
{
	const struct junction_lb4_revnat_key revnat_key = { .rev_nat_id = rev_nat_id };
	struct junction_lb6_revnat *revnat = bpf_map_lookup_elem(&jnc_lb6_revnat, &revnat_key);

	if (!revnat)
		return -1;
	*key = ct6_key(client, revnat->address, client_port, revnat->port, proto,
		       JUNCTION_CT_SERVICE);
	return 0;
}

/* The SERVICE entry at `key` if it is the SNAT connection leaving as node:port. */
static __always_inline struct junction_ct6_entry *
jnc_snat6_service_entry(const struct junction_ct6_key *key, const __be32 *node, __be16 port)
{
	struct junction_ct6_entry *entry = bpf_map_lookup_elem(&jnc_ct6, key);

	if (!entry || !(entry->flags & JUNCTION_CT_F_SNAT) ||
	    !jnc_addr6_equal(entry->nat_address, node) || entry->nat_port != port)
		return NULL;
	return entry;
}

/* snat.h's jnc_snat_take_over over jnc_ct6. */
static __always_inline int jnc_snat6_take_over(const struct junction_ct6_key *key,
					       const struct junction_ct6_entry *reply)
{
	struct junction_ct6_entry *taken = bpf_map_lookup_elem(&jnc_ct6, key);
	struct junction_ct6_entry *service = NULL;
	struct junction_ct6_key service_key;
	__u64 now = reply->last_seen;
	__u64 seen;

	if (!taken || !(taken->flags & JUNCTION_CT_F_SNAT))
		return -1;
	seen = taken->last_seen;
	if (!jnc_snat_expired(seen, taken->flags, key->proto, now))
		return -1;
	if (jnc_snat6_service_key(taken->nat_address, taken->nat_port, taken->rev_nat_id,
				  key->proto, &service_key) == 0)
		service = jnc_snat6_service_entry(&service_key, key->daddr, key->dport);
	if (service && !jnc_snat_expired(service->last_seen, service->flags | taken->flags,
					 key->proto, now))
		return -1;
	if (__sync_val_compare_and_swap(&taken->last_seen, seen, now) != seen)
		return -1;
	if (service)
		bpf_map_delete_elem(&jnc_ct6, &service_key);
	return bpf_map_update_elem(&jnc_ct6, key, reply, BPF_ANY);
}

/* snat.h's jnc_snat_claim_port over jnc_ct6: the port (network order), or 0; *full is then
 * set when the reason is the conntrack map being full (the insert's -E2BIG), not the range. */
static __always_inline __be16 jnc_snat6_claim_port(const struct jnc_packet6 *packet,
						   const struct junction_lb6_backend *backend,
						   const __be32 *node,
						   const struct junction_ct6_entry *reply, int *full)
{
	struct junction_ct6_key key = ct6_key(backend->address, node, backend->port, 0,
					      packet->proto, JUNCTION_CT_REPLY);
	const __u32 zero = 0;
	struct junction_node_config *config = bpf_map_lookup_elem(&jnc_node_cfg, &zero);
	__u32 low = JUNCTION_SNAT_PORT_MIN_DEFAULT, high = JUNCTION_SNAT_PORT_MAX_DEFAULT;
	__u32 span;

	if (config && config->snat_port_min && config->snat_port_min <= config->snat_port_max) {
		low = config->snat_port_min;
		high = config->snat_port_max;
	}
	span = high - low + 1;
	*full = 0;
	for (__u32 probe = 0; probe < JNC_SNAT_PORT_PROBES; probe++) {
		long err;

		key.dport = bpf_htons((__u16)(low + bpf_get_prandom_u32() % span));
		err = bpf_map_update_elem(&jnc_ct6, &key, reply, BPF_NOEXIST);
		if (err == 0)
			return key.dport;
		if (jnc_snat6_take_over(&key, reply) == 0)
			return key.dport;
		if (err == -E2BIG) {
			*full = 1;
			return 0;
		}
	}
	return 0;
}

/* A FIN or RST of an SNAT connection seen either way: both of its entries become closing. */
static __always_inline void jnc_snat6_mark_closing(const struct junction_ct6_key *service,
						   const struct junction_ct6_key *reply)
{
	struct junction_ct6_entry *entry =
		jnc_snat6_service_entry(service, reply->daddr, reply->dport);

	if (entry)
		entry->flags |= JUNCTION_CT_F_CLOSING;
	entry = bpf_map_lookup_elem(&jnc_ct6, reply);
	if (entry && (entry->flags & JUNCTION_CT_F_SNAT))
		entry->flags |= JUNCTION_CT_F_CLOSING;
}

#endif /* JUNCTION_LIB_SNAT6_H */
