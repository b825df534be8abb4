/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 hairpin, the twin of hairpin.h (read it): a pod reaching an IPv6 service whose chosen
 * backend is itself. IPv6 has no martian check, but the pod's kernel would deliver its own
 * answer to its own address through its loopback device, never through the veth, so the
 * reverse NAT would never see it and the client socket would get an answer from pod:port
 * instead of VIP:port. As for IPv4, the request's source becomes the service loopback
 * address (JUNCTION_SERVICE_LOOPBACK_IPV6, 100::a9fe:2a01) and the pod's answers to it get
 * VIP:port -> pod back, both handed straight back to the pod on its host-side veth.
 *
 * Conntrack (jnc_ct6): the SERVICE entry is the usual one; the REPLY entry is keyed as the
 * answers arrive, pod:backend port -> loopback:pod port, flagged JUNCTION_CT_F_HAIRPIN
 * (lib/lb6.h ct6_create). to_endpoint sees neither translated packet as a reply.
 */
#ifndef JUNCTION_LIB_HAIRPIN6_H
#define JUNCTION_LIB_HAIRPIN6_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"
#include "lib/hairpin.h"
#include "lib/lb6.h"
#include "lib/maps.h"
#include "lib/nat6.h"
#include "lib/parse6.h"

static __always_inline int jnc_is_service_loopback6(const __be32 *address)
{
	__be32 loopback[4];

	jnc_service_loopback6(loopback);
	return jnc_addr6_equal(address, loopback);
}

/*
 * The request half, after the DNAT to the pod itself: source becomes the loopback address
 * (port kept) and the packet goes back to the pod. `packet` holds the original source.
 */
static __always_inline int jnc_hairpin6_request(struct __sk_buff *skb,
						const struct jnc_packet6 *packet)
{
	__be32 loopback[4];
	int err;

	jnc_service_loopback6(loopback);
	err = jnc_nat6_rewrite(skb, packet, JNC_IPV6_SADDR_OFF, packet->saddr, loopback,
			       packet->l4_off, packet->sport, packet->sport);
	return err < 0 ? err : jnc_hairpin_return(skb);
}

/*
 * The reply half: a packet from the pod to the loopback address that matches a hairpin
 * REPLY entry gets destination = the pod (port kept) and source = the service's VIP:port,
 * and goes back to the pod. JNC_NOT_HAIRPIN when it is not one, else TC_ACT_REDIRECT or a
 * negative errno.
 */
static __always_inline int jnc_hairpin6_reply(struct __sk_buff *skb,
					      const struct jnc_packet6 *packet)
{
	const struct junction_ct6_key key = ct6_key_of(packet, JUNCTION_CT_REPLY);
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb6_revnat *revnat;
	struct junction_ct6_entry *entry;
	__be32 vip[4];
	int err;

	entry = bpf_map_lookup_elem(&jnc_ct6, &key);
	if (!entry || !(entry->flags & JUNCTION_CT_F_HAIRPIN))
		return JNC_NOT_HAIRPIN;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb6_revnat, &revnat_key);
	/* The service is gone: nothing to translate back to. */
	if (!revnat)
		return JNC_NOT_HAIRPIN;
	entry->last_seen = bpf_ktime_get_ns();
	ct6_note_close(entry, packet);
	/* A copy: the map value may change under us between the checksum and the store. */
	jnc_addr6_copy(vip, revnat->address);
	err = jnc_nat6_rewrite(skb, packet, JNC_IPV6_DADDR_OFF, packet->daddr, packet->saddr,
			       packet->l4_off + 2, packet->dport, packet->dport);
	if (err < 0)
		return err;
	err = jnc_nat6_rewrite(skb, packet, JNC_IPV6_SADDR_OFF, packet->saddr, vip,
			       packet->l4_off, packet->sport, revnat->port);
	return err < 0 ? err : jnc_hairpin_return(skb);
}

#endif /* JUNCTION_LIB_HAIRPIN6_H */
