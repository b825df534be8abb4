/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The DSR option (junction_dsr_opt4, type 0x9a, length 8): the ingress node writes the
 * frontend the client asked for into the IPv4 header of the packet it forwards; the
 * backend's node reads it back and sends the replies with that frontend as source, straight
 * to the client. Linux ignores an IPv4 option it does not know on a packet it receives (and
 * copies nothing of it into a reply), so the backend pod needs no change.
 */
#ifndef JUNCTION_LIB_DSR_H
#define JUNCTION_LIB_DSR_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "junction_abi.h"
#include "icmp.h"
#include "parse.h"

/* Where the option sits: right after the fixed 20-byte IPv4 header. */
#define JNC_DSR_OPT_OFF (ETH_HLEN + sizeof(struct iphdr))

/* Whether this packet gets the option when forwarded by DSR: TCP only on the SYN (later
 * segments find the backend node's conntrack entry), UDP on every datagram (no handshake
 * to hang state on). */
static __always_inline int jnc_dsr_wants_option(const struct jnc_packet *packet)
{
	return packet->proto == IPPROTO_UDP || jnc_tcp_opens(packet);
}

/* Reads the option when the packet carries one first among its options: 1 and *option
 * filled, else 0. */
static __always_inline int jnc_dsr_read_option(struct __sk_buff *skb,
					       const struct jnc_packet *packet,
					       struct junction_dsr_opt4 *option)
{
	if (packet->l4_off < JNC_DSR_OPT_OFF + sizeof(*option))
		return 0;
	if (bpf_skb_load_bytes(skb, JNC_DSR_OPT_OFF, option, sizeof(*option)) < 0)
		return 0;
	return option->type == JUNCTION_DSR_OPT_TYPE && option->len == JUNCTION_DSR_OPT_LEN;
}

/*
 * Inserts the option naming `address`:`port` after the fixed IPv4 header: 8 bytes of room
 * between the fixed header and what follows it (bpf_skb_adjust_room at the network layer
 * moves only the headers in front, so a CHECKSUM_PARTIAL skb's L4 offsets stay right), then
 * the fixed header rewritten with ihl + 2 and tot_len + 8. The header checksum is updated by
 * difference (old fixed header out, new fixed header and option in), so options the client
 * sent, now after ours, stay covered. The L4 checksum does not cover IPv4 options. 0, or a
 * negative errno. The caller has checked that ihl + 2 fits (60 bytes at most), and that
 * every packet that leaves, 8 bytes longer, fits the MTU.
 *
 * BPF_F_ADJ_ROOM_FIXED_GSO: a GSO skb keeps its gso_size. Only UDP gets the option on more
 * than a SYN, and a UDP GSO skb's gso_size is each datagram's payload: shrinking it by 8, as
 * the helper does without the flag, would cut the datagrams at other boundaries (the kernel
 * refuses that with -ENOTSUPP); with it, each datagram keeps its payload and its copy of the
 * IPv4 header carries the option. A skb without GSO is not affected by the flag.
 */
static __always_inline int jnc_dsr_insert_option(struct __sk_buff *skb, __be32 address,
						 __be16 port)
{
	struct {
		struct iphdr ip;
		struct junction_dsr_opt4 option;
	} header;
	struct iphdr old;
	__u16 old_check;
	__s64 sum;
	int err;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &old, sizeof(old)) < 0)
		return -1;
	err = bpf_skb_adjust_room(skb, sizeof(header.option), BPF_ADJ_ROOM_NET,
				  BPF_F_ADJ_ROOM_FIXED_GSO);
	if (err < 0)
		return err;
	old_check = old.check;
	old.check = 0;
	header.ip = old;
	header.ip.ihl += sizeof(header.option) / 4;
	header.ip.tot_len = bpf_htons(bpf_ntohs(old.tot_len) + sizeof(header.option));
	header.option.type = JUNCTION_DSR_OPT_TYPE;
	header.option.len = JUNCTION_DSR_OPT_LEN;
	header.option.port = port;
	header.option.address = address;
	/* The old header's sum (the complement of its checksum), less the old fixed header,
	 * plus the new one and the option. */
	sum = bpf_csum_diff((__be32 *)&old, sizeof(old), (__be32 *)&header, sizeof(header),
			    (__u16)~old_check);
	if (sum < 0)
		return (int)sum;
	header.ip.check = jnc_csum_fold(sum);
	return bpf_skb_store_bytes(skb, ETH_HLEN, &header, sizeof(header), 0);
}

#endif /* JUNCTION_LIB_DSR_H */
