/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Hairpin: a pod reaching a service whose chosen backend is itself. DNATed alone, the
 * request would reach the pod with its own address as source, which Linux drops (a
 * "martian": accepted only with accept_local=1). As Cilium does, the request's source
 * becomes the service loopback address (JUNCTION_SERVICE_LOOPBACK_IPV4) and the pod's
 * answers to that address get VIP:port -> pod back. Both directions are turned around on
 * the pod's host-side veth (from_endpoint) and handed straight back to the pod with
 * bpf_redirect: no node routing, forwarding, rp_filter or netfilter conntrack involved.
 *
 * Conntrack: the SERVICE entry is the usual one (pod:port -> VIP:port); the REPLY entry is
 * keyed as the answers arrive, pod:backend port -> loopback:pod port (lib/lb4.h ct_create),
 * flagged JUNCTION_CT_F_HAIRPIN. to_endpoint sees neither translated packet as a reply
 * (loopback -> pod, VIP -> pod have no REPLY entry), so nothing is translated twice.
 */
#ifndef JUNCTION_LIB_HAIRPIN_H
#define JUNCTION_LIB_HAIRPIN_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "junction_abi.h"
#include "lib/lb4.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/parse.h"

/* jnc_hairpin_reply: the packet is not a hairpin reply; it goes on untouched. */
#define JNC_NOT_HAIRPIN 1

static __always_inline __be32 jnc_service_loopback(void)
{
	return bpf_htonl(JUNCTION_SERVICE_LOOPBACK_IPV4);
}

/*
 * Sends the frame back out of the interface it came in on (a host veth: to the pod), the
 * MACs swapped so the pod accepts it as addressed to itself. TC_ACT_REDIRECT, or a
 * negative errno when the MACs cannot be rewritten.
 */
static __always_inline int jnc_hairpin_return(struct __sk_buff *skb)
{
	__u8 macs[2 * ETH_ALEN];
	__u8 swapped[2 * ETH_ALEN];
	int err;

	err = bpf_skb_load_bytes(skb, 0, macs, sizeof(macs));
	if (err < 0)
		return err;
	__builtin_memcpy(swapped, macs + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(swapped + ETH_ALEN, macs, ETH_ALEN);
	err = bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0);
	if (err < 0)
		return err;
	return bpf_redirect(skb->ifindex, 0);
}

/*
 * The request half, after the DNAT to the pod itself: source becomes the loopback address
 * (port kept) and the packet goes back to the pod. `client` is the original source.
 */
static __always_inline int jnc_hairpin_request(struct __sk_buff *skb,
					       const struct jnc_packet *packet, __be32 client)
{
	int err = jnc_nat_rewrite(skb, packet, JNC_IPV4_SADDR_OFF, client, jnc_service_loopback(),
				  packet->l4_off, packet->sport, packet->sport);

	return err < 0 ? err : jnc_hairpin_return(skb);
}

/*
 * The reply half: a packet from the pod to the loopback address that matches a hairpin
 * REPLY entry gets destination = the pod (port kept: the client's port) and source = the
 * service's VIP:port, and goes back to the pod. JNC_NOT_HAIRPIN when it is not one, else
 * TC_ACT_REDIRECT or a negative errno.
 */
static __always_inline int jnc_hairpin_reply(struct __sk_buff *skb, const struct jnc_packet *packet)
{
	const struct junction_ct4_key key = ct_key_of(packet, JUNCTION_CT_REPLY);
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb4_revnat *revnat;
	struct junction_ct4_entry *entry;
	int err;

	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (!entry || !(entry->flags & JUNCTION_CT_F_HAIRPIN))
		return JNC_NOT_HAIRPIN;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);
	/* The service is gone: nothing to translate back to. */
	if (!revnat)
		return JNC_NOT_HAIRPIN;
	entry->last_seen = bpf_ktime_get_ns();
	err = jnc_nat_rewrite(skb, packet, JNC_IPV4_DADDR_OFF, packet->daddr, packet->saddr,
			      packet->l4_off + 2, packet->dport, packet->dport);
	if (err < 0)
		return err;
	err = jnc_nat_rewrite(skb, packet, JNC_IPV4_SADDR_OFF, packet->saddr, revnat->address,
			      packet->l4_off, packet->sport, revnat->port);
	return err < 0 ? err : jnc_hairpin_return(skb);
}

#endif /* JUNCTION_LIB_HAIRPIN_H */
