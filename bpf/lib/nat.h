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
