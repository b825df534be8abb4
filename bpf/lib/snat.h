/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * North-south SNAT to a remote backend: the connection leaves the ingress node with the
 * node's address on the device and a source port of the node's SNAT range, so the backend's
 * replies come back to this node, which translates them back to the client.
 */
#ifndef JUNCTION_LIB_SNAT_H
#define JUNCTION_LIB_SNAT_H

#include <linux/bpf.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>

#include "lib/lb4.h"
#include "lib/maps.h"
#include "lib/parse.h"

/* Ports tried, each drawn at random from the range, before giving up
 * (JUNCTION_DROP_NO_NAT_PORT). Independent draws fail together only with probability
 * (share of ports in use)^32: about 3% with 90% of the range live, none at 80%. A bounded
 * loop, so the verifier checks one iteration's body, not 32 copies. */
#define JNC_SNAT_PORT_PROBES 32

/*
 * When a port held by an earlier connection may be claimed again, without waiting for the
 * agent's sweep to delete the expired entries (jnc_ct4 never evicts): the conntrack
 * lifetimes of junction_abi.h (Cilium's), the ones the sweep applies. Idle = since
 * last_seen, which every translated packet refreshes.
 */
#define JNC_SNAT_SECOND_NS 1000000000ULL
#define JNC_SNAT_CLOSE_TIMEOUT_NS (JUNCTION_CT_CLOSE_TIMEOUT_SECONDS * JNC_SNAT_SECOND_NS)
#define JNC_SNAT_TCP_LIFETIME_NS (JUNCTION_CT_TCP_LIFETIME_SECONDS * JNC_SNAT_SECOND_NS)
#define JNC_SNAT_NONTCP_LIFETIME_NS (JUNCTION_CT_NONTCP_LIFETIME_SECONDS * JNC_SNAT_SECOND_NS)

/* Whether an SNAT connection last seen at `last_seen` with `flags` no longer holds its port. */
static __always_inline int jnc_snat_expired(__u64 last_seen, __u16 flags, __u8 proto, __u64 now)
{
	__u64 idle = now > last_seen ? now - last_seen : 0;

	if (proto != IPPROTO_TCP)
		return idle > JNC_SNAT_NONTCP_LIFETIME_NS;
	if (flags & JUNCTION_CT_F_CLOSING)
		return idle > JNC_SNAT_CLOSE_TIMEOUT_NS;
	return idle > JNC_SNAT_TCP_LIFETIME_NS;
}

/*
 * The SERVICE key (client -> frontend) of the connection an SNAT REPLY entry belongs to:
 * the client is the entry's nat_address:nat_port, the frontend its rev_nat_id's address.
 * 0, or -1 when the service is gone.
 */
static __always_inline int jnc_snat_service_key(__be32 client, __be16 client_port,
						__u16 rev_nat_id, __u8 proto,
						struct junction_ct4_key *key)
{
	const struct junction_lb4_revnat_key revnat_key = { .rev_nat_id = rev_nat_id };
	struct junction_lb4_revnat *revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);

	if (!revnat)
		return -1;
	*key = ct_key(client, revnat->address, client_port, revnat->port, proto,
		      JUNCTION_CT_SERVICE);
	return 0;
}

/* The SERVICE entry at `key` if it is the SNAT connection leaving as node:port. */
static __always_inline struct junction_ct4_entry *
jnc_snat_service_entry(const struct junction_ct4_key *key, __be32 node, __be16 port)
{
	struct junction_ct4_entry *entry = bpf_map_lookup_elem(&jnc_ct4, key);

	if (!entry || !(entry->flags & JUNCTION_CT_F_SNAT) || entry->nat_address != node ||
	    entry->nat_port != port)
		return NULL;
	return entry;
}

