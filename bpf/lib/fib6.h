/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The IPv6 twin of fib.h: a rewritten packet forwarded out of the device the routing table
 * picks (bpf_fib_lookup with AF_INET6), the hop limit decremented as a router would. IPv6 has
 * no header checksum, so the decrement is one byte written. The kernel's IPv6 lookup also
 * answers BPF_FIB_LKUP_RET_FWD_DISABLED when the ingress device does not forward IPv6
 * (net.ipv6.conf.*.forwarding): the caller drops it as FIB_FAILED, as for no route.
 */
#ifndef JUNCTION_LIB_FIB6_H
#define JUNCTION_LIB_FIB6_H

#include "fib.h"
#include "parse6.h"

#define JNC_AF_INET6 10

/* The hop limit is byte 7 of the IPv6 header. */
#define JNC_IPV6_HOP_LIMIT_OFF (ETH_HLEN + 7)

/* -1 when the hop limit would reach 0 (a loop, or a probe the kernel would answer). */
static __always_inline int jnc_hop_limit_decrement(struct __sk_buff *skb)
{
	__u8 hops;

	if (bpf_skb_load_bytes(skb, JNC_IPV6_HOP_LIMIT_OFF, &hops, 1) < 0 || hops <= 1)
		return -1;
	hops--;
	return bpf_skb_store_bytes(skb, JNC_IPV6_HOP_LIMIT_OFF, &hops, 1, 0) < 0 ? -1 : 0;
}

/* The route to `daddr` (fib.h's jnc_fib_route: `tot_len` is the largest IPv6 packet that will
 * leave, header included, checked against the route's MTU). */
static __always_inline int jnc_fib_route6(struct __sk_buff *skb, struct bpf_fib_lookup *params,
					  const __be32 *saddr, const __be32 *daddr, __u8 proto,
					  __u32 tot_len)
{
	params->family = JNC_AF_INET6;
	params->l4_protocol = proto;
	params->tot_len = (__u16)tot_len;
	params->ifindex = skb->ifindex;
	jnc_addr6_copy(params->ipv6_src, saddr);
	jnc_addr6_copy(params->ipv6_dst, daddr);
	return bpf_fib_lookup(skb, params, sizeof(*params), 0);
}

/* fib.h's jnc_fib_redirect for IPv6: TC_ACT_REDIRECT, or -1 (the caller drops FIB_FAILED). */
static __always_inline int jnc_fib_redirect6(struct __sk_buff *skb, struct bpf_fib_lookup *params,
					     int route)
{
	struct bpf_redir_neigh next_hop = {};

	if (jnc_hop_limit_decrement(skb) < 0)
		return -1;
	if (route == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, params->dmac, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, params->smac, ETH_ALEN, 0) < 0)
			return -1;
		return bpf_redirect(params->ifindex, 0);
	}
	if (route == BPF_FIB_LKUP_RET_NO_NEIGH) {
		next_hop.nh_family = JNC_AF_INET6;
		/* After the lookup ipv6_dst holds the next hop (the gateway, or daddr itself). */
		jnc_addr6_copy(next_hop.ipv6_nh, params->ipv6_dst);
		return bpf_redirect_neigh(params->ifindex, &next_hop, sizeof(next_hop), 0);
	}
	return -1;
}

#endif /* JUNCTION_LIB_FIB6_H */
