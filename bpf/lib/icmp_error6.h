/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMPv6 errors about a translated IPv6 service connection, translated back on to_endpoint:
 * the twin of icmp_error.h (read it first). Destination Unreachable, Packet Too Big (so the
 * client learns the path MTU for the VIP, RFC 8201), Time Exceeded and Parameter Problem
 * (RFC 4443 §3) whose quoted packet is a connection in jnc_ct6 get the quote's destination
 * back to VIP:port and, when the backend sent them, the VIP as source.
 *
 * Checksums: IPv6 has no header checksum. The quoted UDP checksum (mandatory over IPv6) is
 * updated, TCP's when the quote holds the whole header (as Linux's NAT and Cilium do; the
 * receiver never verifies it). The ICMPv6 checksum covers the message and the pseudo-header
 * (RFC 4443 §2.3), so a rewritten outer source changes it too. As in icmp_error.h every
 * change is computed in software and is sum-neutral over the packet.
 *
 * Only an error whose outer header is followed directly by ICMPv6, quoting an IPv6 header
 * followed directly by TCP or UDP, is looked at (errors about connections with extension
 * headers pass untouched, as does everything unmatched, Neighbor Discovery and a Packet Too
 * Big about untranslated traffic included).
 */
#ifndef JUNCTION_LIB_ICMP_ERROR6_H
#define JUNCTION_LIB_ICMP_ERROR6_H

#include <linux/pkt_cls.h>

#include "icmp6.h"
#include "icmp_error.h"
#include "lb6.h"
#include "maps.h"
#include "parse6.h"

#define JNC_ICMP6_TIME_EXCEEDED 3
#define JNC_ICMP6_PARAMPROB 4

/* An ICMPv6 error as loaded (icmp_error.h's jnc_icmp_error4): the offsets are fixed, the
 * outer header followed directly by ICMPv6, the quoted one directly by TCP/UDP. */
#define JNC_ICMP6_ERROR_ICMP_OFF (ETH_HLEN + JNC_IPV6_HLEN)
#define JNC_ICMP6_ERROR_INNER_OFF (JNC_ICMP6_ERROR_ICMP_OFF + sizeof(struct jnc_icmphdr))
#define JNC_ICMP6_ERROR_INNER_L4_OFF (JNC_ICMP6_ERROR_INNER_OFF + JNC_IPV6_HLEN)

struct jnc_icmp6_error {
	struct jnc_ipv6hdr outer;
	struct jnc_ipv6hdr quote_ip;
	struct jnc_icmp_quote_l4 quote_l4;
	struct jnc_icmphdr icmp;
};

/* Loads an ICMPv6 error (destination unreachable, Packet Too Big, time exceeded, parameter
 * problem) quoting a TCP/UDP packet with its ports: 0, else -1. */
static __always_inline int jnc_icmp6_error_load(struct __sk_buff *skb, struct jnc_icmp6_error *e)
{
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &e->outer, sizeof(e->outer)) < 0)
		return -1;
	if ((e->outer.version_class >> 4) != 6 || e->outer.nexthdr != JNC_NEXTHDR_ICMPV6)
		return -1;
	if (bpf_skb_load_bytes(skb, JNC_ICMP6_ERROR_ICMP_OFF, &e->icmp, sizeof(e->icmp)) < 0)
		return -1;
	if (e->icmp.type != JNC_ICMP6_DEST_UNREACH && e->icmp.type != JNC_ICMP6_PACKET_TOO_BIG &&
	    e->icmp.type != JNC_ICMP6_TIME_EXCEEDED && e->icmp.type != JNC_ICMP6_PARAMPROB)
		return -1;
	if (bpf_skb_load_bytes(skb, JNC_ICMP6_ERROR_INNER_OFF, &e->quote_ip, sizeof(e->quote_ip)) <
	    0)
		return -1;
	if ((e->quote_ip.version_class >> 4) != 6 ||
	    (e->quote_ip.nexthdr != IPPROTO_TCP && e->quote_ip.nexthdr != IPPROTO_UDP))
		return -1;
	if (bpf_skb_load_bytes(skb, JNC_ICMP6_ERROR_INNER_L4_OFF, &e->quote_l4,
			       sizeof(e->quote_l4)) < 0)
		return -1;
	return 0;
}

