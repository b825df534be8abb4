/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rewriting one IPv6 address and its L4 port, the twin of nat.h. IPv6 has no header
 * checksum: only the TCP/UDP checksum changes, through its pseudo-header (RFC 8200 §8.1):
 * the 16-byte difference from bpf_csum_diff, applied with bpf_l4_csum_replace(BPF_F_PSEUDO_HDR),
 * which keeps CHECKSUM_PARTIAL skbs right as nat.h explains.
 *
 * BPF_F_IPV6 (kernel 6.16, backported as a fix) tells the helper not to touch a
 * CHECKSUM_COMPLETE skb->csum for the pseudo-header change: with no IPv6 header checksum,
 * the address and L4 checksum changes cancel out in it. A kernel without the flag refuses
 * it with -EINVAL; the call is repeated without it (at worst the receiver sees a
 * CHECKSUM_COMPLETE mismatch, recomputes in software and accepts the packet).
 */
#ifndef JUNCTION_LIB_NAT6_H
#define JUNCTION_LIB_NAT6_H

#include "parse6.h"

#ifndef BPF_F_IPV6
#define BPF_F_IPV6 (1ULL << 7)
#endif
#define JNC_EINVAL 22

static __always_inline __u32 jnc_l4_csum_off6(const struct jnc_packet6 *packet)
{
	return packet->l4_off + (packet->proto == IPPROTO_TCP ? 16 : 6);
}

/*
 * Replaces the 16-byte address at addr_off (JNC_IPV6_SADDR_OFF or _DADDR_OFF) and the port at
 * port_off. For UDP, BPF_F_MARK_MANGLED_0 writes a computed zero as 0xffff (a zero UDP
 * checksum is invalid over IPv6) and leaves a zero field, already invalid, as it is.
 * Returns 0, or a negative errno from a helper.
 */
static __always_inline int jnc_nat6_rewrite(struct __sk_buff *skb,
					    const struct jnc_packet6 *packet, __u32 addr_off,
					    const __be32 *old_addr, const __be32 *new_addr,
					    __u32 port_off, __be16 old_port, __be16 new_port)
{
	__u64 l4_flags = packet->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 csum_off = jnc_l4_csum_off6(packet);
	__be32 from[4], to[4];
	__s64 diff;
	int err;

	if (!jnc_addr6_equal(old_addr, new_addr)) {
		/* Copies on the stack: bpf_csum_diff wants memory it can bound. */
		jnc_addr6_copy(from, old_addr);
		jnc_addr6_copy(to, new_addr);
		diff = bpf_csum_diff(from, sizeof(from), to, sizeof(to), 0);
		if (diff < 0)
			return diff;
		err = bpf_l4_csum_replace(skb, csum_off, 0, diff,
					  l4_flags | BPF_F_PSEUDO_HDR | BPF_F_IPV6);
		if (err == -JNC_EINVAL)
			err = bpf_l4_csum_replace(skb, csum_off, 0, diff,
						  l4_flags | BPF_F_PSEUDO_HDR);
		if (err < 0)
			return err;
		err = bpf_skb_store_bytes(skb, addr_off, to, sizeof(to), 0);
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

#endif /* JUNCTION_LIB_NAT6_H */
