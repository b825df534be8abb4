/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forwarding a packet the datapath rewrote on a node device straight out of the device the
 * kernel's routing table picks, without going up the stack: a packet whose source is not
 * one of the node's addresses' subnets would pass, but one whose source is the node's own
 * address (SNAT) would be a martian to the kernel's input path. Also skips a second pass
 * through the node's netfilter. The routing table still decides (bpf_fib_lookup), and the
 * neighbour table fills the MAC addresses (bpf_redirect_neigh when the next hop is not
 * resolved yet).
 */
#ifndef JUNCTION_LIB_FIB_H
#define JUNCTION_LIB_FIB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps.h"
#include "parse.h"

/* linux/socket.h's AF_INET needs the C library's headers. */
#define JNC_AF_INET 2

/* IPv4 TTL and protocol share a 16-bit word, at byte 8 of the header. */
#define JNC_IPV4_TTL_OFF (ETH_HLEN + 8)

/*
 * What a router does before forwarding: TTL - 1, the header checksum fixed by difference.
 * -1 when the TTL would reach 0 (the caller drops: a forwarding loop, or a traceroute probe
 * the kernel would have answered with time-exceeded).
 */
static __always_inline int jnc_ttl_decrement(struct __sk_buff *skb)
{
	__u8 word[2];
	__be16 old_word, new_word;

	if (bpf_skb_load_bytes(skb, JNC_IPV4_TTL_OFF, word, sizeof(word)) < 0 || word[0] <= 1)
		return -1;
	__builtin_memcpy(&old_word, word, sizeof(old_word));
	word[0]--;
	__builtin_memcpy(&new_word, word, sizeof(new_word));
	if (bpf_l3_csum_replace(skb, JNC_IPV4_CSUM_OFF, old_word, new_word, sizeof(new_word)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, JNC_IPV4_TTL_OFF, word, 1, 0) < 0 ? -1 : 0;
}

/*
 * The length of the largest IPv4 packet this skb puts on the wire: what the route's MTU
 * must hold. A GSO skb (coalesced by GRO on the way in, or a TSO/USO burst handed over by
 * a veth) is a train of segments of gso_size payload bytes, each behind a copy of the IPv4
 * and TCP/UDP headers, which the egress device (or validate_xmit_skb before it) cuts out
 * on the way: its largest packet is one segment, far less than skb->len. Any other skb
 * goes out as it is. The L4 header length is TCP's data offset (options included), or
 * UDP's 8 bytes (for UDP GSO, gso_size is each datagram's payload).
 */
static __always_inline __u32 jnc_wire_len_at(struct __sk_buff *skb, __u32 l4_off, __u8 proto)
{
	__u32 whole = skb->len - ETH_HLEN;
	/* Read once: a second read after the helper call below could be compiled as a load
	 * through a spilled ctx+offset pointer, which the verifier refuses. */
	__u32 gso_size = skb->gso_size;
	__u32 l4_len = 8;
	__u32 segment;
	__u8 offset;

	if (gso_size == 0)
		return whole;
	if (proto == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, l4_off + 12, &offset, 1) < 0)
			return whole;
		l4_len = (offset >> 4) * 4;
	}
	segment = l4_off - ETH_HLEN + l4_len + gso_size;
	return segment < whole ? segment : whole;
}

/* jnc_wire_len_at for a parsed IPv4 packet. (An IPv6 packet's is the same sum: its L4 offset
 * counts the 40-byte header and the extension headers, which every segment repeats.) */
static __always_inline __u32 jnc_wire_len(struct __sk_buff *skb, const struct jnc_packet *packet)
{
	return jnc_wire_len_at(skb, packet->l4_off, packet->proto);
}

/*
 * The route to `daddr` for a packet that came in on skb->ifindex: params filled (egress
 * ifindex, next hop in ipv4_dst, MACs when resolved); the bpf_fib_lookup verdict.
 * `tot_len`: the largest IPv4 packet that will leave (jnc_wire_len, plus what the datapath
 * adds): a non-zero tot_len makes the kernel check it against the route's MTU (its PMTU
 * exception or locked mtu metric included) before anything else, for every answer, and
 * answer BPF_FIB_LKUP_RET_FRAG_NEEDED with the MTU in params->mtu_result (a union with
 * tot_len) when it does not fit. Not skb->len: for a GSO skb that is the whole train, larger
 * than any MTU, and every coalesced packet was refused (issue 19: bulk TCP crawled). Not 0
 * either: the kernel then checks only a SUCCESS answer, against the egress device's MTU
 * (not the route's), and lets any GSO skb through whatever its segments' size, so an
 * oversized packet would go out on NO_NEIGH and a GSO skb whose segments do not fit (GRO
 * from a larger-MTU device) would be dropped silently by the device.
 */
static __always_inline int jnc_fib_route(struct __sk_buff *skb, struct bpf_fib_lookup *params,
					 __be32 saddr, __be32 daddr, __u8 proto, __u32 tot_len)
{
	params->family = JNC_AF_INET;
	params->l4_protocol = proto;
	params->tot_len = (__u16)tot_len;
	params->ifindex = skb->ifindex;
	params->ipv4_src = saddr;
	params->ipv4_dst = daddr;
	return bpf_fib_lookup(skb, params, sizeof(*params), 0);
}

/*
 * Sends the (already rewritten) packet out of the route's device: with the route's MAC
 * addresses when the neighbour is known, else through the neighbour subsystem (which
 * resolves it, queueing the packet meanwhile), its TTL decremented as a router would.
 * Returns TC_ACT_REDIRECT, or -1 when the route gives no way out (no route, a blackhole,
 * forwarding off) or the TTL runs out: the caller drops and counts
 * JUNCTION_DROP_FIB_FAILED.
 */
static __always_inline int jnc_fib_redirect(struct __sk_buff *skb, struct bpf_fib_lookup *params,
					    int route)
{
	struct bpf_redir_neigh next_hop = {};

	if (jnc_ttl_decrement(skb) < 0)
		return -1;

	if (route == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, params->dmac, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, params->smac, ETH_ALEN, 0) < 0)
			return -1;
		return bpf_redirect(params->ifindex, 0);
	}
	if (route == BPF_FIB_LKUP_RET_NO_NEIGH) {
		next_hop.nh_family = JNC_AF_INET;
		next_hop.ipv4_nh = params->ipv4_dst;
		return bpf_redirect_neigh(params->ifindex, &next_hop, sizeof(next_hop), 0);
	}
	return -1;
}

/* The device's entry in jnc_devices: the route's egress device, else the ingress one. */
static __always_inline struct junction_device *jnc_device_of(__u32 egress, __u32 ingress)
{
	struct junction_device_key key = { .ifindex = egress };
	struct junction_device *device = bpf_map_lookup_elem(&jnc_devices, &key);

	if (device)
		return device;
	key.ifindex = ingress;
	return bpf_map_lookup_elem(&jnc_devices, &key);
}

#endif /* JUNCTION_LIB_FIB_H */
