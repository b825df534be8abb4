/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP and ICMPv6 errors about a north-south SNAT connection, translated back on from_netdev:
 * the north-south half of icmp_error.h / icmp_error6.h (read them first). A client sent
 * client:cport -> frontend:nodeport; this node forwarded it as node:snatport -> backend:port
 * (netdev.c's forward_snat). An error about it (port unreachable for UDP, fragmentation needed
 * / Packet Too Big for TCP, time exceeded ...) from the backend or a router on the way quotes
 * node:snatport -> backend:port and is addressed to the node, whose kernel has no socket for
 * it: untranslated, the client's connected UDP socket never gets ECONNREFUSED and its TCP
 * never learns the path MTU. Here, as the REPLY entry of the quoted tuple (keyed
 * backend:port -> node:snatport, flagged JUNCTION_CT_F_SNAT, holding client:cport) and its
 * rev_nat_id say:
 *   - the quote becomes client:cport -> frontend:nodeport (what the client sent);
 *   - the outer destination becomes the client, the outer source the frontend when the
 *     backend itself sent it (a router keeps its address);
 *   - every checksum that covers a changed byte is fixed by icmp_error.h's rewrite (the
 *     quoted IPv4 header's, the quoted TCP/UDP's when quoted, ICMP's, the outer IPv4
 *     header's; ICMPv6's over its pseudo-header);
 *   - then it is forwarded toward the client as snat_reverse forwards the replies: routed by
 *     FIB from the frontend, TTL / hop limit decremented, out by bpf_redirect(_neigh). No
 *     route: dropped, counted FIB_FAILED (an error about an error is never sent); a
 *     rewrite failing half way: NAT_FAILED.
 * The conntrack entry's last_seen is not refreshed (an error is not traffic of the
 * connection). A local backend's error is to_netdev's (jnc_icmp_error_ns_local below).
 * Everything else (no SNAT entry, DSR or local connections, which do not come
 * back through here addressed to the node, an IPv6 error with extension headers) passes
 * untouched. Reached from from_netdev by a tail call (netdev.c), so from_netdev's frame is
 * not under it and from_netdev6's instruction count is unchanged.
 */
#ifndef JUNCTION_LIB_ICMP_ERROR_NS_H
#define JUNCTION_LIB_ICMP_ERROR_NS_H

#include <linux/pkt_cls.h>

#include "counters.h"
#include "fib.h"
#include "fib6.h"
#include "icmp_error.h"
#include "icmp_error6.h"

/* Whether the frame is IPv4 ICMP or IPv6 whose first header is ICMPv6: worth the tail call
 * (one byte read; the rest is judged there). */
static __always_inline int jnc_icmp_error_ns_candidate(struct __sk_buff *skb)
{
	__u8 proto;

	if (skb->protocol == bpf_htons(ETH_P_IP))
		return bpf_skb_load_bytes(skb, ETH_HLEN + 9, &proto, 1) == 0 &&
		       proto == IPPROTO_ICMP;
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return bpf_skb_load_bytes(skb, ETH_HLEN + 6, &proto, 1) == 0 &&
		       proto == JNC_NEXTHDR_ICMPV6;
	return 0;
}

/* An IPv4 error about an SNAT connection (see above). A tc verdict. Each family in a frame
 * of its own: together they would pass the 512 bytes of stack. */
static __noinline int jnc_icmp_error_ns4(struct __sk_buff *skb)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct junction_lb4_revnat_key revnat_key = {};
	struct bpf_fib_lookup route = {};
	struct junction_lb4_revnat *revnat;
	struct junction_ct4_entry *entry;
	struct junction_ct4_key key;
	struct jnc_icmp_error4 e;
	__be32 client, source;
	__be16 client_port;
	int verdict;

	if (jnc_icmp_error_load(skb, &e) < 0)
		return TC_ACT_OK;
	/* The quote went node:snatport -> backend:port; the error is addressed to the node. */
	key = jnc_icmp_error_reply_key(&e);
	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (!entry || !(entry->flags & JUNCTION_CT_F_SNAT) || e.outer.daddr != e.quote_ip.saddr)
		return TC_ACT_OK;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);
	if (!revnat)
		return TC_ACT_OK;
	client = entry->nat_address;
	client_port = entry->nat_port;
	source = e.outer.saddr == e.quote_ip.daddr ? revnat->address : e.outer.saddr;
	verdict = jnc_fib_route(skb, &route, source, client, IPPROTO_ICMP, skb->len - ETH_HLEN);
	if (verdict != BPF_FIB_LKUP_RET_SUCCESS && verdict != BPF_FIB_LKUP_RET_NO_NEIGH)
		return drop(skb, JUNCTION_DROP_FIB_FAILED, direction);
	if (jnc_icmp_error_rewrite(skb, &e, client, revnat->address, client_port, revnat->port,
				   source, client) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	verdict = jnc_fib_redirect(skb, &route, verdict);
	return verdict < 0 ? drop(skb, JUNCTION_DROP_FIB_FAILED, direction) : verdict;
}

