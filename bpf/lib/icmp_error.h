/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors about a translated service connection, translated back on to_endpoint (the
 * east-west reply path). A client sent client:cport -> VIP:port; from_endpoint made it
 * client:cport -> backend:targetPort. An error about that packet (destination/port
 * unreachable, time exceeded, parameter problem; fragmentation needed) from the backend or a
 * router quotes the translated packet and, from the backend, has the backend as source. The
 * client's kernel matches an error to a socket by the quoted tuple (icmp_unreach ->
 * __udp4_lib_err / tcp_v4_err look up the socket by the embedded addresses and ports), so
 * untranslated it is lost: a connected UDP socket never gets ECONNREFUSED, PMTU is not learned
 * for the VIP. Here the quote's destination goes back to VIP:port and an outer source that is
 * the backend to the VIP, as the REPLY conntrack entry of the quoted tuple says (the lookup
 * is the reply's own: backend:targetPort -> client:cport).
 *
 * Checksums, every one that covers a changed byte, recomputed incrementally in software from
 * the stored fields (csum_diff seeded with the old field) rather than with
 * bpf_l4_csum_replace: an ICMP error is never CHECKSUM_PARTIAL, and the helper leaves the
 * field alone for such skbs without BPF_F_PSEUDO_HDR. Each rewrite is sum-neutral over the
 * whole packet (a changed word and the checksum that covers it move by opposite amounts), so
 * a CHECKSUM_COMPLETE skb->csum stays right untouched.
 *   - the quoted IPv4 header's own checksum (the daddr changed);
 *   - the quoted L4 checksum: UDP's sits in the 8 bytes RFC 792 guarantees and is updated
 *     unless 0 ("none"); TCP's lies past them and is updated only when the quote holds the
 *     whole 20-byte header. This is what Linux's NAT does for errors it translates
 *     (nf_nat_icmp_reply_translation -> udp_manip_pkt / tcp_manip_pkt, which skips the TCP
 *     checksum of an 8-byte quote) and what Cilium's snat_v4_rev_nat_handle_icmp_error does.
 *     The receiving kernel never verifies a quoted L4 checksum (it only reads the ports),
 *     so a quote cut before it is no problem;
 *   - the ICMP checksum (over the ICMP message only: no pseudo-header in IPv4);
 *   - the outer IPv4 header checksum, when its source is rewritten.
 * What does not match (no conntrack entry, a north-south or hairpin entry, a fragment, an
 * error quoting something other than TCP/UDP, a quote too short for the ports) passes
 * untouched.
 */
#ifndef JUNCTION_LIB_ICMP_ERROR_H
#define JUNCTION_LIB_ICMP_ERROR_H

#include <linux/pkt_cls.h>

#include "icmp.h"
#include "lb4.h"
#include "maps.h"
#include "parse.h"

#define JNC_ICMP_TIME_EXCEEDED 11
#define JNC_ICMP_PARAMETERPROB 12

/* The 8 quoted L4 bytes (RFC 792): ports, then UDP's length and checksum or TCP's sequence. */
struct jnc_icmp_quote_l4 {
	__be16 sport;
	__be16 dport;
	__be16 udp_len;
	__sum16 udp_check;
};

/* TCP's checksum and urgent pointer (bytes 16..19), a 4-byte word for csum_diff. */
struct jnc_icmp_quote_tcp_tail {
	__sum16 check;
	__be16 urg_ptr;
};

/* Conntrack entries whose replies to_endpoint does not translate (north-south, hairpin). */
#define JNC_ICMP_ERROR_CT_SKIP (JUNCTION_CT_F_SNAT | JUNCTION_CT_F_DSR | JUNCTION_CT_F_EXTERNAL | \
				JUNCTION_CT_F_HAIRPIN)

/* The checksum `check` after the covered bytes went from `from` to `to` (`size` bytes, a
 * multiple of 4, starting at an even offset of the covered area): RFC 1624, ~(~HC + ~m + m').
 * Negative on a helper failure. */
static __always_inline __s64 jnc_csum_adjusted(__sum16 check, __be32 *from, __be32 *to,
					       __u32 size, __s64 seed)
{
	__u64 start = (__u64)(__u32)seed + (__u16)~check;

	/* End-around carry: the seed is a 32-bit one's complement partial sum. */
	start = (start & 0xffffffff) + (start >> 32);
	return bpf_csum_diff(from, size, to, size, (__u32)start);
}

/*
 * Translates an ICMP error about a service connection back for the client (see above).
 * Returns 0 (translated or left alone: the caller passes the packet either way), or a
 * negative errno from a helper after which the packet may be half rewritten (drop it).
 */
