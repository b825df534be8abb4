/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rewriting one IPv4 address and its L4 port with the checksums fixed incrementally.
 * bpf_l3_csum_replace / bpf_l4_csum_replace rather than recomputing: they also keep a
 * CHECKSUM_PARTIAL skb (a pod's TCP with offload: the field holds only the pseudo-header
 * sum) and a CHECKSUM_COMPLETE skb->csum right, which arithmetic on the field would not.
 */
#ifndef JUNCTION_LIB_NAT_H
#define JUNCTION_LIB_NAT_H

#include "parse.h"
#include "stages.h"

static __always_inline __u32 jnc_l4_csum_off(const struct jnc_packet *packet)
{
	return packet->l4_off + (packet->proto == IPPROTO_TCP ? 16 : 6);
}

/*
 * A DNAT (destination address and port) of a packet without IP options: the destination
 * address, source port and destination port are then the 8 contiguous bytes at
 * JNC_IPV4_DADDR_OFF, so one bpf_skb_store_bytes writes them (the source port with the
 * value it has), a helper call less than one store for the address and one for the port,
 * on every translated packet (bench/results/first-packet.md). The source port comes from
 * the parsed packet: every destination rewrite is a packet's first (endpoint.c, netdev.c,
 * lib/hairpin.h), so nothing changed it before. The checksum updates are those of the
 * general case (jnc_nat_rewrite_once), so the bytes written are the same.
 */
static __always_inline int jnc_dnat_one_store(const struct jnc_packet *packet, __u32 addr_off,
					      __u32 port_off)
{
	return addr_off == JNC_IPV4_DADDR_OFF && packet->l4_off == ETH_HLEN + 20 &&
	       port_off == packet->l4_off + 2;
}

static __always_inline int jnc_dnat_rewrite(struct __sk_buff *skb, const struct jnc_packet *packet,
					    __u32 csum_off, __u64 l4_flags, __be32 old_addr,
					    __be32 new_addr, __be16 old_port, __be16 new_port)
{
	const struct {
		__be32 daddr;
		__be16 sport;
		__be16 dport;
	} bytes = { .daddr = new_addr, .sport = packet->sport, .dport = new_port };
	int err;

	err = bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr,
				  l4_flags | BPF_F_PSEUDO_HDR | sizeof(new_addr));
	if (err < 0)
		return err;
	err = bpf_l3_csum_replace(skb, JNC_IPV4_CSUM_OFF, old_addr, new_addr, sizeof(new_addr));
	if (err < 0)
		return err;
	if (old_port != new_port) {
		err = bpf_l4_csum_replace(skb, csum_off, old_port, new_port,
					  l4_flags | sizeof(new_port));
		if (err < 0)
			return err;
	}
	return bpf_skb_store_bytes(skb, JNC_IPV4_DADDR_OFF, &bytes, sizeof(bytes), 0);
}

/*
 * Replaces the address at addr_off (JNC_IPV4_SADDR_OFF or JNC_IPV4_DADDR_OFF) and the port
 * at port_off. The address is in the TCP/UDP pseudo-header, hence BPF_F_PSEUDO_HDR; for UDP
 * BPF_F_MARK_MANGLED_0 keeps a zero ("no checksum") field zero and writes a computed zero
 * as 0xffff. Returns 0, or a negative errno from a helper.
 */
static __always_inline int jnc_nat_rewrite_once(struct __sk_buff *skb,
						const struct jnc_packet *packet, __u32 addr_off,
						__be32 old_addr, __be32 new_addr, __u32 port_off,
						__be16 old_port, __be16 new_port)
{
	__u64 l4_flags = packet->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 csum_off = jnc_l4_csum_off(packet);
	int err;

	if (jnc_dnat_one_store(packet, addr_off, port_off) && old_addr != new_addr)
		return jnc_dnat_rewrite(skb, packet, csum_off, l4_flags, old_addr, new_addr, old_port,
					new_port);
	if (old_addr != new_addr) {
		err = bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr,
					  l4_flags | BPF_F_PSEUDO_HDR | sizeof(new_addr));
		if (err < 0)
			return err;
		err = bpf_l3_csum_replace(skb, JNC_IPV4_CSUM_OFF, old_addr, new_addr,
					  sizeof(new_addr));
		if (err < 0)
			return err;
		err = bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0);
		if (err < 0)
			return err;
	}
	if (old_port != new_port) {
		err = bpf_l4_csum_replace(skb, csum_off, old_port, new_port,
					  l4_flags | sizeof(new_port));
		if (err < 0)
			return err;
		err = bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0);
		if (err < 0)
			return err;
	}
	return 0;
}

static __always_inline int jnc_nat_rewrite(struct __sk_buff *skb, const struct jnc_packet *packet,
					   __u32 addr_off, __be32 old_addr, __be32 new_addr,
					   __u32 port_off, __be16 old_port, __be16 new_port)
{
	int err;

	if (jnc_skip(JNC_STAGE_NAT))
		return 0;
	err = jnc_nat_rewrite_once(skb, packet, addr_off, old_addr, new_addr, port_off, old_port,
				   new_port);
	/* Bench only (lib/stages.h): BPF_PROG_TEST_RUN repeats the program on the same skb, so
	 * the packet is put back as it came for the next run to be a first packet again (the
	 * timed path then holds two rewrites; skip-nat tells what they cost). */
	if (!err && jnc_skip(JNC_STAGE_ALWAYS_NEW))
		err = jnc_nat_rewrite_once(skb, packet, addr_off, new_addr, old_addr, port_off,
					   new_port, old_port);
	return err;
}

#endif /* JUNCTION_LIB_NAT_H */
