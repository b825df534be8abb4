/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMPv6 errors the datapath answers itself, the twins of icmp.h's: "port unreachable"
 * (destination unreachable, code 4; RFC 4443 §3.1) for an IPv6 service without backends, so
 * the client fails at once (ECONNREFUSED) as with kube-proxy's REJECT; Packet Too Big (§3.2)
 * for a north-south packet that would not fit the route's MTU once forwarded. The checksum covers the pseudo-header (RFC 4443 §2.3), and
 * the quote is the offending packet's headers up to 8 bytes of its L4 header, cut at
 * JNC_ICMP6_QUOTE_MAX (an error may be truncated; this keeps it far below the 1280-byte
 * minimum MTU).
 */
#ifndef JUNCTION_LIB_ICMP6_H
#define JUNCTION_LIB_ICMP6_H

#include <linux/pkt_cls.h>

#include "icmp.h"
#include "parse6.h"

#define JNC_ICMP6_DEST_UNREACH 1
#define JNC_ICMP6_PORT_UNREACH 4
#define JNC_ICMP6_PACKET_TOO_BIG 2
/* The IPv6 header, up to 80 bytes of extension headers, 8 bytes of L4 header. */
#define JNC_ICMP6_QUOTE_MAX 128

struct jnc_icmp6_reply {
	__u8 lead[2]; /* aligns the IPv6 and ICMPv6 headers for csum_diff; not sent */
	struct ethhdr eth;
	struct jnc_ipv6hdr ip;
	/* icmp and quote stay contiguous: the checksum covers both in one csum_diff. */
	struct jnc_icmphdr icmp;
	__u8 quote[JNC_ICMP6_QUOTE_MAX];
};

struct jnc_ipv6_pseudo {
	__be32 saddr[4];
	__be32 daddr[4];
	__be32 length;
	__be32 nexthdr;
};

#define JNC_ICMP6_HEADERS_LEN (sizeof(struct ethhdr) + sizeof(struct jnc_ipv6hdr) + \
			       sizeof(struct jnc_icmphdr))

/*
 * Rewrites the skb into an ICMPv6 error of `type`/`code` about it, with `mtu` in the word after
 * the checksum (Packet Too Big's MTU; 0 = unused), from the address the client asked for, and
 * sends it back to where it came from (as icmp.h).
 */
static __always_inline int jnc_icmp6_error(struct __sk_buff *skb, const struct jnc_packet6 *packet,
					   __u8 type, __u8 code, __u32 mtu)
{
	struct jnc_icmp6_reply reply = {};
	struct jnc_ipv6_pseudo pseudo = {};
	__u32 quote_len = packet->l4_off - ETH_HLEN + 8;
	__s64 sum;

	if (quote_len > JNC_ICMP6_QUOTE_MAX)
		quote_len = JNC_ICMP6_QUOTE_MAX;
	/* Hide the derivation from clang so the bound the verifier needs stays in. */
	asm volatile("" : "+r"(quote_len));
	if (quote_len < JNC_IPV6_HLEN + 8 || quote_len > JNC_ICMP6_QUOTE_MAX)
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, reply.quote, quote_len) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, 0, reply.eth.h_source, ETH_ALEN) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_ALEN, reply.eth.h_dest, ETH_ALEN) < 0)
		return TC_ACT_SHOT;
	reply.eth.h_proto = bpf_htons(ETH_P_IPV6);

	reply.ip.version_class = 6 << 4;
	reply.ip.payload_len = bpf_htons(sizeof(struct jnc_icmphdr) + quote_len);
	reply.ip.nexthdr = JNC_NEXTHDR_ICMPV6;
	reply.ip.hop_limit = 64;
	jnc_addr6_copy(reply.ip.saddr, packet->daddr); /* the VIP the client asked for */
	jnc_addr6_copy(reply.ip.daddr, packet->saddr);

	jnc_addr6_copy(pseudo.saddr, reply.ip.saddr);
	jnc_addr6_copy(pseudo.daddr, reply.ip.daddr);
	pseudo.length = bpf_htonl(sizeof(struct jnc_icmphdr) + quote_len);
	pseudo.nexthdr = bpf_htonl(JNC_NEXTHDR_ICMPV6);
	reply.icmp.type = type;
	reply.icmp.code = code;
	reply.icmp.unused = bpf_htonl(mtu);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&pseudo, sizeof(pseudo), 0);
	if (sum < 0)
		return TC_ACT_SHOT;
	/* The quote's zero tail past quote_len adds nothing to the sum. */
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&reply.icmp,
			    sizeof(reply.icmp) + sizeof(reply.quote), sum);
	if (sum < 0)
		return TC_ACT_SHOT;
	reply.icmp.checksum = jnc_csum_fold(sum);

	if (bpf_skb_change_tail(skb, JNC_ICMP6_HEADERS_LEN + quote_len, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, &reply.eth, JNC_ICMP6_HEADERS_LEN, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, JNC_ICMP6_HEADERS_LEN, reply.quote, quote_len, 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

static __always_inline int jnc_icmp6_port_unreachable(struct __sk_buff *skb,
						      const struct jnc_packet6 *packet)
{
	return jnc_icmp6_error(skb, packet, JNC_ICMP6_DEST_UNREACH, JNC_ICMP6_PORT_UNREACH, 0);
}

/* Packet Too Big (RFC 4443 §3.2): a forwarded packet would not fit `mtu` (IPv6 routers
 * never fragment). */
static __always_inline int jnc_icmp6_packet_too_big(struct __sk_buff *skb,
						    const struct jnc_packet6 *packet, __u32 mtu)
{
	return jnc_icmp6_error(skb, packet, JNC_ICMP6_PACKET_TOO_BIG, 0, mtu);
}

#endif /* JUNCTION_LIB_ICMP6_H */
