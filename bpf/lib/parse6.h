/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6/TCP/UDP parsing for the service datapath, the twin of parse.h: headers copied with
 * bpf_skb_load_bytes (every bound is the helper's check against skb->len), extension headers
 * walked up to JNC_IPV6_MAX_EXTHDRS (a bounded loop, as Cilium's ipv6_hdrlen_offset).
 *
 * What passes untouched: ICMPv6 (Neighbor Discovery must keep its hop limit 255 and its
 * addresses, and Packet Too Big must reach the sender: nothing here rewrites either), any
 * fragment (as IPv4: only the first carries the ports), NEXTHDR_NONE and other protocols.
 */
#ifndef JUNCTION_LIB_PARSE6_H
#define JUNCTION_LIB_PARSE6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"

/* Next-header values (RFC 8200, IANA); linux/ipv6.h's NEXTHDR_* are kernel-internal. */
#define JNC_NEXTHDR_HOP 0
#define JNC_NEXTHDR_ROUTING 43
#define JNC_NEXTHDR_FRAGMENT 44
#define JNC_NEXTHDR_AUTH 51
#define JNC_NEXTHDR_ICMPV6 58
#define JNC_NEXTHDR_NONE 59
#define JNC_NEXTHDR_DEST 60

/* Cilium's IPV6_MAX_HEADERS: a longer chain is dropped (JUNCTION_DROP_INVALID_EXTHDR). */
#define JNC_IPV6_MAX_EXTHDRS 4
#define JNC_IPV6_HLEN 40

#define JNC_IPV6_SADDR_OFF (ETH_HLEN + 8)
#define JNC_IPV6_DADDR_OFF (ETH_HLEN + 24)

/* The walk hit an extension header it could not read, or more than it walks. */
#define JNC_PARSE_INVALID_EXTHDR 3

struct jnc_ipv6hdr {
	__u8 version_class; /* version (4 bits), then the traffic class's high bits */
	__u8 class_flow[3];
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__be32 saddr[4];
	__be32 daddr[4];
};

struct jnc_packet6 {
	__u32 l4_off; /* from the start of the frame, past the extension headers */
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags; /* TCP only */
	__u16 pad;
};

static __always_inline int jnc_addr6_equal(const __be32 *a, const __be32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static __always_inline void jnc_addr6_copy(__be32 *to, const __be32 *from)
{
	to[0] = from[0];
	to[1] = from[1];
	to[2] = from[2];
	to[3] = from[3];
}

/*
 * JNC_PARSE_OK with `packet` filled for an unfragmented IPv6 TCP or UDP packet; PASS for
 * anything not ours to translate; INVALID for a header shorter than it claims (or not
 * version 6); JNC_PARSE_INVALID_EXTHDR for an extension header chain that is cut short or
 * longer than JNC_IPV6_MAX_EXTHDRS. The caller has checked the EtherType.
 */
static __always_inline int jnc_parse_ipv6(struct __sk_buff *skb, struct jnc_packet6 *packet)
{
	struct jnc_ipv6hdr ip;
	__u32 payload_len;
	__u32 off = ETH_HLEN + JNC_IPV6_HLEN;
	__u8 nexthdr;
	__u32 l4_len;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return JNC_PARSE_INVALID;
	if ((ip.version_class >> 4) != 6)
		return JNC_PARSE_INVALID;
	/* 0 is a jumbogram or a BIG TCP GSO skb (the length is the skb's): not a short packet. */
	payload_len = bpf_ntohs(ip.payload_len);
	if (payload_len && off + payload_len > skb->len)
		return JNC_PARSE_INVALID;
	nexthdr = ip.nexthdr;

#pragma unroll
	for (int i = 0; i < JNC_IPV6_MAX_EXTHDRS; i++) {
		__u8 ext[2]; /* next header, header extension length */

		switch (nexthdr) {
		case JNC_NEXTHDR_HOP:
		case JNC_NEXTHDR_ROUTING:
		case JNC_NEXTHDR_DEST:
		case JNC_NEXTHDR_AUTH:
			if (bpf_skb_load_bytes(skb, off, ext, sizeof(ext)) < 0)
				return JNC_PARSE_INVALID_EXTHDR;
			/* AUTH counts 4-byte units less 2 (RFC 4302), the others 8-byte units less 1. */
			off += nexthdr == JNC_NEXTHDR_AUTH ? ((__u32)ext[1] + 2) * 4
							   : ((__u32)ext[1] + 1) * 8;
			nexthdr = ext[0];
			break;
		case JNC_NEXTHDR_FRAGMENT:
			return JNC_PARSE_PASS;
		default:
			goto upper;
		}
	}
	/* Still an extension header after the walk: a chain longer than we follow. */
	switch (nexthdr) {
	case JNC_NEXTHDR_HOP:
	case JNC_NEXTHDR_ROUTING:
	case JNC_NEXTHDR_DEST:
	case JNC_NEXTHDR_AUTH:
		return JNC_PARSE_INVALID_EXTHDR;
	case JNC_NEXTHDR_FRAGMENT:
		return JNC_PARSE_PASS;
	}
upper:
	if (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP)
		return JNC_PARSE_PASS; /* ICMPv6 (ND, Packet Too Big, echo), NONE, the rest */
	/* The extension headers must leave room inside the packet. */
	if (off > skb->len)
		return JNC_PARSE_INVALID_EXTHDR;
	packet->l4_off = off;
	jnc_addr6_copy(packet->saddr, ip.saddr);
	jnc_addr6_copy(packet->daddr, ip.daddr);
	packet->proto = nexthdr;
	packet->tcp_flags = 0;
	/* The whole fixed L4 header must be there: the checksum fix-up writes into it. */
	l4_len = nexthdr == IPPROTO_TCP ? 20 : 8;
	if (off + l4_len > skb->len)
		return JNC_PARSE_INVALID;
	if (bpf_skb_load_bytes(skb, off, &packet->sport, 4) < 0)
		return JNC_PARSE_INVALID;
	if (nexthdr == IPPROTO_TCP && bpf_skb_load_bytes(skb, off + 13, &packet->tcp_flags, 1) < 0)
		return JNC_PARSE_INVALID;
	return JNC_PARSE_OK;
}

static __always_inline int jnc_tcp6_opens(const struct jnc_packet6 *packet)
{
	return packet->proto == IPPROTO_TCP &&
	       (packet->tcp_flags & (JNC_TCP_FLAG_SYN | JNC_TCP_FLAG_ACK)) == JNC_TCP_FLAG_SYN;
}

static __always_inline int jnc_tcp6_closes(const struct jnc_packet6 *packet)
{
	return packet->proto == IPPROTO_TCP &&
	       (packet->tcp_flags & (JNC_TCP_FLAG_FIN | JNC_TCP_FLAG_RST));
}

static __always_inline int jnc_addr6_is_zero(const __be32 *a)
{
	return !(a[0] | a[1] | a[2] | a[3]);
}

#endif /* JUNCTION_LIB_PARSE6_H */