/* The IPv6 twin. */
static __noinline int jnc_icmp_error_ns6(struct __sk_buff *skb)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct junction_lb4_revnat_key revnat_key = {};
	struct bpf_fib_lookup route = {};
	struct junction_lb6_revnat *revnat;
	struct junction_ct6_entry *entry;
	struct junction_ct6_key key;
	struct jnc_icmp6_error e;
	__be32 quote[8], outer[8];
	__be16 client_port;
	int verdict;

	if (jnc_icmp6_error_load(skb, &e) < 0)
		return TC_ACT_OK;
	key = jnc_icmp6_error_reply_key(&e);
	entry = bpf_map_lookup_elem(&jnc_ct6, &key);
	if (!entry || !(entry->flags & JUNCTION_CT_F_SNAT) ||
	    !jnc_addr6_equal(e.outer.daddr, e.quote_ip.saddr))
		return TC_ACT_OK;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb6_revnat, &revnat_key);
	if (!revnat)
		return TC_ACT_OK;
	/* quote: client -> frontend; outer: frontend (or the router) -> client. */
	jnc_addr6_copy(quote, entry->nat_address);
	jnc_addr6_copy(quote + 4, revnat->address);
	client_port = entry->nat_port;
	jnc_addr6_copy(outer, jnc_addr6_equal(e.outer.saddr, e.quote_ip.daddr) ? revnat->address
									       : e.outer.saddr);
	jnc_addr6_copy(outer + 4, quote);
	verdict = jnc_fib_route6(skb, &route, outer, quote, JNC_NEXTHDR_ICMPV6,
				 skb->len - ETH_HLEN);
	if (verdict != BPF_FIB_LKUP_RET_SUCCESS && verdict != BPF_FIB_LKUP_RET_NO_NEIGH)
		return drop(skb, JUNCTION_DROP_FIB_FAILED, direction);
	if (jnc_icmp6_error_rewrite(skb, &e, quote, client_port, revnat->port, outer) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	verdict = jnc_fib_redirect6(skb, &route, verdict);
	return verdict < 0 ? drop(skb, JUNCTION_DROP_FIB_FAILED, direction) : verdict;
}

/* On to_netdev, an error from a backend on this node about a north-south connection (a REPLY
 * entry flagged EXTERNAL alone: the client's address was kept, so the error leaves by the
 * device): the frontend back in the quote and, from the backend, as source, by the code
 * to_endpoint runs for east-west connections. Each family in a frame of its own, called
 * from to_netdev's root (not under jnc_to_netdev6's). A tc verdict. */
static __noinline int jnc_icmp_error_ns_local4(struct __sk_buff *skb)
{
	if (jnc_icmp_error_rev_nat(skb, JUNCTION_CT_F_EXTERNAL) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_NETDEV);
	return TC_ACT_OK;
}

static __noinline int jnc_icmp_error_ns_local6(struct __sk_buff *skb)
{
	if (jnc_icmp6_error_rev_nat(skb, JUNCTION_CT_F_EXTERNAL) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_NETDEV);
	return TC_ACT_OK;
}

static __always_inline int jnc_icmp_error_ns_local(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return jnc_icmp_error_ns_local6(skb);
	return jnc_icmp_error_ns_local4(skb);
}

/* from_netdev's tail call for ICMP and ICMPv6 (netdev.c). A tc verdict. */
static __always_inline int jnc_icmp_error_ns(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return jnc_icmp_error_ns6(skb);
	return jnc_icmp_error_ns4(skb);
}

#endif /* JUNCTION_LIB_ICMP_ERROR_NS_H */
