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

/* Conntrack entries whose replies to_endpoint does not translate (north-south, hairpin); an
 * error about a local north-south connection (EXTERNAL alone) is to_netdev's. */
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

/* An ICMP error as loaded: the outer IPv4 header, the ICMP header, the quoted IPv4 header
 * (its first 20 bytes) and the quote's first 8 L4 bytes, with the offsets of the last three. */
struct jnc_icmp_error4 {
	struct iphdr outer;
	struct iphdr quote_ip;
	struct jnc_icmp_quote_l4 quote_l4;
	struct jnc_icmphdr icmp;
	__u32 icmp_off;
	__u32 inner_off;
	__u32 inner_l4_off;
};

/* Loads an unfragmented IPv4 ICMP error (destination unreachable, time exceeded, parameter
 * problem) quoting the first fragment of a TCP/UDP packet with its ports: 0, else -1. */
static __always_inline int jnc_icmp_error_load(struct __sk_buff *skb, struct jnc_icmp_error4 *e)
{
	__be16 eth_proto;

	if (bpf_skb_load_bytes(skb, 12, &eth_proto, sizeof(eth_proto)) < 0 ||
	    eth_proto != bpf_htons(ETH_P_IP))
		return -1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &e->outer, sizeof(e->outer)) < 0)
		return -1;
	if (e->outer.version != 4 || e->outer.ihl < 5 || e->outer.protocol != IPPROTO_ICMP ||
	    (e->outer.frag_off & bpf_htons(JNC_IP_MF | JNC_IP_OFFSET)))
		return -1;
	e->icmp_off = ETH_HLEN + e->outer.ihl * 4;
	if (bpf_skb_load_bytes(skb, e->icmp_off, &e->icmp, sizeof(e->icmp)) < 0)
		return -1;
	if (e->icmp.type != JNC_ICMP_DEST_UNREACH && e->icmp.type != JNC_ICMP_TIME_EXCEEDED &&
	    e->icmp.type != JNC_ICMP_PARAMETERPROB)
		return -1;
	e->inner_off = e->icmp_off + sizeof(e->icmp);
	if (bpf_skb_load_bytes(skb, e->inner_off, &e->quote_ip, sizeof(e->quote_ip)) < 0)
		return -1;
	/* A quoted non-first fragment has no ports to match. */
	if (e->quote_ip.version != 4 || e->quote_ip.ihl < 5 ||
	    (e->quote_ip.protocol != IPPROTO_TCP && e->quote_ip.protocol != IPPROTO_UDP) ||
	    (e->quote_ip.frag_off & bpf_htons(JNC_IP_OFFSET)))
		return -1;
	e->inner_l4_off = e->inner_off + e->quote_ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, e->inner_l4_off, &e->quote_l4, sizeof(e->quote_l4)) < 0)
		return -1;
	return 0;
}

/* The REPLY conntrack key of the quoted packet's connection: the quote went out as the
 * request (a -> b), so its reply's key is b -> a. */
static __always_inline struct junction_ct4_key jnc_icmp_error_reply_key(const struct jnc_icmp_error4 *e)
{
	return ct_key(e->quote_ip.daddr, e->quote_ip.saddr, e->quote_l4.dport, e->quote_l4.sport,
		      e->quote_ip.protocol, JUNCTION_CT_REPLY);
}

/*
 * The quote's L4 part at `l4_off` rewritten to the ports of `new_l4` (its other bytes as
 * `old_l4`'s), its checksum fixed when quoted (UDP's unless 0, "none"; TCP's when the quote
 * holds the whole header), given `pseudo`, the csum_diff of the pseudo-header's changed
 * addresses. Returns the csum_diff of the quoted L4 bytes seeded with `seed` (the ICMP
 * checksum covers them), or a negative errno (drop the packet). Both families.
 */
static __always_inline __s64 jnc_icmp_quote_l4_rewrite(struct __sk_buff *skb, __u32 l4_off,
						       __u8 proto, __s64 pseudo,
						       struct jnc_icmp_quote_l4 *old_l4,
						       struct jnc_icmp_quote_l4 *new_l4, __s64 seed)
{
	struct jnc_icmp_quote_tcp_tail old_tail = {}, new_tail;
	int has_tail = proto == IPPROTO_TCP &&
		       bpf_skb_load_bytes(skb, l4_off + 16, &old_tail, sizeof(old_tail)) == 0;
	__s64 sum;

