/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * DSR over IPv6 with Cilium's encoding (junction_abi.h, junction_dsr_opt6): the ingress node
 * inserts a Destination Options header naming the frontend right after the IPv6 header of the
 * packet it forwards; the backend's node reads it and sends the replies with that frontend as
 * source, straight to the client. The option's type has its two high bits 00 ("skip if
 * unknown", RFC 8200 §4.2), so the backend pod's kernel skips it and needs no change.
 */
#ifndef JUNCTION_LIB_DSR6_H
#define JUNCTION_LIB_DSR6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "junction_abi.h"
#include "parse6.h"

/* Where the header goes and is looked for: right after the fixed 40-byte IPv6 header. */
#define JNC_DSR6_OFF (ETH_HLEN + JNC_IPV6_HLEN)
/* The IPv6 header's next-header byte. */
#define JNC_IPV6_NEXTHDR_OFF (ETH_HLEN + 6)

/* As dsr.h: TCP only on the SYN, UDP on every datagram. */
static __always_inline int jnc_dsr6_wants_option(const struct jnc_packet6 *packet)
{
	return packet->proto == IPPROTO_UDP || jnc_tcp6_opens(packet);
}

/*
 * Reads the option when the first extension header is a Destination Options header holding
 * it first (where this node and Cilium put it): 1 and *option filled, else 0.
 */
static __always_inline int jnc_dsr6_read_option(struct __sk_buff *skb,
						const struct jnc_packet6 *packet,
						struct junction_dsr_opt6 *option)
{
	__u8 nexthdr;

	if (packet->l4_off < JNC_DSR6_OFF + sizeof(*option))
		return 0;
	if (bpf_skb_load_bytes(skb, JNC_IPV6_NEXTHDR_OFF, &nexthdr, 1) < 0 ||
	    nexthdr != JUNCTION_DSR6_NEXTHDR_DEST)
		return 0;
	if (bpf_skb_load_bytes(skb, JNC_DSR6_OFF, option, sizeof(*option)) < 0)
		return 0;
	return option->hdrlen == (JUNCTION_DSR6_EXT_LEN / 8 - 1) &&
	       option->type == JUNCTION_DSR6_OPT_TYPE && option->len == JUNCTION_DSR6_OPT_LEN;
}

/*
 * Inserts the header naming `address`:`port`: 24 bytes of room after the fixed header
 * (bpf_skb_adjust_room at the network layer moves only the headers in front, so a
 * CHECKSUM_PARTIAL skb's L4 offsets stay right), then the fixed header rewritten with next
 * header 60 and payload_len + 24, and the new header carrying the old next header. No L3
 * checksum, and the L4 pseudo-header's upper-layer length excludes extension headers: no
 * checksum changes. BPF_F_ADJ_ROOM_FIXED_GSO as in dsr.h. A payload_len of 0 (a jumbogram or
 * BIG TCP skb, whose length is the skb's) stays 0. 0, or a negative errno; the caller has
 * checked that every packet that leaves, 24 bytes longer, fits the MTU.
 */
static __always_inline int jnc_dsr6_insert_option(struct __sk_buff *skb, const __be32 *address,
						  __be16 port)
{
	struct {
		struct jnc_ipv6hdr ip;
		struct junction_dsr_opt6 option;
	} header = {};
	__u16 payload_len;
	int err;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &header.ip, sizeof(header.ip)) < 0)
		return -1;
	err = bpf_skb_adjust_room(skb, sizeof(header.option), BPF_ADJ_ROOM_NET,
				  BPF_F_ADJ_ROOM_FIXED_GSO);
	if (err < 0)
		return err;
	header.option.nexthdr = header.ip.nexthdr;
	header.option.hdrlen = JUNCTION_DSR6_EXT_LEN / 8 - 1;
	header.option.type = JUNCTION_DSR6_OPT_TYPE;
	header.option.len = JUNCTION_DSR6_OPT_LEN;
	jnc_addr6_copy(header.option.address, address);
	header.option.port = port;
	header.ip.nexthdr = JUNCTION_DSR6_NEXTHDR_DEST;
	payload_len = bpf_ntohs(header.ip.payload_len);
	if (payload_len)
		header.ip.payload_len = bpf_htons(payload_len + sizeof(header.option));
	return bpf_skb_store_bytes(skb, ETH_HLEN, &header, sizeof(header), 0);
}

#endif /* JUNCTION_LIB_DSR6_H */