/*
 * Takes over the REPLY entry at `key` (a taken port) when its connection has expired: the
 * REPLY entry, and the SERVICE entry if it still leads to this port, idle past their
 * timeout (both: a one-way flow refreshes only the SERVICE entry). The claim is a
 * compare-and-swap of the REPLY entry's last_seen from the value judged expired to now: of
 * two CPUs taking over the same port one wins, and a late packet of the old connection
 * (which refreshes last_seen) makes the take-over fail instead. The winner deletes the old
 * SERVICE entry (else a late client packet would leave with a port that is now someone
 * else's), then writes its own REPLY entry.
 */
static __always_inline int jnc_snat_take_over(const struct junction_ct4_key *key,
					      const struct junction_ct4_entry *reply)
{
	struct junction_ct4_entry *taken = bpf_map_lookup_elem(&jnc_ct4, key);
	struct junction_ct4_entry *service = NULL;
	struct junction_ct4_key service_key;
	__u64 now = reply->last_seen;
	__u64 seen;

	/* Only an SNAT entry: a REPLY key of the node's own connection is not ours to take. */
	if (!taken || !(taken->flags & JUNCTION_CT_F_SNAT))
		return -1;
	seen = taken->last_seen;
	if (!jnc_snat_expired(seen, taken->flags, key->proto, now))
		return -1;
	if (jnc_snat_service_key(taken->nat_address, taken->nat_port, taken->rev_nat_id,
				 key->proto, &service_key) == 0)
		service = jnc_snat_service_entry(&service_key, key->daddr, key->dport);
	if (service && !jnc_snat_expired(service->last_seen, service->flags | taken->flags,
					 key->proto, now))
		return -1;
	if (__sync_val_compare_and_swap(&taken->last_seen, seen, now) != seen)
		return -1;
	if (service)
		bpf_map_delete_elem(&jnc_ct4, &service_key);
	return bpf_map_update_elem(&jnc_ct4, key, reply, BPF_ANY);
}

/*
 * Claims a source port for a connection from `node` to `backend` and records its REPLY
 * entry (backend -> node:port; nat = the client's address:port, the SNAT flag, `reply`'s
 * other fields, last_seen = now). A free port is claimed by the BPF_NOEXIST insert itself:
 * two CPUs picking the same port for the same backend cannot both win; a taken one only
 * when its connection has expired (jnc_snat_take_over). Returns the port (network order),
 * or 0 when none of the probed ports could be had; *full is then set when the reason is the
 * conntrack map being full (the insert's -E2BIG: the map never evicts), not the range.
 */
static __always_inline __be16 jnc_snat_claim_port(const struct jnc_packet *packet,
						  const struct junction_lb4_backend *backend,
						  __be32 node, const struct junction_ct4_entry *reply,
						  int *full)
{
	struct junction_ct4_key key =
		ct_key(backend->address, node, backend->port, 0, packet->proto, JUNCTION_CT_REPLY);
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
		err = bpf_map_update_elem(&jnc_ct4, &key, reply, BPF_NOEXIST);
		if (err == 0)
			return key.dport;
		if (jnc_snat_take_over(&key, reply) == 0)
			return key.dport;
		if (err == -E2BIG) {
			*full = 1;
			return 0;
		}
	}
	return 0;
}

/*
 * A FIN or RST of an SNAT connection seen either way: both of its entries become closing.
 * `service` and `reply` are the two keys (reply: backend -> node:port); either entry may
 * already be gone (swept, or deleted by FlowPurge).
 */
static __always_inline void jnc_snat_mark_closing(const struct junction_ct4_key *service,
						  const struct junction_ct4_key *reply)
{
	/* The SERVICE entry only if it still leads to this port: the client may have reused
	 * its port for a newer connection by now. */
	struct junction_ct4_entry *entry =
		jnc_snat_service_entry(service, reply->daddr, reply->dport);

	if (entry)
		entry->flags |= JUNCTION_CT_F_CLOSING;
	entry = bpf_map_lookup_elem(&jnc_ct4, reply);
	if (entry && (entry->flags & JUNCTION_CT_F_SNAT))
		entry->flags |= JUNCTION_CT_F_CLOSING;
}

#endif /* JUNCTION_LIB_SNAT_H */
