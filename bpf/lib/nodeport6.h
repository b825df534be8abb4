/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * North-south over IPv6: netdev.c's from_netdev and to_netdev for an IPv6 frame, the twins of
 * its IPv4 paths over jnc_lb6_* and jnc_ct6 (read netdev.c's header for the cases):
 *   - a reply to a connection this node SNATed: back to the client from the frontend, by FIB;
 *   - a packet carrying the DSR Destination Options header (lib/dsr6.h; the backend's node): a
 *     REPLY entry backend -> client flagged DSR with the option's frontend, then up to the pod;
 *   - a packet to an external IPv6 frontend (NodePort on the devices' IPv6 addresses,
 *     ExternalIPs, LoadBalancer ingress): a backend picked as from_endpoint does (lib/lb6.h),
 *     then a local backend by DNAT only, a remote one by DSR (with JUNCTION_SVC_F_DSR) or by
 *     DNAT + SNAT to the device's IPv6 address (junction_device.address6) and a port of the
 *     SNAT range (lib/snat6.h);
 *   - a forwarded packet that would not fit the route's MTU (or the device's, with the DSR
 *     header): ICMPv6 Packet Too Big back to its sender (FRAG_NEEDED).
 * Every conntrack insert is checked: a failed one drops the packet as CT_MAP_FULL (jnc_ct6
 * may be a plain hash map that refuses when full). to_netdev: a REPLY entry flagged EXTERNAL
 * or DSR gets the frontend back as source.
 * ICMPv6 never reaches this file: from_netdev hands it to from_netdev_icmp, which translates
 * errors about SNAT connections back (lib/icmp_error_ns.h) and passes the rest (Neighbor
 * Discovery keeps its hop limit 255 and its addresses). Everything else passes untouched:
 * fragments, malformed
 * headers (the kernel judges them), L7 proxy frontends (IPv4 only).
 * Flow events as netdev.c's IPv4 ones (lib/events6.h): a connection's first packet with its
 * translation and how it leaves (JUNCTION_FLOW_F_DSR, _SNAT, neither for a local backend),
 * FIN and RST, every handled packet at the ALL level; drops through count_drop.
 */
#ifndef JUNCTION_LIB_NODEPORT6_H
#define JUNCTION_LIB_NODEPORT6_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"
#include "lib/counters.h"
#include "lib/dsr6.h"
#include "lib/events6.h"
#include "lib/fib6.h"
#include "lib/icmp6.h"
#include "lib/lb6.h"
#include "lib/maps.h"
#include "lib/nat6.h"
#include "lib/parse6.h"
#include "lib/snat6.h"

static __always_inline int jnc_route6_usable(int verdict)
{
	return verdict == BPF_FIB_LKUP_RET_SUCCESS || verdict == BPF_FIB_LKUP_RET_NO_NEIGH;
}

/* The flow event of a north-south packet passed on at `point` (lib/events6.h): translated to
 * nat:nat_port (`flags` says which way), with an SNAT connection's other end snat:snat_port
 * (snat NULL: none). Written straight into the ring, nothing more on the caller's stack. */
static __always_inline void jnc_np6_trace(const struct __sk_buff *skb,
					  const struct jnc_packet6 *packet, __u32 point, __u8 flags,
					  const __be32 *nat, __be16 nat_port, __u16 rev_nat_id,
					  const __be32 *snat, __be16 snat_port)
{
	struct junction_flow_event6 *event = jnc_trace6_begin(
		skb, packet, packet->daddr, packet->dport, point,
		flags | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN, 0);

	if (!event)
		return;
	jnc_addr6_copy(event->nat_address, nat);
	event->nat_port = nat_port;
	event->rev_nat_id = rev_nat_id;
	if (snat) {
		jnc_addr6_copy(event->snat_address, snat);
		event->snat_port = snat_port;
	}
	jnc_event6_submit(event);
}


/*
 * The stack: a BPF program has 512 bytes for all its frames at once, and the IPv6 keys,
 * entries and addresses are large, so the work is cut into functions that are never inlined
 * (each a frame of its own, gone when it returns) and arranged so that no two large frames
 * are live together: the root (jnc_from_netdev6) calls the backend selection, then the
 * forward, then (on their answer) the ICMPv6 error, one after the other, never nested.
 * netdev.c reaches the root by a tail call, so IPv4's frame is not under it either.
 */

/* A forward's verdict when the packet does not fit: the root answers Packet Too Big. */
#define JNC_NP6_TOO_BIG (-2000)
/* jnc_np6_lb's answers besides a backend id (> 0). */
#define JNC_NP6_NO_BACKEND (-1)
#define JNC_NP6_CT_FULL (-2)
#define JNC_NP6_PASS (-3)
#define JNC_NP6_UNREACHABLE (-4)
/* jnc_np6_lb's connection kind: the CT flag, with this bit for a new connection. */
#define JNC_NP6_NEW 0x8000

/* An ICMPv6 error (lib/icmp6.h) in a frame of its own. */
static __noinline int jnc_np6_icmp_error(struct __sk_buff *skb, const struct jnc_packet6 *packet,
					 __u8 type, __u8 code, __u32 mtu)
{
	return jnc_icmp6_error(skb, packet, type, code, mtu);
}

/* A route that refuses the packet (netdev.c's route_refused): TOO_BIG with *mtu (what the
 * sender's packets may be), or dropped FIB_FAILED. */
static __always_inline int jnc_route6_refused(struct __sk_buff *skb, int verdict, __u32 mtu,
					      __u32 *mtu_out)
{
	if (verdict == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		*mtu_out = mtu;
		return JNC_NP6_TOO_BIG;
	}
	return drop(skb, JUNCTION_DROP_FIB_FAILED, JUNCTION_DIR_FROM_NETDEV);
}

static __always_inline int jnc_fib6_send(struct __sk_buff *skb, struct bpf_fib_lookup *route,
					 int verdict)
{
	verdict = jnc_fib_redirect6(skb, route, verdict);
	return verdict < 0 ? drop(skb, JUNCTION_DROP_FIB_FAILED, JUNCTION_DIR_FROM_NETDEV)
			   : verdict;
}

/* The DNAT every forward starts with: the frontend becomes the backend. */
static __always_inline int jnc_np6_dnat(struct __sk_buff *skb, const struct jnc_packet6 *packet,
					const struct junction_lb6_backend *backend)
{
	return jnc_nat6_rewrite(skb, packet, JNC_IPV6_DADDR_OFF, packet->daddr, backend->address,
				packet->l4_off + 2, packet->dport, backend->port);
}

/* DSR to a remote backend: DNAT, the header when the packet needs it, out by FIB. Every
 * packet that will leave must fit the route's MTU and, with the header, the device's. */
static __noinline int jnc_np6_forward_dsr(struct __sk_buff *skb, const struct jnc_packet6 *packet,
					  const struct junction_lb6_backend *backend,
					  __u32 *mtu_out)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct bpf_fib_lookup route = {};
	struct junction_device *device;
	int with_option = jnc_dsr6_wants_option(packet);
	__u32 grow = with_option ? JUNCTION_DSR6_EXT_LEN : 0;
	__u32 wire = jnc_wire_len_at(skb, packet->l4_off, packet->proto) + grow;
	int verdict;

	verdict = jnc_fib_route6(skb, &route, packet->saddr, backend->address, packet->proto,
				 wire);
	if (!jnc_route6_usable(verdict))
		return jnc_route6_refused(skb, verdict, route.mtu_result - grow, mtu_out);
	device = jnc_device_of(route.ifindex, skb->ifindex);
	if (with_option && device && wire > device->mtu)
		return jnc_route6_refused(skb, BPF_FIB_LKUP_RET_FRAG_NEEDED, device->mtu - grow,
					  mtu_out);
	if (jnc_np6_dnat(skb, packet, backend) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	if (with_option && jnc_dsr6_insert_option(skb, packet->daddr, packet->dport) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	return jnc_fib6_send(skb, &route, verdict);
}

/* An SNAT connection: the node's address and port it leaves with, and for a new one what
 * its entries hold. */
struct jnc_np6_snat {
	__u64 last_seen;
	__be32 node[4];
	__u32 backend_id;
	__u16 rev_nat_id;
	__be16 port;
};

/*
 * A new SNAT connection: claims a port on the IPv6 address of the device the route leaves by
 * and records both entries (REPLY by the claim, then SERVICE). Its own route lookup (the
 * forward repeats it) keeps this frame off the forward's. 0; -1 when the route is not usable
 * (nothing claimed: the forward answers it); or the drop reason.
 */
static __noinline int jnc_np6_snat_new(struct __sk_buff *skb, const struct jnc_packet6 *packet,
				       const struct junction_lb6_backend *backend,
				       struct jnc_np6_snat *snat)
{
	struct junction_ct6_entry reply = {
		.last_seen = snat->last_seen,
		.backend_id = snat->backend_id,
		.rev_nat_id = snat->rev_nat_id,
		.flags = JUNCTION_CT_F_SNAT,
		.nat_port = packet->sport,
	};
	struct junction_ct6_key key;
	struct junction_device *device;
	__u32 egress;
	int full;

	{
		struct bpf_fib_lookup route = {};
		int verdict = jnc_fib_route6(skb, &route, packet->saddr, backend->address,
					     packet->proto,
					     jnc_wire_len_at(skb, packet->l4_off, packet->proto));

		if (!jnc_route6_usable(verdict))
			return -1;
		egress = route.ifindex;
	}
	jnc_addr6_copy(reply.nat_address, packet->saddr);
	device = jnc_device_of(egress, skb->ifindex);
	if (!device || jnc_addr6_is_zero(device->address6))
		return JUNCTION_DROP_NAT_FAILED;
	jnc_addr6_copy(snat->node, device->address6);
	snat->port = jnc_snat6_claim_port(packet, backend, snat->node, &reply, &full);
	if (!snat->port)
		return full ? JUNCTION_DROP_CT_MAP_FULL : JUNCTION_DROP_NO_NAT_PORT;
	/* The SERVICE entry: the same, with the node's address and port. */
	jnc_addr6_copy(reply.nat_address, snat->node);
	reply.nat_port = snat->port;
	key = ct6_key_of(packet, JUNCTION_CT_SERVICE);
	if (bpf_map_update_elem(&jnc_ct6, &key, &reply, BPF_ANY) < 0) {
		key = ct6_key(backend->address, snat->node, backend->port, snat->port,
			      packet->proto, JUNCTION_CT_REPLY);
		bpf_map_delete_elem(&jnc_ct6, &key);
		snat->port = 0;
		return JUNCTION_DROP_CT_MAP_FULL;
	}
	return 0;
}

/* A FIN or RST of an existing SNAT connection, seen client -> backend. */
static __noinline void jnc_np6_snat_closing(const struct jnc_packet6 *packet,
					    const struct junction_lb6_backend *backend,
					    const struct jnc_np6_snat *snat)
{
	const struct junction_ct6_key service = ct6_key_of(packet, JUNCTION_CT_SERVICE);
	const struct junction_ct6_key reply = ct6_key(backend->address, snat->node, backend->port,
						      snat->port, packet->proto, JUNCTION_CT_REPLY);

	jnc_snat6_mark_closing(&service, &reply);
}

/*
 * SNAT to a remote backend (netdev.c's forward_snat): with the address and port of `snat`
 * (a new connection's, claimed by jnc_np6_snat_new), or, when its port is 0, of the
 * connection's SERVICE entry (written back into `snat`). DNAT + SNAT, out by FIB.
 */
static __noinline int jnc_np6_forward_snat(struct __sk_buff *skb,
					   const struct jnc_packet6 *packet,
					   const struct junction_lb6_backend *backend,
					   struct jnc_np6_snat *snat, __u32 *mtu_out)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct bpf_fib_lookup route = {};
	int verdict;

	verdict = jnc_fib_route6(skb, &route, packet->saddr, backend->address, packet->proto,
				 jnc_wire_len_at(skb, packet->l4_off, packet->proto));
	if (!jnc_route6_usable(verdict))
		return jnc_route6_refused(skb, verdict, route.mtu_result, mtu_out);
	if (!snat->port) {
		const struct junction_ct6_key key = ct6_key_of(packet, JUNCTION_CT_SERVICE);
		struct junction_ct6_entry *entry = bpf_map_lookup_elem(&jnc_ct6, &key);

		if (!entry || !(entry->flags & JUNCTION_CT_F_SNAT))
			return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
		jnc_addr6_copy(snat->node, entry->nat_address);
		snat->port = entry->nat_port;
	}
	if (jnc_np6_dnat(skb, packet, backend) < 0 ||
	    jnc_nat6_rewrite(skb, packet, JNC_IPV6_SADDR_OFF, packet->saddr, snat->node,
			     packet->l4_off, packet->sport, snat->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	return jnc_fib6_send(skb, &route, verdict);
}

/* Both entries of a connection to a backend on this node (reply first, as lb4.h), flagged
 * EXTERNAL: to_netdev translates its replies. 0, or the failed update's error. */
static __always_inline int jnc_np6_ct_local(const struct jnc_packet6 *packet,
					    const struct junction_lb6_backend *backend,
					    __u32 backend_id, __u16 rev_nat_id, __u64 now)
{
	const struct junction_ct6_key service_key = ct6_key_of(packet, JUNCTION_CT_SERVICE);
	const struct junction_ct6_key reply_key =
		ct6_key(backend->address, packet->saddr, backend->port, packet->sport,
			packet->proto, JUNCTION_CT_REPLY);
	const struct junction_ct6_entry entry = {
		.last_seen = now,
		.backend_id = backend_id,
		.rev_nat_id = rev_nat_id,
		.flags = JUNCTION_CT_F_EXTERNAL,
	};
	int err = bpf_map_update_elem(&jnc_ct6, &reply_key, &entry, BPF_ANY);

	if (err < 0)
		return err;
	err = bpf_map_update_elem(&jnc_ct6, &service_key, &entry, BPF_ANY);
	if (err < 0)
		bpf_map_delete_elem(&jnc_ct6, &reply_key);
	return err;
}

/* The SERVICE entry of an existing north-south connection to this frontend whose backend is
 * still there (and may still take it: a SYN avoids a terminating one), else NULL. */
static __always_inline struct junction_ct6_entry *
jnc_np6_ct_lookup(const struct jnc_packet6 *packet, const struct junction_lb4_service *service,
		  __u64 now)
{
	const struct junction_ct6_key key = ct6_key_of(packet, JUNCTION_CT_SERVICE);
	struct junction_lb4_backend_key backend_key = {};
	struct junction_lb6_backend *backend;
	struct junction_ct6_entry *entry = bpf_map_lookup_elem(&jnc_ct6, &key);

	if (!entry || entry->rev_nat_id != service->rev_nat_id || !entry->backend_id)
		return NULL;
	backend_key.backend_id = entry->backend_id;
	backend = bpf_map_lookup_elem(&jnc_lb6_be, &backend_key);
	if (!backend || (jnc_tcp6_opens(packet) && (backend->flags & JUNCTION_BE_F_TERMINATING)))
		return NULL;
	/* A SYN on a closing SNAT connection: a new connection on a reused client port. */
	if ((entry->flags & JUNCTION_CT_F_SNAT) && (entry->flags & JUNCTION_CT_F_CLOSING) &&
	    jnc_tcp6_opens(packet))
		return NULL;
	entry->last_seen = now;
	return entry;
}

/*
 * The backend of a packet to an external frontend (netdev.c's nodeport_lb, up to the
 * forward): the connection's, or a new one picked as from_endpoint does, with the conntrack
 * entries of a local or DSR connection written (an SNAT one's are written by
 * jnc_np6_snat_new). The backend id, with *kind its CT flag (EXTERNAL, DSR or SNAT;
 * JNC_NP6_NEW for a new connection) and snat->rev_nat_id the service's; or JNC_NP6_PASS (not
 * an external frontend), JNC_NP6_UNREACHABLE (no backend for this node), JNC_NP6_NO_BACKEND,
 * JNC_NP6_CT_FULL.
 */
static __noinline int jnc_np6_lb(const struct jnc_packet6 *packet, __u64 now, __u32 *kind,
				 struct jnc_np6_snat *snat)
{
	struct junction_lb6_service_key frontend = {};
	struct junction_lb6_backend *backend = NULL;
	struct junction_lb4_service *service;
	struct junction_ct6_entry *entry;
	__u32 id;

	jnc_addr6_copy(frontend.address, packet->daddr);
	frontend.port = packet->dport;
	frontend.proto = packet->proto;
	service = bpf_map_lookup_elem(&jnc_lb6_svc, &frontend);
	if (!service || !(service->flags & JUNCTION_SVC_F_EXTERNAL) ||
	    (service->flags & JUNCTION_SVC_F_L7_PROXY))
		return JNC_NP6_PASS;
	/* No backend for this node: refused at once, as kube-proxy's REJECT. */
	if (service->count == 0)
		return JNC_NP6_UNREACHABLE;
	snat->rev_nat_id = service->rev_nat_id;
	entry = jnc_np6_ct_lookup(packet, service, now);
	if (entry) {
		*kind = entry->flags & (JUNCTION_CT_F_EXTERNAL | JUNCTION_CT_F_DSR | JUNCTION_CT_F_SNAT);
		return entry->backend_id;
	}
	id = select_backend6(packet, &frontend, service, now, &backend);
	if (!id || !backend)
		return JNC_NP6_NO_BACKEND;
	if (backend->flags & JUNCTION_BE_F_LOCAL) {
		*kind = JUNCTION_CT_F_EXTERNAL | JNC_NP6_NEW;
		if (jnc_np6_ct_local(packet, backend, id, service->rev_nat_id, now) < 0)
			return JNC_NP6_CT_FULL;
	} else if (service->flags & JUNCTION_SVC_F_DSR) {
		/* Only the SERVICE entry: no reply comes back through this node. */
		const struct junction_ct6_key key = ct6_key_of(packet, JUNCTION_CT_SERVICE);
		const struct junction_ct6_entry dsr = {
			.last_seen = now,
			.backend_id = id,
			.rev_nat_id = service->rev_nat_id,
			.flags = JUNCTION_CT_F_DSR,
		};

		*kind = JUNCTION_CT_F_DSR | JNC_NP6_NEW;
		if (bpf_map_update_elem(&jnc_ct6, &key, &dsr, BPF_ANY) < 0)
			return JNC_NP6_CT_FULL;
	} else {
		*kind = JUNCTION_CT_F_SNAT | JNC_NP6_NEW;
	}
	return id;
}

/* A backend's reply to a connection this node SNATed: back to the client, from the
 * frontend, out by FIB (netdev.c's snat_reverse). */
static __noinline int jnc_np6_snat_reverse(struct __sk_buff *skb,
					   const struct jnc_packet6 *packet,
					   struct junction_ct6_entry *entry, __u32 *mtu_out)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct junction_lb4_revnat_key revnat_key = { .rev_nat_id = entry->rev_nat_id };
	struct bpf_fib_lookup route = {};
	struct junction_lb6_revnat *revnat;
	__be32 client[4];
	__be16 client_port = entry->nat_port;
	int verdict;

	revnat = bpf_map_lookup_elem(&jnc_lb6_revnat, &revnat_key);
	if (!revnat)
		return TC_ACT_OK; /* the service is gone: the node's stack drops it */
	entry->last_seen = bpf_ktime_get_ns();
	jnc_addr6_copy(client, entry->nat_address);
	if (jnc_tcp6_closes(packet)) {
		const struct junction_ct6_key reply = ct6_key_of(packet, JUNCTION_CT_REPLY);
		const struct junction_ct6_key service =
			ct6_key(client, revnat->address, client_port, revnat->port, packet->proto,
				JUNCTION_CT_SERVICE);

		jnc_snat6_mark_closing(&service, &reply);
	}
	verdict = jnc_fib_route6(skb, &route, revnat->address, client, packet->proto,
				 jnc_wire_len_at(skb, packet->l4_off, packet->proto));
	if (!jnc_route6_usable(verdict))
		return jnc_route6_refused(skb, verdict, route.mtu_result, mtu_out);
	if (jnc_nat6_rewrite(skb, packet, JNC_IPV6_DADDR_OFF, packet->daddr, client,
			     packet->l4_off + 2, packet->dport, client_port) < 0 ||
	    jnc_nat6_rewrite(skb, packet, JNC_IPV6_SADDR_OFF, packet->saddr, revnat->address,
			     packet->l4_off, packet->sport, revnat->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	verdict = jnc_fib6_send(skb, &route, verdict);
	if (verdict != TC_ACT_SHOT)
		jnc_np6_trace(skb, packet, direction,
			      JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_SNAT, revnat->address,
			      revnat->port, entry->rev_nat_id, client, client_port);
	return verdict;
}

/*
 * On the backend's node, a packet with the DSR header: remember the frontend it names for the
 * replies (netdev.c's dsr_record). An entry already there for the same frontend is only
 * refreshed. Unlike IPv4's best effort, a failed insert drops the packet (CT_MAP_FULL): the
 * replies would leave from the pod's address, which the client resets anyway, and the drop is
 * counted. -1 when the packet has no DSR header.
 */
static __noinline int jnc_np6_dsr_record(struct __sk_buff *skb, const struct jnc_packet6 *packet)
{
	const struct junction_ct6_key key =
		ct6_key(packet->daddr, packet->saddr, packet->dport, packet->sport, packet->proto,
			JUNCTION_CT_REPLY);
	struct junction_ct6_entry entry = {};
	struct junction_flow_event6 *event;
	struct junction_dsr_opt6 option;
	struct junction_ct6_entry *known;
	__u8 flags = JUNCTION_FLOW_F_DSR | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN;

	if (!jnc_dsr6_read_option(skb, packet, &option))
		return -1;
	entry.last_seen = bpf_ktime_get_ns();
	entry.flags = JUNCTION_CT_F_DSR;
	entry.nat_port = option.port;
	jnc_addr6_copy(entry.nat_address, option.address);
	known = bpf_map_lookup_elem(&jnc_ct6, &key);
	if (known && known->flags == JUNCTION_CT_F_DSR &&
	    jnc_addr6_equal(known->nat_address, option.address) && known->nat_port == option.port) {
		known->last_seen = entry.last_seen;
	} else {
		if (bpf_map_update_elem(&jnc_ct6, &key, &entry, BPF_ANY) < 0)
			return drop(skb, JUNCTION_DROP_CT_MAP_FULL, JUNCTION_DIR_FROM_NETDEV);
		flags |= JUNCTION_FLOW_F_NEW;
	}
	/* Traced as the client sent it (netdev.c's IPv4 twin): to the option's frontend, which
	 * became the backend the packet is addressed to. */
	event = jnc_trace6_begin(skb, packet, option.address, option.port,
				 JUNCTION_DIR_FROM_NETDEV, flags, entry.last_seen);
	if (event) {
		jnc_addr6_copy(event->nat_address, packet->daddr);
		event->nat_port = packet->dport;
		jnc_event6_submit(event);
	}
	return TC_ACT_OK;
}

/* The flow event of a packet to an external frontend that was forwarded (`kind`:
 * jnc_np6_lb's), in a frame of its own (see the stack note above). */
static __noinline void jnc_np6_trace_lb(const struct __sk_buff *skb,
					const struct jnc_packet6 *packet,
					const struct junction_lb6_backend *backend,
					const struct jnc_np6_snat *snat, __u32 kind)
{
	__u8 flags = kind & JNC_NP6_NEW ? JUNCTION_FLOW_F_NEW : 0;

	switch (kind & ~JNC_NP6_NEW) {
	case JUNCTION_CT_F_DSR:
		flags |= JUNCTION_FLOW_F_DSR;
		break;
	case JUNCTION_CT_F_SNAT:
		jnc_np6_trace(skb, packet, JUNCTION_DIR_FROM_NETDEV, flags | JUNCTION_FLOW_F_SNAT,
			      backend->address, backend->port, snat->rev_nat_id, snat->node,
			      snat->port);
		return;
	}
	jnc_np6_trace(skb, packet, JUNCTION_DIR_FROM_NETDEV, flags, backend->address,
		      backend->port, snat->rev_nat_id, NULL, 0);
}

/* A forward's verdict, with TOO_BIG answered by Packet Too Big (counted FRAG_NEEDED). */
static __always_inline int jnc_np6_answer(struct __sk_buff *skb, const struct jnc_packet6 *packet,
					  int verdict, __u32 mtu)
{
	if (verdict != JNC_NP6_TOO_BIG)
		return verdict;
	count_drop(skb, JUNCTION_DROP_FRAG_NEEDED, JUNCTION_DIR_FROM_NETDEV);
	return jnc_np6_icmp_error(skb, packet, JNC_ICMP6_PACKET_TOO_BIG, 0, mtu);
}

/* from_netdev for an IPv6 frame (the root: see the stack note above). */
static __always_inline int jnc_from_netdev6(struct __sk_buff *skb)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct junction_lb4_backend_key backend_key = {};
	struct junction_lb6_backend *backend;
	struct junction_ct6_entry *reply;
	struct jnc_packet6 packet = {};
	struct jnc_np6_snat snat = {};
	__u64 now;
	__u32 mtu = 0, kind = 0;
	int verdict, id;

	if (jnc_parse_ipv6(skb, &packet) != JNC_PARSE_OK)
		return TC_ACT_OK;
	{
		const struct junction_ct6_key key = ct6_key_of(&packet, JUNCTION_CT_REPLY);

		reply = bpf_map_lookup_elem(&jnc_ct6, &key);
	}
	if (reply && (reply->flags & JUNCTION_CT_F_SNAT)) {
		verdict = jnc_np6_snat_reverse(skb, &packet, reply, &mtu);
		return jnc_np6_answer(skb, &packet, verdict, mtu);
	}
	verdict = jnc_np6_dsr_record(skb, &packet);
	if (verdict >= 0)
		return verdict;
	now = bpf_ktime_get_ns();
	id = jnc_np6_lb(&packet, now, &kind, &snat);
	if (id == JNC_NP6_PASS)
		return TC_ACT_OK;
	if (id == JNC_NP6_UNREACHABLE) {
		count_drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		return jnc_np6_icmp_error(skb, &packet, JNC_ICMP6_DEST_UNREACH,
					  JNC_ICMP6_PORT_UNREACH, 0);
	}
	if (id == JNC_NP6_CT_FULL)
		return drop(skb, JUNCTION_DROP_CT_MAP_FULL, direction);
	if (id <= 0)
		return drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
	backend_key.backend_id = id;
	backend = bpf_map_lookup_elem(&jnc_lb6_be, &backend_key);
	if (!backend)
		return drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
	switch (kind & ~JNC_NP6_NEW) {
	case JUNCTION_CT_F_EXTERNAL:
		/* A backend on this node: DNAT, the kernel delivers it to the pod. */
		if (jnc_np6_dnat(skb, &packet, backend) < 0)
			return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
		verdict = TC_ACT_OK;
		break;
	case JUNCTION_CT_F_DSR:
		verdict = jnc_np6_forward_dsr(skb, &packet, backend, &mtu);
		break;
	case JUNCTION_CT_F_SNAT:
		/* Claim, forward, then mark closing: one after the other, not nested (the stack). */
		snat.last_seen = now;
		snat.backend_id = id;
		if (kind & JNC_NP6_NEW) {
			int reason = jnc_np6_snat_new(skb, &packet, backend, &snat);

			if (reason > 0)
				return drop(skb, reason, direction);
		}
		verdict = jnc_np6_forward_snat(skb, &packet, backend, &snat, &mtu);
		if (!(kind & JNC_NP6_NEW) && snat.port && jnc_tcp6_closes(&packet))
			jnc_np6_snat_closing(&packet, backend, &snat);
		break;
	default:
		/* An east-west entry on this tuple (a pod's connection): not ours. */
		return TC_ACT_OK;
	}
	if (verdict != JNC_NP6_TOO_BIG && verdict != TC_ACT_SHOT)
		jnc_np6_trace_lb(skb, &packet, backend, &snat, kind);
	return jnc_np6_answer(skb, &packet, verdict, mtu);
}

/* to_netdev for an IPv6 frame: the frontend back as the source of a north-south reply. */
static __noinline int jnc_to_netdev6(struct __sk_buff *skb)
{
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb6_revnat *revnat;
	struct junction_ct6_entry *entry;
	struct jnc_packet6 packet = {};
	struct junction_ct6_key key;
	__be32 address[4];
	__be16 port;
	__u8 flags = JUNCTION_FLOW_F_REPLY;

	if (jnc_parse_ipv6(skb, &packet) != JNC_PARSE_OK)
		return TC_ACT_OK;
	key = ct6_key_of(&packet, JUNCTION_CT_REPLY);
	entry = bpf_map_lookup_elem(&jnc_ct6, &key);
	if (!entry)
		return TC_ACT_OK;
	if (entry->flags & JUNCTION_CT_F_DSR) {
		jnc_addr6_copy(address, entry->nat_address);
		port = entry->nat_port;
		flags |= JUNCTION_FLOW_F_DSR;
	} else if (entry->flags & JUNCTION_CT_F_EXTERNAL) {
		revnat_key.rev_nat_id = entry->rev_nat_id;
		revnat = bpf_map_lookup_elem(&jnc_lb6_revnat, &revnat_key);
		if (!revnat)
			return TC_ACT_OK;
		jnc_addr6_copy(address, revnat->address);
		port = revnat->port;
	} else {
		return TC_ACT_OK;
	}
	entry->last_seen = bpf_ktime_get_ns();
	if (jnc_nat6_rewrite(skb, &packet, JNC_IPV6_SADDR_OFF, packet.saddr, address,
			     packet.l4_off, packet.sport, port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_NETDEV);
	jnc_np6_trace(skb, &packet, JUNCTION_DIR_TO_NETDEV, flags, address, port,
		      entry->rev_nat_id, NULL, 0);
	return TC_ACT_OK;
}

#endif /* JUNCTION_LIB_NODEPORT6_H */