/*
 * Rewrites the loaded error `e`: the quote's addresses to `quote_addrs` (saddr then daddr,
 * 8 words) and its ports to sport -> dport, the outer addresses to `outer_addrs` (likewise),
 * the quoted TCP/UDP checksum (when quoted, icmp_error.h's rule) and the ICMPv6 one (its
 * pseudo-header holds the outer addresses) fixed. 0, or a negative errno (drop the packet).
 */
static __always_inline int jnc_icmp6_error_rewrite(struct __sk_buff *skb,
						   struct jnc_icmp6_error *e,
						   __be32 *quote_addrs, __be16 sport, __be16 dport,
						   __be32 *outer_addrs)
{
	struct jnc_icmp_quote_l4 new_l4 = e->quote_l4;
	__s64 sum, pseudo;

	new_l4.sport = sport;
	new_l4.dport = dport;
	/* The quoted TCP/UDP pseudo-header: the quote's addresses (a zero UDP checksum is
	 * invalid over IPv6 and stays so). */
	pseudo = bpf_csum_diff(e->quote_ip.saddr, 32, quote_addrs, 32, 0);
	if (pseudo < 0)
		return pseudo;
	/* The ICMPv6 checksum: the quote's 8 L4 bytes and TCP's tail, its addresses, and the
	 * pseudo-header's (the outer) addresses. */
	sum = jnc_icmp_quote_l4_rewrite(skb, JNC_ICMP6_ERROR_INNER_L4_OFF, e->quote_ip.nexthdr,
					pseudo, &e->quote_l4, &new_l4, (__u16)~e->icmp.checksum);
	if (sum < 0)
		return sum;
	sum = bpf_csum_diff(e->quote_ip.saddr, 32, quote_addrs, 32, sum);
	if (sum < 0)
		return sum;
	sum = bpf_csum_diff(e->outer.saddr, 32, outer_addrs, 32, sum);
	if (sum < 0)
		return sum;
	e->icmp.checksum = jnc_csum_fold(sum);

	if (bpf_skb_store_bytes(skb, JNC_IPV6_SADDR_OFF, outer_addrs, 32, 0) < 0 ||
	    bpf_skb_store_bytes(skb, JNC_ICMP6_ERROR_INNER_OFF + 8, quote_addrs, 32, 0) < 0 ||
	    bpf_skb_store_bytes(skb, JNC_ICMP6_ERROR_ICMP_OFF + 2, &e->icmp.checksum,
				sizeof(e->icmp.checksum), 0) < 0)
		return -1;
	return 0;
}

/* The REPLY conntrack key of the quoted packet's connection (icmp_error.h's twin). */
static __always_inline struct junction_ct6_key jnc_icmp6_error_reply_key(const struct jnc_icmp6_error *e)
{
	return ct6_key(e->quote_ip.daddr, e->quote_ip.saddr, e->quote_l4.dport, e->quote_l4.sport,
		       e->quote_ip.nexthdr, JUNCTION_CT_REPLY);
}

/*
 * Translates an ICMPv6 error about an IPv6 service connection back for the client (`kind`
 * as icmp_error.h's jnc_icmp_error_rev_nat). 0
 * (translated or left alone), or a negative errno from a helper (drop the packet).
 */
static __always_inline int jnc_icmp6_error_rev_nat(struct __sk_buff *skb, __u16 kind)
{
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb6_revnat *revnat;
	struct junction_ct6_entry *entry;
	struct junction_ct6_key key;
	struct jnc_icmp6_error e;
	__be32 quote[8], outer[8];

	if (jnc_icmp6_error_load(skb, &e) < 0)
		return 0;
	key = jnc_icmp6_error_reply_key(&e);
	entry = bpf_map_lookup_elem(&jnc_ct6, &key);
	if (!entry || (entry->flags & JNC_ICMP_ERROR_CT_SKIP) != kind)
		return 0;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb6_revnat, &revnat_key);
	if (!revnat)
		return 0;
	/* The quote's destination, and the source when the backend itself sent it: the VIP. */
	jnc_addr6_copy(quote, e.quote_ip.saddr);
	jnc_addr6_copy(quote + 4, revnat->address);
	jnc_addr6_copy(outer, jnc_addr6_equal(e.outer.saddr, e.quote_ip.daddr) ? revnat->address
									       : e.outer.saddr);
	jnc_addr6_copy(outer + 4, e.outer.daddr);
	return jnc_icmp6_error_rewrite(skb, &e, quote, e.quote_l4.sport, revnat->port, outer);
}

#endif /* JUNCTION_LIB_ICMP_ERROR6_H */