	new_tail = old_tail;
	if ((proto == IPPROTO_UDP && old_l4->udp_check) || has_tail) {
		__sum16 old_check = proto == IPPROTO_UDP ? old_l4->udp_check : old_tail.check;
		__sum16 new_check;

		/* The pseudo-header's addresses and the ports word changed. */
		sum = jnc_csum_adjusted(old_check, (__be32 *)old_l4, (__be32 *)new_l4, 4, pseudo);
		if (sum < 0)
			return sum;
		new_check = jnc_csum_fold(sum);
		if (proto == IPPROTO_UDP)
			new_l4->udp_check = new_check ? new_check : 0xffff; /* 0: "no checksum" */
		else
			new_tail.check = new_check;
	}
	sum = bpf_csum_diff((__be32 *)old_l4, sizeof(*old_l4), (__be32 *)new_l4, sizeof(*new_l4),
			    (__u32)seed);
	if (sum < 0)
		return sum;
	if (has_tail) {
		sum = bpf_csum_diff((__be32 *)&old_tail, sizeof(old_tail), (__be32 *)&new_tail,
				    sizeof(new_tail), sum);
		if (sum < 0)
			return sum;
	}
	if (bpf_skb_store_bytes(skb, l4_off, new_l4, sizeof(*new_l4), 0) < 0 ||
	    (has_tail && bpf_skb_store_bytes(skb, l4_off + 16, &new_tail, sizeof(new_tail), 0) < 0))
		return -1;
	return sum;
}

/*
 * Rewrites the loaded error `e`: the quote to saddr:sport -> daddr:dport, the outer header to
 * outer_saddr -> outer_daddr, every checksum that covers a changed byte fixed (see above).
 * 0, or a negative errno after which the packet may be half rewritten (drop it).
 */
static __always_inline int jnc_icmp_error_rewrite(struct __sk_buff *skb,
						  struct jnc_icmp_error4 *e, __be32 saddr,
						  __be32 daddr, __be16 sport, __be16 dport,
						  __be32 outer_saddr, __be32 outer_daddr)
{
	struct jnc_icmp_quote_l4 new_l4 = e->quote_l4;
	struct iphdr new_ip = e->quote_ip;
	__s64 sum;

	new_ip.saddr = saddr;
	new_ip.daddr = daddr;
	sum = jnc_csum_adjusted(e->quote_ip.check, &e->quote_ip.saddr, &new_ip.saddr, 8, 0);
	if (sum < 0)
		return sum;
	new_ip.check = jnc_csum_fold(sum);

	new_l4.sport = sport;
	new_l4.dport = dport;
	sum = bpf_csum_diff(&e->quote_ip.saddr, 8, &new_ip.saddr, 8, 0);
	if (sum < 0)
		return sum;
	sum = jnc_icmp_quote_l4_rewrite(skb, e->inner_l4_off, e->quote_ip.protocol, sum,
					&e->quote_l4, &new_l4, 0);
	if (sum < 0)
		return sum;
	/* The ICMP checksum covers the quote: its IP header too. */
	sum = jnc_csum_adjusted(e->icmp.checksum, (__be32 *)&e->quote_ip, (__be32 *)&new_ip,
				sizeof(new_ip), sum);
	if (sum < 0)
		return sum;
	e->icmp.checksum = jnc_csum_fold(sum);
	if (bpf_skb_store_bytes(skb, e->inner_off, &new_ip, sizeof(new_ip), 0) < 0 ||
	    bpf_skb_store_bytes(skb, e->icmp_off + 2, &e->icmp.checksum, sizeof(e->icmp.checksum),
				0) < 0)
		return -1;

	/* The outer header (no ICMP pseudo-header in IPv4: only its own checksum). */
	if (outer_saddr == e->outer.saddr && outer_daddr == e->outer.daddr)
		return 0;
	new_ip = e->outer;
	new_ip.saddr = outer_saddr;
	new_ip.daddr = outer_daddr;
	sum = jnc_csum_adjusted(e->outer.check, &e->outer.saddr, &new_ip.saddr, 8, 0);
	if (sum < 0)
		return sum;
	new_ip.check = jnc_csum_fold(sum);
	return bpf_skb_store_bytes(skb, ETH_HLEN, &new_ip, sizeof(new_ip), 0) < 0 ? -1 : 0;
}

/*
 * Translates an ICMP error about a service connection back for the client (see above):
 * `kind` 0 for an east-west connection (to_endpoint), JUNCTION_CT_F_EXTERNAL for a
 * north-south one to a backend on this node (to_netdev: the client's address was kept, so
 * the error leaves the node by the device, from the backend, the frontend being the VIP).
 * Returns 0 (translated or left alone: the caller passes the packet either way), or a
 * negative errno from a helper after which the packet may be half rewritten (drop it).
 */
static __always_inline int jnc_icmp_error_rev_nat(struct __sk_buff *skb, __u16 kind)
{
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb4_revnat *revnat;
	struct junction_ct4_entry *entry;
	struct junction_ct4_key key;
	struct jnc_icmp_error4 e;

	if (jnc_icmp_error_load(skb, &e) < 0)
		return 0;
	/* The quoted packet went client -> backend: its reply's key is backend -> client. */
	key = jnc_icmp_error_reply_key(&e);
	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (!entry || (entry->flags & JNC_ICMP_ERROR_CT_SKIP) != kind)
		return 0;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);
	if (!revnat)
		return 0;
	/* From the backend itself (not a router on the way): from the VIP, as its replies. */
	return jnc_icmp_error_rewrite(
		skb, &e, e.quote_ip.saddr, revnat->address, e.quote_l4.sport, revnat->port,
		e.outer.saddr == e.quote_ip.daddr ? revnat->address : e.outer.saddr, e.outer.daddr);
}

#endif /* JUNCTION_LIB_ICMP_ERROR_H */
