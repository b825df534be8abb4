/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forwarding a packet the datapath rewrote on a node device straight out of the device the
 * kernel's routing table picks, without going up the stack: a packet whose source is not
 * one of the node's addresses' subnets would pass, but one whose source is the node's own
 * address (SNAT) would be a martian to the kernel's input path. Also skips a second pass
 * through the node's netfilter. The routing table still decides (bpf_fib_lookup), and the
 * neighbour table fills the MAC addresses (bpf_redirect_neigh when the next hop is not
 * resolved yet).
 */
#ifndef JUNCTION_LIB_FIB_H
#define JUNCTION_LIB_FIB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"

/* linux/socket.h's AF_INET needs the C library's headers. */
#define JNC_AF_INET 2

/* The route to `daddr` for a packet that came in on skb->ifindex: params filled (egress
 * ifindex, next hop in ipv4_dst, MACs when resolved); the bpf_fib_lookup verdict. */
static __always_inline int jnc_fib_route(struct __sk_buff *skb, struct bpf_fib_lookup *params,
					 __be32 saddr, __be32 daddr, __u8 proto)
{
	params->family = JNC_AF_INET;
	params->l4_protocol = proto;
	params->tot_len = (__u16)(skb->len - ETH_HLEN);
	params->ifindex = skb->ifindex;
	params->ipv4_src = saddr;
	params->ipv4_dst = daddr;
	return bpf_fib_lookup(skb, params, sizeof(*params), 0);
}

/*
 * Sends the (already rewritten) packet out of the route's device: with the route's MAC
 * addresses when the neighbour is known, else through the neighbour subsystem (which
 * resolves it, queueing the packet meanwhile). Returns TC_ACT_REDIRECT, or -1 when the
 * route gives no way out (no route, a blackhole, forwarding off): the caller drops and
 * counts JUNCTION_DROP_FIB_FAILED.
 */
static __always_inline int jnc_fib_redirect(struct __sk_buff *skb, struct bpf_fib_lookup *params,
					    int route)
{
	struct bpf_redir_neigh next_hop = {};

	if (route == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, params->dmac, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, params->smac, ETH_ALEN, 0) < 0)
			return -1;
		return bpf_redirect(params->ifindex, 0);
	}
	if (route == BPF_FIB_LKUP_RET_NO_NEIGH) {
		next_hop.nh_family = JNC_AF_INET;
		next_hop.ipv4_nh = params->ipv4_dst;
		return bpf_redirect_neigh(params->ifindex, &next_hop, sizeof(next_hop), 0);
	}
	return -1;
}

#endif /* JUNCTION_LIB_FIB_H */
