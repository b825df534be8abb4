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

/*
 * Translates an ICMPv6 error about an IPv6 service connection back for the client. 0
 * (translated or left alone), or a negative errno from a helper (drop the packet).
 */
static __always_inline int jnc_icmp6_error_rev_nat(struct __sk_buff *skb)
{
	const __u32 icmp_off = ETH_HLEN + JNC_IPV6_HLEN;
	const __u32 inner_off = icmp_off + sizeof(struct jnc_icmphdr);
	const __u32 inner_l4_off = inner_off + JNC_IPV6_HLEN;
	struct jnc_icmp_quote_tcp_tail old_tail = {}, new_tail;
	struct junction_lb4_revnat_key revnat_key = {};
	struct jnc_icmp_quote_l4 old_l4, new_l4;
	struct junction_lb6_revnat *revnat;
	struct junction_ct6_entry *entry;
	struct junction_ct6_key key;
	struct jnc_ipv6hdr outer, old_ip, new_ip;
	struct jnc_icmphdr icmp;
	int has_tail;
	__s64 sum;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &outer, sizeof(outer)) < 0)
		return 0;
	if ((outer.version_class >> 4) != 6 || outer.nexthdr != JNC_NEXTHDR_ICMPV6)
		return 0;
	if (bpf_skb_load_bytes(skb, icmp_off, &icmp, sizeof(icmp)) < 0)
		return 0;
	if (icmp.type != JNC_ICMP6_DEST_UNREACH && icmp.type != JNC_ICMP6_PACKET_TOO_BIG &&
	    icmp.type != JNC_ICMP6_TIME_EXCEEDED && icmp.type != JNC_ICMP6_PARAMPROB)
		return 0;
	if (bpf_skb_load_bytes(skb, inner_off, &old_ip, sizeof(old_ip)) < 0)
		return 0;
	if ((old_ip.version_class >> 4) != 6 ||
	    (old_ip.nexthdr != IPPROTO_TCP && old_ip.nexthdr != IPPROTO_UDP))
		return 0;
	if (bpf_skb_load_bytes(skb, inner_l4_off, &old_l4, sizeof(old_l4)) < 0)
		return 0;

	key = ct6_key(old_ip.daddr, old_ip.saddr, old_l4.dport, old_l4.sport, old_ip.nexthdr,
		      JUNCTION_CT_REPLY);
	entry = bpf_map_lookup_elem(&jnc_ct6, &key);
	if (!entry || (entry->flags & JNC_ICMP_ERROR_CT_SKIP))
		return 0;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb6_revnat, &revnat_key);
	if (!revnat)
		return 0;

	new_ip = old_ip;
	jnc_addr6_copy(new_ip.daddr, revnat->address);
	new_l4 = old_l4;
	new_l4.dport = revnat->port;
	has_tail = old_ip.nexthdr == IPPROTO_TCP &&
		   bpf_skb_load_bytes(skb, inner_l4_off + 16, &old_tail, sizeof(old_tail)) == 0;
	new_tail = old_tail;
	if (old_ip.nexthdr == IPPROTO_UDP || has_tail) {
		__sum16 old_check = old_ip.nexthdr == IPPROTO_UDP ? old_l4.udp_check : old_tail.check;
		__sum16 new_check;

		/* The pseudo-header's daddr and the ports word changed. */
		sum = bpf_csum_diff(old_ip.daddr, sizeof(old_ip.daddr), new_ip.daddr,
				    sizeof(new_ip.daddr), 0);
		if (sum < 0)
			return sum;
		sum = jnc_csum_adjusted(old_check, (__be32 *)&old_l4, (__be32 *)&new_l4, 4, sum);
		if (sum < 0)
			return sum;
		new_check = jnc_csum_fold(sum);
		if (old_ip.nexthdr == IPPROTO_UDP)
			new_l4.udp_check = new_check ? new_check : 0xffff;
		else
			new_tail.check = new_check;
	}

	/* The ICMPv6 checksum: the quote's header, its 8 L4 bytes, TCP's tail ... */
	sum = bpf_csum_diff((__be32 *)&old_l4, sizeof(old_l4), (__be32 *)&new_l4, sizeof(new_l4),
			    (__u16)~icmp.checksum);
	if (sum < 0)
		return sum;
	if (has_tail) {
		sum = bpf_csum_diff((__be32 *)&old_tail, sizeof(old_tail), (__be32 *)&new_tail,
				    sizeof(new_tail), sum);
		if (sum < 0)
			return sum;
	}
	sum = bpf_csum_diff(old_ip.daddr, sizeof(old_ip.daddr), new_ip.daddr, sizeof(new_ip.daddr),
			    sum);
	if (sum < 0)
		return sum;
	/* ... and the pseudo-header's source: from the backend itself, the VIP instead. */
	if (jnc_addr6_equal(outer.saddr, old_ip.daddr)) {
		sum = bpf_csum_diff(outer.saddr, sizeof(outer.saddr), new_ip.daddr,
				    sizeof(new_ip.daddr), sum);
		if (sum < 0)
			return sum;
		if (bpf_skb_store_bytes(skb, JNC_IPV6_SADDR_OFF, new_ip.daddr, sizeof(new_ip.daddr),
					0) < 0)
			return -1;
	}
	icmp.checksum = jnc_csum_fold(sum);

	if (bpf_skb_store_bytes(skb, inner_off + 24, new_ip.daddr, sizeof(new_ip.daddr), 0) < 0 ||
	    bpf_skb_store_bytes(skb, inner_l4_off, &new_l4, sizeof(new_l4), 0) < 0 ||
	    (has_tail &&
	     bpf_skb_store_bytes(skb, inner_l4_off + 16, &new_tail, sizeof(new_tail), 0) < 0) ||
	    bpf_skb_store_bytes(skb, icmp_off + 2, &icmp.checksum, sizeof(icmp.checksum), 0) < 0)
		return -1;
	return 0;
}

#endif /* JUNCTION_LIB_ICMP_ERROR6_H */