static __always_inline int jnc_icmp_error_rev_nat(struct __sk_buff *skb)
{
	struct junction_lb4_revnat_key revnat_key = {};
	struct jnc_icmp_quote_tcp_tail old_tail = {}, new_tail;
	struct jnc_icmp_quote_l4 old_l4, new_l4;
	struct junction_lb4_revnat *revnat;
	struct junction_ct4_entry *entry;
	struct junction_ct4_key key;
	struct iphdr outer, old_ip, new_ip;
	struct jnc_icmphdr icmp;
	__u32 icmp_off, inner_off, inner_l4_off;
	int has_tail;
	__be16 eth_proto;
	__s64 sum;

	if (bpf_skb_load_bytes(skb, 12, &eth_proto, sizeof(eth_proto)) < 0 ||
	    eth_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &outer, sizeof(outer)) < 0)
		return 0;
	if (outer.version != 4 || outer.ihl < 5 || outer.protocol != IPPROTO_ICMP ||
	    (outer.frag_off & bpf_htons(JNC_IP_MF | JNC_IP_OFFSET)))
		return 0;
	icmp_off = ETH_HLEN + outer.ihl * 4;
	if (bpf_skb_load_bytes(skb, icmp_off, &icmp, sizeof(icmp)) < 0)
		return 0;
	if (icmp.type != JNC_ICMP_DEST_UNREACH && icmp.type != JNC_ICMP_TIME_EXCEEDED &&
	    icmp.type != JNC_ICMP_PARAMETERPROB)
		return 0;
	inner_off = icmp_off + sizeof(icmp);
	if (bpf_skb_load_bytes(skb, inner_off, &old_ip, sizeof(old_ip)) < 0)
		return 0;
	/* A quoted non-first fragment has no ports to match. */
	if (old_ip.version != 4 || old_ip.ihl < 5 ||
	    (old_ip.protocol != IPPROTO_TCP && old_ip.protocol != IPPROTO_UDP) ||
	    (old_ip.frag_off & bpf_htons(JNC_IP_OFFSET)))
		return 0;
	inner_l4_off = inner_off + old_ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, inner_l4_off, &old_l4, sizeof(old_l4)) < 0)
		return 0;

	/* The quoted packet went client -> backend: its reply's key is backend -> client. */
	key = ct_key(old_ip.daddr, old_ip.saddr, old_l4.dport, old_l4.sport, old_ip.protocol,
		     JUNCTION_CT_REPLY);
	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (!entry || (entry->flags & JNC_ICMP_ERROR_CT_SKIP))
		return 0;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);
	if (!revnat)
		return 0;

	new_ip = old_ip;
	new_ip.daddr = revnat->address;
	sum = jnc_csum_adjusted(old_ip.check, &old_ip.daddr, &new_ip.daddr, 4, 0);
	if (sum < 0)
		return sum;
	new_ip.check = jnc_csum_fold(sum);

	new_l4 = old_l4;
	new_l4.dport = revnat->port;
	has_tail = old_ip.protocol == IPPROTO_TCP &&
		   bpf_skb_load_bytes(skb, inner_l4_off + 16, &old_tail, sizeof(old_tail)) == 0;
	new_tail = old_tail;
	if (old_ip.protocol == IPPROTO_UDP && old_l4.udp_check) {
		/* The pseudo-header's daddr and the ports word changed. */
		sum = bpf_csum_diff(&old_ip.daddr, 4, &new_ip.daddr, 4, 0);
		if (sum < 0)
			return sum;
		sum = jnc_csum_adjusted(old_l4.udp_check, (__be32 *)&old_l4, (__be32 *)&new_l4, 4, sum);
		if (sum < 0)
			return sum;
		new_l4.udp_check = jnc_csum_fold(sum);
		if (!new_l4.udp_check)
			new_l4.udp_check = 0xffff; /* 0 would mean "no checksum" */
	} else if (has_tail) {
		sum = bpf_csum_diff(&old_ip.daddr, 4, &new_ip.daddr, 4, 0);
		if (sum < 0)
			return sum;
		sum = jnc_csum_adjusted(old_tail.check, (__be32 *)&old_l4, (__be32 *)&new_l4, 4, sum);
		if (sum < 0)
			return sum;
		new_tail.check = jnc_csum_fold(sum);
	}

	/* The ICMP checksum covers the quote: its IP header, its 8 L4 bytes, TCP's tail. */
	sum = bpf_csum_diff((__be32 *)&old_l4, sizeof(old_l4), (__be32 *)&new_l4, sizeof(new_l4),
			    0);
	if (sum < 0)
		return sum;
	if (has_tail) {
		sum = bpf_csum_diff((__be32 *)&old_tail, sizeof(old_tail), (__be32 *)&new_tail,
				    sizeof(new_tail), sum);
		if (sum < 0)
			return sum;
	}
	sum = jnc_csum_adjusted(icmp.checksum, (__be32 *)&old_ip, (__be32 *)&new_ip,
				sizeof(old_ip), sum);
	if (sum < 0)
		return sum;
	icmp.checksum = jnc_csum_fold(sum);

	if (bpf_skb_store_bytes(skb, inner_off, &new_ip, sizeof(new_ip), 0) < 0 ||
	    bpf_skb_store_bytes(skb, inner_l4_off, &new_l4, sizeof(new_l4), 0) < 0 ||
	    (has_tail &&
	     bpf_skb_store_bytes(skb, inner_l4_off + 16, &new_tail, sizeof(new_tail), 0) < 0) ||
	    bpf_skb_store_bytes(skb, icmp_off + 2, &icmp.checksum, sizeof(icmp.checksum), 0) < 0)
		return -1;

	/* From the backend itself (not a router on the way): from the VIP, as its replies. */
	if (outer.saddr == old_ip.daddr) {
		__be32 vip = revnat->address;

		sum = jnc_csum_adjusted(outer.check, &outer.saddr, &vip, 4, 0);
		if (sum < 0)
			return sum;
		outer.check = jnc_csum_fold(sum);
		if (bpf_skb_store_bytes(skb, JNC_IPV4_CSUM_OFF, &outer.check, sizeof(outer.check),
					0) < 0 ||
		    bpf_skb_store_bytes(skb, JNC_IPV4_SADDR_OFF, &vip, sizeof(vip), 0) < 0)
			return -1;
	}
	return 0;
}

#endif /* JUNCTION_LIB_ICMP_ERROR_H */
