// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket load balancing for the node's own processes, attached by the agent (--socket-lb)
 * to a cgroup v2 with BPF links:
 *   sock_connect4/6      connect() of a TCP or UDP socket to a service frontend: pick a
 *                        backend and connect to it instead (once per connection, no
 *                        per-packet NAT and no conntrack entry);
 *   sock_sendmsg4/6      sendto()/sendmsg() with an address on an unconnected UDP socket:
 *                        the same, per datagram;
 *   sock_recvmsg4/6      recvfrom()/recvmsg() on UDP: a datagram from a backend this socket
 *                        was sent to is reported as coming from the frontend;
 *   sock_getpeername4/6  getpeername(): the frontend, not the backend, for a translated
 *                        socket.
 * An L7 proxy frontend's TCP connect goes to the proxy on 127.0.0.1:proxy_port instead of a
 * backend (remembered the same way, so getpeername still shows the frontend).
 *
 * The IPv6 hooks serve IPv6 frontends (jnc_lb6_svc, lib/lb6.h's selection, reverse entries
 * in jnc_lb6_sk_rev) and, on a dual-stack AF_INET6 socket (not IPV6_V6ONLY), IPv4-mapped
 * addresses: ::ffff:<v4 frontend> is an IPv4 frontend, translated by the IPv4 path to
 * ::ffff:<v4 backend> (as Cilium's sock6_xlate_v4_in_v6), its reverse entry in
 * jnc_lb4_sk_rev. (The kernel runs sendmsg4, not sendmsg6, for a datagram sent to a mapped
 * address, and connect6, recvmsg6, getpeername6 for the rest: both ways end in the same
 * IPv4 translation.) An IPv6 frontend's L7 proxy flag is not served (the per-packet IPv6
 * path balances it to its slots too), nor a NodePort on [::1] or [::]. IPv6 translations and
 * refusals write IPv6 flow events (lib/events6.h), mapped ones IPv4 events.
 *
 * Only sockets in the node's network namespace (jnc_node_cfg's host_netns_cookie) and in
 * this node's pods' (jnc_pod_netns, by netns cookie, written by the agent as endpoints
 * register; empty with --socket-lb-hostns-only, as Cilium's socketLB.hostNamespaceOnly) are
 * translated: a pod that opted out, or of no entry, is translated per packet by
 * from_endpoint, and lab nodes on one machine share one cgroup hierarchy, so each node's
 * programs see every process of the machine and must leave the other namespaces alone. A
 * socket translated here sends to the backend itself, so from_endpoint sees no frontend and
 * translates nothing again (no conntrack entry either).
 *
 * A pod's unbound socket stands for its pod's address (recorded in jnc_pod_netns) in the
 * selection, as the per-packet path sees the packets' source: ClientIP affinity, Maglev and
 * skipRedirectFromBackend (lib/lrp.h, shared with from_endpoint) decide alike on both paths.
 * A pod reaching itself through a service connects to its own address (no hairpin NAT).
 *
 * Backend selection is the datapath's (lib/lb4.h, lib/lb6.h): ClientIP affinity, Maglev,
 * random, over the slots the agent wrote (active, topology-filtered backends). The frontend
 * a socket was translated from is remembered per (socket cookie, backend) in jnc_lb4_sk_rev
 * or jnc_lb6_sk_rev for the reverse direction.
 */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "junction_abi.h"
#include "lib/variant.h"
#include "lib/events.h"
#include "lib/events6.h"
#include "lib/lb4.h"
#include "lib/lb6.h"
#include "lib/lrp.h"
#include "lib/lrp6.h"
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* What a cgroup sock_addr program returns: 1 lets the call go on (with the address as the
 * program left it), 0 fails it (with bpf_set_retval's error, else EPERM). */
#define JNC_SYS_PROCEED 1
#define JNC_SYS_REJECT 0

/* The client a socket stands for when it is not bound to an address yet: its pod's
 * addresses, or none (0, ::) for the node's own sockets. */
struct jnc_sock_client {
	__be32 address4;
	__be32 address6[4];
	__u8 pod; /* a pod's socket, not the node's */
};

/*
 * The node's settings when socket LB is on and this socket lives in the node's network
 * namespace or in one of this node's pods' that did not opt out (its addresses then in
 * *client); NULL for every other socket (opted-out pods, other lab nodes, the machine's own).
 */
static __always_inline const struct junction_node_config *
socket_config(struct bpf_sock_addr *ctx, struct jnc_sock_client *client)
{
	const __u32 zero = 0;
	const struct junction_node_config *config = bpf_map_lookup_elem(&jnc_node_cfg, &zero);
	struct junction_pod_netns_key key = {};
	struct junction_pod_netns *pod;

	if (!config || !config->host_netns_cookie)
		return NULL;
	key.cookie = bpf_get_netns_cookie(ctx);
	if (key.cookie == config->host_netns_cookie)
		return config;
	pod = bpf_map_lookup_elem(&jnc_pod_netns, &key);
	if (!pod || (pod->flags & JUNCTION_POD_NETNS_F_NO_SOCKET_LB))
		return NULL;
	if (client) {
		client->pod = 1;
		client->address4 = pod->address4;
		jnc_addr6_copy(client->address6, pod->address6);
	}
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
lookup_frontend(struct junction_lb4_service_key *key, const struct junction_node_config *config,
		const struct jnc_sock_client *client)
{
	struct junction_lb4_service *service = bpf_map_lookup_elem(&jnc_lb4_svc, key);
	__u16 port = bpf_ntohs(key->port);

	if (service)
		return service;
	/* A pod's 0.0.0.0 and 127.0.0.0/8 are its own loopback, no NodePort's (as per packet,
	 * where such packets never leave the pod). */
	if (client->pod)
		return NULL;
	if (!is_local_wildcard(key->address) || !config->nodeport_max || port < config->nodeport_min ||
	    port > config->nodeport_max)
		return NULL;
	key->address = 0;
	return bpf_map_lookup_elem(&jnc_lb4_svc, key);
}

/*
 * The connection as lib/lb4.h's selection sees a packet. The client is the socket's bound
 * address, else its pod's address (the source its packets will carry), else 0 (the node
 * itself: its affinity is one client, whichever source address routing gives it later). The
 * source port is not chosen yet when an unbound socket connects; a random one stands in, so
 * Maglev spreads the connections over the table instead of sending them all to one slot.
 */
static __always_inline void socket_as_packet(struct bpf_sock_addr *ctx,
					     const struct jnc_sock_client *client, __u8 proto,
					     __be32 daddr, __be16 dport, struct jnc_packet *packet)
{
	struct bpf_sock *sk = ctx->sk;
	__u16 sport = 0;

	packet->saddr = 0;
	if (sk) {
		packet->saddr = sk->src_ip4;
		sport = sk->src_port; /* host order in struct bpf_sock */
	}
	if (!packet->saddr)
		packet->saddr = client->address4;
	if (!sport)
		sport = bpf_get_prandom_u32();
	packet->sport = bpf_htons(sport);
	packet->daddr = daddr;
	packet->dport = dport;
	packet->proto = proto;
}

/* What a frontend lookup decided for one destination address (else a negative errno: the
 * call fails with it). */
#define JNC_SOCK_UNTOUCHED 0 /* not a frontend: the call goes on unchanged */
#define JNC_SOCK_XLATED 1    /* a frontend: the backend came back */

/*
 * An IPv4 destination (address:port, `proto`): a frontend's address becomes one of its
 * backends' (in *to), its reverse entry recorded. Each translation or refusal is a flow
 * event (lib/events.h; `connect`: one per connection).
 */
static __always_inline int frontend_to_backend4(struct bpf_sock_addr *ctx,
						const struct junction_node_config *config,
						const struct jnc_sock_client *client, int connect,
						__be32 address, __be16 port, __u8 proto,
						struct junction_lb4_backend *to)
{
	struct junction_lb4_service_key key = {};
	struct junction_lb4_backend *backend = NULL;
	struct junction_lb4_sock_key reverse_key = {};
	struct junction_lb4_sock_revnat reverse = {};
	struct junction_lb4_service *service;
	struct junction_lb4_backend proxy = {};
	struct jnc_packet packet = {};
	__u8 lrp;
	__u32 id;

	key.address = address;
	key.port = port;
	key.proto = proto;
	/* What the application asked for; recvmsg and getpeername give it back. */
	reverse.address = address;
	reverse.port = port;
	service = lookup_frontend(&key, config, client);
	if (!service)
		return JNC_SOCK_UNTOUCHED;
	socket_as_packet(ctx, client, proto, address, port, &packet);
	lrp = service->flags & JUNCTION_SVC_F_LOCAL_REDIRECT ? JUNCTION_FLOW_F_LRP : 0;
	/* An L7 proxy frontend: the node's own connections go to the proxy's listener on
	 * 127.0.0.1:proxy_port (as Cilium's socket LB does for host-namespace clients), which
	 * stands in for the backend below; the packet path never sees the VIP. A pod's
	 * 127.0.0.1 is its own: its connection is left to from_endpoint, which hands it to the
	 * proxy per packet (lib/proxy.h). */
	if (proto == IPPROTO_TCP && (service->flags & JUNCTION_SVC_F_L7_PROXY) && client->pod)
		return JNC_SOCK_UNTOUCHED;
	if (proto == IPPROTO_TCP && (service->flags & JUNCTION_SVC_F_L7_PROXY) &&
	    service->proxy_port) {
		proxy.address = bpf_htonl(0x7f000001);
		proxy.port = bpf_htons(service->proxy_port);
		proxy.proto = IPPROTO_TCP;
		backend = &proxy;
		goto translate;
	}
	/* skipRedirectFromBackend, as from_endpoint decides it: the original Service's frontend,
	 * or none (the call goes on untouched, as the packet would pass). */
	service = lrp_skip_from_backend(&packet, &key, service);
	if (!service)
		return JNC_SOCK_UNTOUCHED;
	/* As kube-proxy's REJECT for a service without endpoints: refused at once. */
	if (service->count == 0) {
		jnc_emit_sock(bpf_get_socket_cookie(ctx), &packet, NULL, service->rev_nat_id,
			      JUNCTION_DROP_NO_BACKEND, connect, lrp);
		return -ECONNREFUSED;
	}
	id = select_backend(&packet, &key, service, bpf_ktime_get_ns(), &backend);
	if (!id || !backend) {
		jnc_emit_sock(bpf_get_socket_cookie(ctx), &packet, NULL, service->rev_nat_id,
			      JUNCTION_DROP_NO_BACKEND, connect, lrp);
		return -ECONNREFUSED;
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
	    proto == IPPROTO_UDP)
		return -ENOMEM;
	jnc_emit_sock(reverse_key.cookie, &packet, backend, service->rev_nat_id, 0, connect, lrp);
	*to = *backend;
	return JNC_SOCK_XLATED;
}

/* The IPv6 connection as lib/lb6.h's selection sees a packet (socket_as_packet's rules). */
static __always_inline void socket_as_packet6(struct bpf_sock_addr *ctx,
					      const struct jnc_sock_client *client, __u8 proto,
					      const __be32 *daddr, __be16 dport,
					      struct jnc_packet6 *packet)
{
	struct bpf_sock *sk = ctx->sk;
	__u16 sport = 0;

	if (sk) {
		packet->saddr[0] = sk->src_ip6[0];
		packet->saddr[1] = sk->src_ip6[1];
		packet->saddr[2] = sk->src_ip6[2];
		packet->saddr[3] = sk->src_ip6[3];
		sport = sk->src_port;
	}
	if (!(packet->saddr[0] | packet->saddr[1] | packet->saddr[2] | packet->saddr[3]))
		jnc_addr6_copy(packet->saddr, client->address6);
	if (!sport)
		sport = bpf_get_prandom_u32();
	packet->sport = bpf_htons(sport);
	jnc_addr6_copy(packet->daddr, daddr);
	packet->dport = dport;
	packet->proto = proto;
}

/*
 * An IPv6 destination: frontend_to_backend4's twin over jnc_lb6_svc and lib/lb6.h's
 * select_backend6 (the per-packet path's selection, so affinity entries are shared with it).
 */
static __always_inline int frontend_to_backend6(struct bpf_sock_addr *ctx,
						const struct jnc_sock_client *client, int connect,
						const __be32 *address, __be16 port, __u8 proto,
						struct junction_lb6_backend *to)
{
	struct junction_lb6_service_key key = {};
	struct junction_lb6_backend *backend = NULL;
	struct junction_lb6_sock_key reverse_key = {};
	struct junction_lb6_sock_revnat reverse = {};
	struct junction_lb4_service *service;
	struct jnc_packet6 packet = {};
	__u8 lrp;
	__u32 id;

	jnc_addr6_copy(key.address, address);
	key.port = port;
	key.proto = proto;
	service = bpf_map_lookup_elem(&jnc_lb6_svc, &key);
	if (!service)
		return JNC_SOCK_UNTOUCHED;
	socket_as_packet6(ctx, client, proto, address, port, &packet);
	lrp = service->flags & JUNCTION_SVC_F_LOCAL_REDIRECT ? JUNCTION_FLOW_F_LRP : 0;
	/* skipRedirectFromBackend, as from_endpoint decides it (lib/lrp6.h). */
	service = lrp6_skip_from_backend(&packet, &key, service);
	if (!service)
		return JNC_SOCK_UNTOUCHED;
	if (service->count == 0) {
		jnc_emit_sock6(bpf_get_socket_cookie(ctx), &packet, NULL, service->rev_nat_id,
			       JUNCTION_DROP_NO_BACKEND, connect, lrp);
		return -ECONNREFUSED;
	}
	id = select_backend6(&packet, &key, service, bpf_ktime_get_ns(), &backend);
	if (!id || !backend) {
		jnc_emit_sock6(bpf_get_socket_cookie(ctx), &packet, NULL, service->rev_nat_id,
			       JUNCTION_DROP_NO_BACKEND, connect, lrp);
		return -ECONNREFUSED;
	}
	reverse_key.cookie = bpf_get_socket_cookie(ctx);
	jnc_addr6_copy(reverse_key.address, backend->address);
	reverse_key.port = backend->port;
	jnc_addr6_copy(reverse.address, address);
	reverse.port = port;
	reverse.rev_nat_id = service->rev_nat_id;
	/* As for IPv4: a UDP send without its reverse entry would get unrecognisable replies. */
	if (bpf_map_update_elem(&jnc_lb6_sk_rev, &reverse_key, &reverse, BPF_ANY) < 0 &&
	    proto == IPPROTO_UDP)
		return -ENOMEM;
	jnc_emit_sock6(reverse_key.cookie, &packet, backend, service->rev_nat_id, 0, connect, lrp);
	*to = *backend;
	return JNC_SOCK_XLATED;
}

/* The call's verdict for a lookup's outcome: a negative errno fails it with that error. */
static __always_inline int verdict(int outcome)
{
	if (outcome >= 0)
		return JNC_SYS_PROCEED;
	bpf_set_retval(outcome);
	return JNC_SYS_REJECT;
}

/* connect4 and sendmsg4. */
static __always_inline int translate_to_backend4(struct bpf_sock_addr *ctx, int connect)
{
	const struct junction_node_config *config;
	struct junction_lb4_backend backend = {};
	struct jnc_sock_client client = {};
	__u8 proto = ctx->protocol;
	int outcome;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return JNC_SYS_PROCEED;
	config = socket_config(ctx, &client);
	if (!config)
		return JNC_SYS_PROCEED;
	outcome = frontend_to_backend4(ctx, config, &client, connect, ctx->user_ip4,
				       (__be16)ctx->user_port, proto, &backend);
	if (outcome == JNC_SOCK_XLATED) {
		ctx->user_ip4 = backend.address;
		ctx->user_port = (__u32)backend.port;
	}
	return verdict(outcome);
}

/* ::ffff:a.b.c.d, an IPv4 address on a dual-stack AF_INET6 socket. */
static __always_inline int is_v4_mapped(const __be32 *address)
{
	return address[0] == 0 && address[1] == 0 && address[2] == bpf_htonl(0xffff);
}

/* user_ip6 is read and written one 32-bit word at a time: the only access size the
 * verifier allows for a write (and the one it allows on every kernel for a read). */
static __always_inline void user_address6(const struct bpf_sock_addr *ctx, __be32 *address)
{
	address[0] = ctx->user_ip6[0];
	address[1] = ctx->user_ip6[1];
	address[2] = ctx->user_ip6[2];
	address[3] = ctx->user_ip6[3];
}

static __always_inline void set_user_address6(struct bpf_sock_addr *ctx, const __be32 *address)
{
	ctx->user_ip6[0] = address[0];
	ctx->user_ip6[1] = address[1];
	ctx->user_ip6[2] = address[2];
	ctx->user_ip6[3] = address[3];
}

/* connect6 and sendmsg6: an IPv6 frontend, or an IPv4 one in a mapped address. */
static __always_inline int translate_to_backend6(struct bpf_sock_addr *ctx, int connect)
{
	const struct junction_node_config *config;
	struct junction_lb6_backend backend6 = {};
	struct junction_lb4_backend backend4 = {};
	struct jnc_sock_client client = {};
	__be16 port = (__be16)ctx->user_port;
	__u8 proto = ctx->protocol;
	__be32 address[4];
	int outcome;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return JNC_SYS_PROCEED;
	config = socket_config(ctx, &client);
	if (!config)
		return JNC_SYS_PROCEED;
	user_address6(ctx, address);
	if (is_v4_mapped(address)) {
		outcome = frontend_to_backend4(ctx, config, &client, connect, address[3], port,
					       proto, &backend4);
		if (outcome == JNC_SOCK_XLATED) {
			/* The prefix stays: the socket connects to ::ffff:<backend>. */
			ctx->user_ip6[3] = backend4.address;
			ctx->user_port = (__u32)backend4.port;
		}
		return verdict(outcome);
	}
	outcome = frontend_to_backend6(ctx, &client, connect, address, port, proto, &backend6);
	if (outcome == JNC_SOCK_XLATED) {
		set_user_address6(ctx, backend6.address);
		ctx->user_port = (__u32)backend6.port;
	}
	return verdict(outcome);
}

/* The frontend socket `cookie` was translated from, for an IPv4 backend address:port. */
static __always_inline struct junction_lb4_sock_revnat *frontend_of4(__u64 cookie, __be32 address,
								     __be16 port)
{
	struct junction_lb4_sock_key key = {};

	key.cookie = cookie;
	key.address = address;
	key.port = port;
	return bpf_map_lookup_elem(&jnc_lb4_sk_rev, &key);
}

/* recvmsg4 and getpeername4: a backend this socket was translated to reads as its frontend. */
static __always_inline int translate_to_frontend4(struct bpf_sock_addr *ctx)
{
	struct junction_lb4_sock_revnat *reverse;

	if (!socket_config(ctx, NULL))
		return JNC_SYS_PROCEED;
	reverse = frontend_of4(bpf_get_socket_cookie(ctx), ctx->user_ip4, (__be16)ctx->user_port);
	if (!reverse)
		return JNC_SYS_PROCEED;
	ctx->user_ip4 = reverse->address;
	ctx->user_port = (__u32)reverse->port;
	return JNC_SYS_PROCEED;
}

/* recvmsg6 and getpeername6: the same, for an IPv6 backend or an IPv4-mapped one. */
static __always_inline int translate_to_frontend6(struct bpf_sock_addr *ctx)
{
	struct junction_lb6_sock_key key = {};
	struct junction_lb4_sock_revnat *reverse4;
	struct junction_lb6_sock_revnat *reverse6;
	__be16 port = (__be16)ctx->user_port;
	__u64 cookie;
	__be32 address[4];

	if (!socket_config(ctx, NULL))
		return JNC_SYS_PROCEED;
	cookie = bpf_get_socket_cookie(ctx);
	user_address6(ctx, address);
	if (is_v4_mapped(address)) {
		reverse4 = frontend_of4(cookie, address[3], port);
		if (!reverse4)
			return JNC_SYS_PROCEED;
		ctx->user_ip6[3] = reverse4->address;
		ctx->user_port = (__u32)reverse4->port;
		return JNC_SYS_PROCEED;
	}
	key.cookie = cookie;
	jnc_addr6_copy(key.address, address);
	key.port = port;
	reverse6 = bpf_map_lookup_elem(&jnc_lb6_sk_rev, &key);
	if (!reverse6)
		return JNC_SYS_PROCEED;
	set_user_address6(ctx, reverse6->address);
	ctx->user_port = (__u32)reverse6->port;
	return JNC_SYS_PROCEED;
}

/* ---- Entry points ---------------------------------------------------------------------- */

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_backend4(ctx, 1);
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_backend4(ctx, 0);
}

/* recvmsg and getpeername hooks must return 1: they can only rewrite, never refuse. */
SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_frontend4(ctx);
}

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_frontend4(ctx);
}

SEC("cgroup/connect6")
int sock_connect6(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_backend6(ctx, 1);
}

SEC("cgroup/sendmsg6")
int sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_backend6(ctx, 0);
}

SEC("cgroup/recvmsg6")
int sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_frontend6(ctx);
}

SEC("cgroup/getpeername6")
int sock_getpeername6(struct bpf_sock_addr *ctx)
{
	JNC_VARIANT_MARK();
	return translate_to_frontend6(ctx);
}
