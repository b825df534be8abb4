/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Ethernet/IPv4/TCP/UDP parsing for the service datapath, into a small struct on the stack.
 * Headers are copied with bpf_skb_load_bytes rather than read in place: that works whether
 * or not the headers sit in the skb's linear area, and every bound is the helper's check
 * against skb->len, so no header (IPv4 options included, through ihl) is assumed.
 */
#ifndef JUNCTION_LIB_PARSE_H
#define JUNCTION_LIB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* linux/ip.h leaves these to net/ip.h, which is kernel-internal. */
#define JNC_IP_MF 0x2000
#define JNC_IP_OFFSET 0x1fff

#define JNC_TCP_FLAG_FIN 0x01
#define JNC_TCP_FLAG_SYN 0x02
#define JNC_TCP_FLAG_RST 0x04
#define JNC_TCP_FLAG_ACK 0x10

enum jnc_parse_result {
	JNC_PARSE_OK = 0,      /* an unfragmented IPv4 TCP or UDP packet: `packet` filled */
	JNC_PARSE_PASS = 1,    /* not ours to translate: pass untouched */
	JNC_PARSE_INVALID = 2, /* IPv4 whose headers are shorter than they claim */
};

struct jnc_packet {
	__u32 l4_off; /* from the start of the frame */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags; /* TCP only */
	__u16 pad;
};

#define JNC_IPV4_SADDR_OFF (ETH_HLEN + 12)
#define JNC_IPV4_DADDR_OFF (ETH_HLEN + 16)
#define JNC_IPV4_CSUM_OFF (ETH_HLEN + 10)

static __always_inline int jnc_parse_ipv4(struct __sk_buff *skb, struct jnc_packet *packet)
{
	struct iphdr ip;
	__be16 eth_proto;
	__u32 l4_len;

	/* A test run or a veth never hands tc less than an Ethernet header. */
	if (bpf_skb_load_bytes(skb, 12, &eth_proto, sizeof(eth_proto)) < 0)
		return JNC_PARSE_PASS;
	/* ARP, IPv6 and everything else: not translated (IPv6 services are not done yet). */
	if (eth_proto != bpf_htons(ETH_P_IP))
		return JNC_PARSE_PASS;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return JNC_PARSE_INVALID;
	if (ip.version != 4 || ip.ihl < 5 || bpf_ntohs(ip.tot_len) < ip.ihl * 4)
		return JNC_PARSE_INVALID;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return JNC_PARSE_PASS; /* ICMP and the rest */
	/*
	 * Fragments pass untouched, the first one included: only the first carries the ports,
	 * so translating it would send it to a backend and the rest of the datagram to the VIP.
	 * Pods reach services with TCP (never fragmented, PMTU) or small UDP; a fragmented
	 * datagram to a VIP is not delivered, as it would not be without a proxy.
	 */
	if (ip.frag_off & bpf_htons(JNC_IP_MF | JNC_IP_OFFSET))
		return JNC_PARSE_PASS;

	packet->l4_off = ETH_HLEN + ip.ihl * 4;
	packet->saddr = ip.saddr;
	packet->daddr = ip.daddr;
	packet->proto = ip.protocol;
	packet->tcp_flags = 0;
	/* The whole fixed L4 header must be there: the checksum fix-up writes into it. */
	l4_len = ip.protocol == IPPROTO_TCP ? 20 : 8;
	if (packet->l4_off + l4_len > skb->len)
		return JNC_PARSE_INVALID;
	if (bpf_skb_load_bytes(skb, packet->l4_off, &packet->sport, 4) < 0)
		return JNC_PARSE_INVALID;
	if (ip.protocol == IPPROTO_TCP &&
	    bpf_skb_load_bytes(skb, packet->l4_off + 13, &packet->tcp_flags, 1) < 0)
		return JNC_PARSE_INVALID;
	return JNC_PARSE_OK;
}

/* A pure SYN: a client opening a connection (maybe on a tuple it used before). */
static __always_inline int jnc_tcp_opens(const struct jnc_packet *packet)
{
	return packet->proto == IPPROTO_TCP &&
	       (packet->tcp_flags & (JNC_TCP_FLAG_SYN | JNC_TCP_FLAG_ACK)) == JNC_TCP_FLAG_SYN;
}

/* A FIN or RST: one side is closing the connection. */
static __always_inline int jnc_tcp_closes(const struct jnc_packet *packet)
{
	return packet->proto == IPPROTO_TCP &&
	       (packet->tcp_flags & (JNC_TCP_FLAG_FIN | JNC_TCP_FLAG_RST));
}

#endif /* JUNCTION_LIB_PARSE_H */
