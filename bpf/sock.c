// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket load balancing for the node's own processes, attached by the agent (--socket-lb)
 * to a cgroup v2 with BPF links:
 *   sock_connect4      connect() of a TCP or UDP socket to a service frontend: pick a
 *                      backend and connect to it instead (once per connection, no per-packet
 *                      NAT and no conntrack entry);
 *   sock_sendmsg4      sendto()/sendmsg() with an address on an unconnected UDP socket: the
 *                      same, per datagram;
 *   sock_recvmsg4      recvfrom()/recvmsg() on UDP: a datagram from a backend this socket was
 *                      sent to is reported as coming from the frontend;
 *   sock_getpeername4  getpeername(): the frontend, not the backend, for a translated socket.
 * An L7 proxy frontend's TCP connect goes to the proxy on 127.0.0.1:proxy_port instead of a
 * backend (remembered the same way, so getpeername still shows the frontend).
 *
 * Only sockets in the node's network namespace are translated (jnc_node_cfg's
 * host_netns_cookie, as Cilium's socketLB.hostNamespaceOnly): pods are translated per packet
 * by from_endpoint, and lab nodes on one machine share one cgroup hierarchy, so each node's
 * programs see every process of the machine and must leave the other namespaces alone.
 *
 * Backend selection is the datapath's (lib/lb4.h): ClientIP affinity, Maglev, random. The
 * frontend a socket was translated from is remembered per (socket cookie, backend) in
 * jnc_lb4_sk_rev for the reverse direction.
 */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "junction_abi.h"
