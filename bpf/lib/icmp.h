/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Turning a packet into an ICMP destination-unreachable answer: "port unreachable", as
 * kube-proxy's REJECT gives for a service without endpoints, so the client fails at once
 * (ECONNREFUSED for TCP) instead of retrying into a timeout; and "fragmentation needed" with
 * the next-hop MTU (RFC 1191), for a packet (or a GSO skb's segment) a node device would
 * forward past the route's MTU, the DSR option included. bpf_skb_change_tail drops a GSO
 * skb's offload state, so the answer leaves as the one small packet it is.
 */
#ifndef JUNCTION_LIB_ICMP_H
#define JUNCTION_LIB_ICMP_H

#include <linux/pkt_cls.h>

#include "parse.h"

/* linux/icmp.h would pull in the C library's headers, which a BPF build has not. */
#define JNC_ICMP_DEST_UNREACH 3
#define JNC_ICMP_PORT_UNREACH 3
#define JNC_ICMP_FRAG_NEEDED 4

struct jnc_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};

/* RFC 792: the offending IP header (with options, up to 60 bytes) and 8 bytes after it. */
#define JNC_ICMP_QUOTE_MAX (60 + 8)

/* The 2-byte lead aligns the IP and ICMP headers for csum_diff; it is not sent. */
struct jnc_icmp_reply {
	__u8 lead[2];
	struct ethhdr eth;
	struct iphdr ip;
	/* icmp and quote stay contiguous: the ICMP checksum covers both in one csum_diff. */
	struct jnc_icmphdr icmp;
	__u8 quote[JNC_ICMP_QUOTE_MAX];
};

#define JNC_ICMP_HEADERS_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + \
			      sizeof(struct jnc_icmphdr))

static __always_inline __u16 jnc_csum_fold(__s64 sum)
{
	__u32 folded = (__u32)sum;

	folded = (folded & 0xffff) + (folded >> 16);
	folded = (folded & 0xffff) + (folded >> 16);
	return (__u16)~folded;
}

/*
 * Rewrites the skb in place into an ICMP destination unreachable (`code`; for
 * JNC_ICMP_FRAG_NEEDED `mtu` is the next-hop MTU, else 0) from the packet's destination to
 * its source, and sends it back out of the interface it came in on (bpf_redirect to its
 * egress: to the pod on a host veth, to the previous hop on a node device; the MAC
 * addresses are swapped). Returns TC_ACT_REDIRECT, or TC_ACT_SHOT when the skb cannot be
 * rewritten (the caller has counted the drop either way).
 */
static __always_inline int jnc_icmp_unreachable(struct __sk_buff *skb,
						const struct jnc_packet *packet, __u8 code,
						__u16 mtu)
{
	struct jnc_icmp_reply reply = {};
	__u32 quote_len = packet->l4_off - ETH_HLEN + 8;
	__s64 sum;

	/* Hide the derivation from clang so the bound the verifier needs stays in. */
	asm volatile("" : "+r"(quote_len));
	if (quote_len < 28 || quote_len > JNC_ICMP_QUOTE_MAX)
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, reply.quote, quote_len) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, 0, reply.eth.h_source, ETH_ALEN) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_ALEN, reply.eth.h_dest, ETH_ALEN) < 0)
		return TC_ACT_SHOT;
	reply.eth.h_proto = bpf_htons(ETH_P_IP);

	reply.ip.version = 4;
	reply.ip.ihl = 5;
	reply.ip.tos = 0xc0; /* internetwork control, as the kernel sends ICMP errors */
	reply.ip.tot_len = bpf_htons(sizeof(struct iphdr) + sizeof(struct jnc_icmphdr) + quote_len);
	reply.ip.ttl = 64;
	reply.ip.protocol = IPPROTO_ICMP;
	reply.ip.saddr = packet->daddr; /* the VIP the client asked for */
	reply.ip.daddr = packet->saddr;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&reply.ip, sizeof(reply.ip), 0);
	if (sum < 0)
		return TC_ACT_SHOT;
	reply.ip.check = jnc_csum_fold(sum);

	reply.icmp.type = JNC_ICMP_DEST_UNREACH;
	reply.icmp.code = code;
	/* RFC 1191: unused (16 bits), then the next-hop MTU. */
	reply.icmp.unused = bpf_htonl(mtu);
	/* The quote's zero tail past quote_len adds nothing to the sum. */
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&reply.icmp,
			    sizeof(reply.icmp) + sizeof(reply.quote), 0);
	if (sum < 0)
		return TC_ACT_SHOT;
	reply.icmp.checksum = jnc_csum_fold(sum);

	if (bpf_skb_change_tail(skb, JNC_ICMP_HEADERS_LEN + quote_len, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, &reply.eth, JNC_ICMP_HEADERS_LEN, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, JNC_ICMP_HEADERS_LEN, reply.quote, quote_len, 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

static __always_inline int jnc_icmp_port_unreachable(struct __sk_buff *skb,
						     const struct jnc_packet *packet)
{
	return jnc_icmp_unreachable(skb, packet, JNC_ICMP_PORT_UNREACH, 0);
}

#endif /* JUNCTION_LIB_ICMP_H */
