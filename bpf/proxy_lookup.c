// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * L7 proxy redirect, the kernel's half (BPF_PROG_TYPE_SK_LOOKUP, attached by the agent to the
 * node's network namespace with a BPF link): when the kernel looks for a listener for a TCP
 * connection to a redirected frontend (JUNCTION_SVC_F_L7_PROXY), it gets the node's proxy
 * listener from JUNCTION_MAP_PROXY_LISTENERS. tc (lib/proxy.h) has only marked the SYN so the
 * node routes it to itself; this program runs in the kernel's listener lookup, after the
 * established and TIME_WAIT lookup, so a SYN that reuses the 4-tuple of a connection the
 * proxy closed first (its side in TIME_WAIT) reopens it, as on a directly reached listener.
 *
 * The accepted socket has the packet's destination (VIP:port) as its local address, as with
 * bpf_sk_assign; the listener still needs IP_TRANSPARENT to answer from it. A listener in a
 * SO_REUSEPORT group (Envoy's workers) is spread over its group by the kernel as usual.
 * Anything else (not TCP, not a redirected frontend, no listener in the map) is left to the
 * kernel's own lookup: tc refuses a redirected SYN with no listener before it gets here.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "junction_abi.h"
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#ifndef AF_INET
#define AF_INET 2
#endif

SEC("sk_lookup")
int proxy_lookup(struct bpf_sk_lookup *ctx)
{
	struct junction_lb4_service_key frontend = {};
	struct junction_proxy_listener_key key = {};
	const struct junction_lb4_service *service;
	struct bpf_sock *sk;

	if (ctx->family != AF_INET || ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	frontend.address = ctx->local_ip4;
	frontend.port = bpf_htons((__u16)ctx->local_port);
	frontend.proto = IPPROTO_TCP;
	service = bpf_map_lookup_elem(&jnc_lb4_svc, &frontend);
	if (!service || !(service->flags & JUNCTION_SVC_F_L7_PROXY) || !service->proxy_port)
		return SK_PASS;
	key.proxy_port = service->proxy_port;
	sk = bpf_map_lookup_elem(&jnc_proxy_lsn, &key);
	if (!sk)
		return SK_PASS;
	/* Fails only for a socket the lookup cannot take (not listening any more): the
	 * kernel's own lookup then goes on, as without this program. */
	bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return SK_PASS;
}