#include "lib/variant.h"
#include "lib/events.h"
#include "lib/lb4.h"
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* What a cgroup sock_addr program returns: 1 lets the call go on (with the address as the
 * program left it), 0 fails it (with bpf_set_retval's error, else EPERM). */
#define JNC_SYS_PROCEED 1
#define JNC_SYS_REJECT 0

/* The node's settings when this socket lives in the node's network namespace and socket LB
 * is on; NULL for every other socket (pods, other lab nodes, the machine's own). */
static __always_inline const struct junction_node_config *host_socket_config(struct bpf_sock_addr *ctx)
{
	const __u32 zero = 0;
	const struct junction_node_config *config = bpf_map_lookup_elem(&jnc_node_cfg, &zero);

	if (!config || !config->host_netns_cookie)
		return NULL;
	if (bpf_get_netns_cookie(ctx) != config->host_netns_cookie)
		return NULL;
	return config;
}

/* 0.0.0.0 or 127.0.0.0/8: "this node", where a NodePort answers on every address. */
static __always_inline int is_local_wildcard(__be32 address)
{
	__u32 host = bpf_ntohl(address);

	return host == 0 || (host >> 24) == 127;
}

/*
 * The frontend for `key` (VIP, port, proto; scope 0), else, for 0.0.0.0 or 127.0.0.0/8 and a
 * port in the NodePort range, the NodePort's wildcard frontend 0.0.0.0:port (key->address is
 * then 0, so the slots are looked up under the wildcard as well).
 */
static __always_inline struct junction_lb4_service *
lookup_frontend(struct junction_lb4_service_key *key, const struct junction_node_config *config)
{
	struct junction_lb4_service *service = bpf_map_lookup_elem(&jnc_lb4_svc, key);
	__u16 port = bpf_ntohs(key->port);

	if (service)
		return service;
	if (!is_local_wildcard(key->address) || !config->nodeport_max || port < config->nodeport_min ||
	    port > config->nodeport_max)
		return NULL;
	key->address = 0;
	return bpf_map_lookup_elem(&jnc_lb4_svc, key);
}

/*
 * The connection as lib/lb4.h's selection sees a packet. The client is the socket's bound
 * address, or 0 for an unbound one (the node itself: its affinity is one client, whichever
 * source address routing gives it later). The source port is not chosen yet when an unbound
 * socket connects; a random one stands in, so Maglev spreads the node's connections over the
 * table instead of sending them all to one slot.
 */
static __always_inline void socket_as_packet(struct bpf_sock_addr *ctx, __u8 proto, __be32 daddr,
					     __be16 dport, struct jnc_packet *packet)
{
	struct bpf_sock *sk = ctx->sk;
	__u16 sport = 0;

	packet->saddr = 0;
	if (sk) {
		packet->saddr = sk->src_ip4;
		sport = sk->src_port; /* host order in struct bpf_sock */
	}
	if (!sport)
		sport = bpf_get_prandom_u32();
	packet->sport = bpf_htons(sport);
	packet->daddr = daddr;
	packet->dport = dport;
	packet->proto = proto;
}

/* connect4 and sendmsg4: a frontend's address becomes one of its backends'. Each
 * translation or refusal is a flow event (lib/events.h; `connect`: one per connection). */
static __always_inline int translate_to_backend(struct bpf_sock_addr *ctx, int connect)
{
	struct junction_lb4_service_key key = {};
	struct junction_lb4_backend *backend = NULL;
	const struct junction_node_config *config;
	struct junction_lb4_sock_key reverse_key = {};
	struct junction_lb4_sock_revnat reverse = {};
	struct junction_lb4_service *service;
	struct junction_lb4_backend proxy = {};
	struct jnc_packet packet = {};
	__u8 proto = ctx->protocol;
	__u8 lrp;
	__u32 id;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return JNC_SYS_PROCEED;
	config = host_socket_config(ctx);
	if (!config)
		return JNC_SYS_PROCEED;
	key.address = ctx->user_ip4;
	key.port = (__be16)ctx->user_port;
	key.proto = proto;
	/* What the application asked for; recvmsg4 and getpeername4 give it back. */
	reverse.address = key.address;
	reverse.port = key.port;
	service = lookup_frontend(&key, config);
	if (!service)
		return JNC_SYS_PROCEED;
	socket_as_packet(ctx, proto, reverse.address, reverse.port, &packet);
	lrp = service->flags & JUNCTION_SVC_F_LOCAL_REDIRECT ? JUNCTION_FLOW_F_LRP : 0;
	/* An L7 proxy frontend: the node's own connections go to the proxy's listener on
	 * 127.0.0.1:proxy_port (as Cilium's socket LB does for host-namespace clients), which
	 * stands in for the backend below; the packet path never sees the VIP. */
	if (proto == IPPROTO_TCP && (service->flags & JUNCTION_SVC_F_L7_PROXY) &&
	    service->proxy_port) {
		proxy.address = bpf_htonl(0x7f000001);
		proxy.port = bpf_htons(service->proxy_port);
		proxy.proto = IPPROTO_TCP;
		backend = &proxy;
		goto translate;
	}
	/* As kube-proxy's REJECT for a service without endpoints: refused at once. */
	if (service->count == 0) {
		jnc_emit_sock(bpf_get_socket_cookie(ctx), &packet, NULL, service->rev_nat_id,
			      JUNCTION_DROP_NO_BACKEND, connect, lrp);
		bpf_set_retval(-ECONNREFUSED);
		return JNC_SYS_REJECT;
	}
	id = select_backend(&packet, &key, service, bpf_ktime_get_ns(), &backend);
	if (!id || !backend) {
		jnc_emit_sock(bpf_get_socket_cookie(ctx), &packet, NULL, service->rev_nat_id,
			      JUNCTION_DROP_NO_BACKEND, connect, lrp);
		bpf_set_retval(-ECONNREFUSED);
		return JNC_SYS_REJECT;
	}
translate:
	reverse_key.cookie = bpf_get_socket_cookie(ctx);
	reverse_key.address = backend->address;
	reverse_key.port = backend->port;
	reverse.rev_nat_id = service->rev_nat_id;
	/* UDP replies are only recognisable through this entry: without it the application
	 * would see answers from an address it never sent to, so fail the send instead. TCP
	 * only loses getpeername's frontend. */
	if (bpf_map_update_elem(&jnc_lb4_sk_rev, &reverse_key, &reverse, BPF_ANY) < 0 &&
	    proto == IPPROTO_UDP) {
		bpf_set_retval(-ENOMEM);
		return JNC_SYS_REJECT;
	}
	jnc_emit_sock(reverse_key.cookie, &packet, backend, service->rev_nat_id, 0, connect, lrp);
	ctx->user_ip4 = backend->address;
	ctx->user_port = (__u32)backend->port;
	return JNC_SYS_PROCEED;
}

/* recvmsg4 and getpeername4: a backend this socket was translated to reads as its frontend. */
static __always_inline int translate_to_frontend(struct bpf_sock_addr *ctx)
{
	struct junction_lb4_sock_key key = {};
	struct junction_lb4_sock_revnat *reverse;

	if (!host_socket_config(ctx))
		return JNC_SYS_PROCEED;
	key.cookie = bpf_get_socket_cookie(ctx);
	key.address = ctx->user_ip4;
	key.port = (__be16)ctx->user_port;
	reverse = bpf_map_lookup_elem(&jnc_lb4_sk_rev, &key);
	if (!reverse)
		return JNC_SYS_PROCEED;
	ctx->user_ip4 = reverse->address;
	ctx->user_port = (__u32)reverse->port;
	return JNC_SYS_PROCEED;
}

/* ---- Entry points ---------------------------------------------------------------------- */

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_backend(ctx, 1);
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_backend(ctx, 0);
}

/* recvmsg and getpeername hooks must return 1: they can only rewrite, never refuse. */
SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_frontend(ctx);
}

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_frontend(ctx);
}
