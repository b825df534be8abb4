// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Node device programs (north-south), attached by the agent to every --devices interface
 * through a clsact qdisc:
 *   from_netdev  tc ingress = packets the node receives from the network
 *   to_netdev    tc egress  = packets the node sends to it
 *
 * from_netdev, IPv4 TCP/UDP:
 *   - a reply to a connection this node SNATed (REPLY entry with JUNCTION_CT_F_SNAT): the
 *     destination goes back to the client, the source to the frontend; forwarded by FIB;
 *   - a packet carrying the DSR option (the backend's node): a REPLY entry backend -> client
 *     flagged DSR with the option's frontend, then passed up to the pod;
 *   - a packet to a frontend flagged JUNCTION_SVC_F_EXTERNAL (NodePort, ExternalIP,
 *     LoadBalancer ingress; exact address, scope 0): a backend picked as from_endpoint does
 *     (lib/lb4.h). Its backend on this node (JUNCTION_BE_F_LOCAL): DNAT only, the kernel
 *     routes it to the pod and to_netdev puts the frontend back on the replies. On another
 *     node, with JUNCTION_SVC_F_DSR: DNAT, the option on a TCP SYN and on every UDP
 *     datagram, forwarded by FIB with the client's source kept; without: DNAT plus SNAT to
 *     the device's address and a port of the SNAT range, forwarded by FIB.
 *   - every packet forwarded by FIB must fit the route's MTU, one segment of a GSO skb
 *     at a time (lib/fib.h's jnc_wire_len); one that does not gets ICMP
 *     fragmentation-needed back to its sender (FRAG_NEEDED);
 *   - a TCP FIN or RST of an SNAT connection, either way, marks both of its entries
 *     JUNCTION_CT_F_CLOSING: its port may be claimed again after the close timeout
 *     (lib/snat.h), and a SYN on its SERVICE entry starts a new connection.
 *   - an L7 proxy frontend's TCP packet: to the node's proxy, unchanged (lib/proxy.h);
 *     the proxy answers from the frontend itself, so its replies need nothing here.
 * to_netdev: a packet matching a REPLY entry flagged EXTERNAL (source := the frontend of
 * its rev_nat_id) or DSR (source := the entry's frontend from the option); an ICMP or
 * ICMPv6 error about an EXTERNAL connection (a local backend's) gets the frontend back in its
 * quote and, from the backend, as source (lib/icmp_error_ns.h).
 * IPv6: the same cases over jnc_lb6_* and jnc_ct6, in lib/nodeport6.h (DSR by Cilium's
 * Destination Options header, lib/dsr6.h; Packet Too Big instead of fragmentation-needed).
 * ICMP and ICMPv6 errors about an SNAT connection (addressed to the node, quoting
 * node:snatport -> backend) go back to the client translated (lib/icmp_error_ns.h, the
 * from_netdev_icmp tail call).
 * Everything else passes untouched both ways: the node's own traffic, ARP, other ICMP and
 * ICMPv6, fragments, even malformed IPv4 or IPv6 (the kernel judges it). Drops are counted with
 * JUNCTION_DIR_FROM_NETDEV / JUNCTION_DIR_TO_NETDEV.
 * Flow events (lib/events.h) for the north-south packets handled here, never the node's own:
 * a connection's first packet with its translation and how it leaves (JUNCTION_FLOW_F_DSR,
 * _SNAT, or neither for a local backend), FIN and RST; every handled packet at the ALL
 * level. A GSO skb is one packet to them. An established packet at the default level costs
 * the level lookup and a flag test.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"
#include "lib/variant.h"
#include "lib/counters.h"
#include "lib/dsr.h"
#include "lib/events.h"
#include "lib/fib.h"
#include "lib/icmp.h"
#include "lib/icmp_error_ns.h"
#include "lib/lb4.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/nodeport6.h"
#include "lib/parse.h"
#include "lib/proxy.h"
#include "lib/snat.h"
#include "lib/verdict.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- Forwarding to a backend --------------------------------------------------------- */

/* A backend on this node: DNAT, and the kernel delivers it to the pod. */
static __always_inline int forward_local(struct __sk_buff *skb, const struct jnc_packet *packet,
					 const struct junction_lb4_backend *backend)
{
	if (jnc_nat_rewrite(skb, packet, JNC_IPV4_DADDR_OFF, packet->daddr, backend->address,
			    packet->l4_off + 2, packet->dport, backend->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_FROM_NETDEV);
	return TC_ACT_OK;
}

/*
 * A route that refuses the packet, on from_netdev: too large for the route's MTU
 * (BPF_FIB_LKUP_RET_FRAG_NEEDED, or the device's when the DSR option would not fit) gets
 * ICMP fragmentation-needed back to its sender with `mtu`, what the sender's packets may be
 * (the route's MTU less what the datapath adds), counted FRAG_NEEDED; a router would
 * fragment a packet without DF instead, but a redirected packet is never fragmented, so it
 * is answered whatever its DF bit. No way out (no route, blackhole, forwarding off):
 * FIB_FAILED.
 */
static __always_inline int route_refused(struct __sk_buff *skb, const struct jnc_packet *packet,
					 int verdict, __u32 mtu, struct jnc_trace *trace)
{
	if (verdict == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		trace->skip = 1; /* the drop event tells it */
		count_drop(skb, JUNCTION_DROP_FRAG_NEEDED, JUNCTION_DIR_FROM_NETDEV);
		return jnc_icmp_unreachable(skb, packet, JNC_ICMP_FRAG_NEEDED, (__u16)mtu);
	}
	return drop(skb, JUNCTION_DROP_FIB_FAILED, JUNCTION_DIR_FROM_NETDEV);
}

/* Whether bpf_fib_lookup's verdict lets the packet be forwarded (NO_NEIGH: by
 * bpf_redirect_neigh). */
static __always_inline int route_usable(int verdict)
{
	return verdict == BPF_FIB_LKUP_RET_SUCCESS || verdict == BPF_FIB_LKUP_RET_NO_NEIGH;
}

/* DSR to a remote backend: DNAT, the option when the packet needs it, out by FIB. Every
 * packet that will leave (one segment of a GSO skb) must fit the route's MTU and, with
 * the option, the device's (jnc_devices); else its sender learns the MTU less the option. */
static __always_inline int forward_dsr(struct __sk_buff *skb, const struct jnc_packet *packet,
				       const struct junction_lb4_backend *backend,
				       struct jnc_trace *trace)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct bpf_fib_lookup route = {};
	struct junction_device *device;
	int with_option = jnc_dsr_wants_option(packet);
	__u32 grow = with_option ? JUNCTION_DSR_OPT_LEN : 0;
	__u32 wire = jnc_wire_len(skb, packet) + grow;
	int verdict;

	/* The IPv4 header can grow to 60 bytes: a client's own options may leave no room. */
	if (with_option && packet->l4_off - ETH_HLEN + JUNCTION_DSR_OPT_LEN > 60)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	verdict = jnc_fib_route(skb, &route, packet->saddr, backend->address, packet->proto, wire);
	if (!route_usable(verdict))
		return route_refused(skb, packet, verdict, route.mtu_result - grow, trace);
	device = jnc_device_of(route.ifindex, skb->ifindex);
	if (with_option && device && wire > device->mtu)
		return route_refused(skb, packet, BPF_FIB_LKUP_RET_FRAG_NEEDED, device->mtu - grow,
				     trace);
	if (jnc_nat_rewrite(skb, packet, JNC_IPV4_DADDR_OFF, packet->daddr, backend->address,
			    packet->l4_off + 2, packet->dport, backend->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	if (with_option && jnc_dsr_insert_option(skb, packet->daddr, packet->dport) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	verdict = jnc_fib_redirect(skb, &route, verdict);
	return verdict < 0 ? drop(skb, JUNCTION_DROP_FIB_FAILED, direction) : verdict;
}

/*
 * SNAT to a remote backend. A new connection (`entry` NULL) claims a source port on the
 * address of the device the route leaves by, and records both conntrack entries; an
 * existing one reuses its SERVICE entry's address and port. DNAT + SNAT, out by FIB.
 */
static __always_inline int forward_snat(struct __sk_buff *skb, const struct jnc_packet *packet,
					const struct junction_lb4_backend *backend, __u32 backend_id,
					__u16 rev_nat_id, const struct junction_ct4_entry *entry,
					__u64 now, struct jnc_trace *trace)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct bpf_fib_lookup route = {};
	struct junction_device *device;
	__be32 node;
	__be16 port;
	int verdict;
	int full;

	verdict = jnc_fib_route(skb, &route, packet->saddr, backend->address, packet->proto,
				jnc_wire_len(skb, packet));
	if (!route_usable(verdict))
		return route_refused(skb, packet, verdict, route.mtu_result, trace);
	if (entry) {
		node = entry->nat_address;
		port = entry->nat_port;
		if (jnc_tcp_closes(packet)) {
			const struct junction_ct4_key service = ct_key_of(packet, JUNCTION_CT_SERVICE);
			const struct junction_ct4_key reply = ct_key(
				backend->address, node, backend->port, port, packet->proto,
				JUNCTION_CT_REPLY);

			jnc_snat_mark_closing(&service, &reply);
		}
	} else {
		const struct junction_ct4_entry reply = {
			.last_seen = now,
			.backend_id = backend_id,
			.rev_nat_id = rev_nat_id,
			.flags = JUNCTION_CT_F_SNAT,
			.nat_address = packet->saddr,
			.nat_port = packet->sport,
		};
		struct junction_ct4_entry request = reply;
		const struct junction_ct4_key key = ct_key_of(packet, JUNCTION_CT_SERVICE);

		device = jnc_device_of(route.ifindex, skb->ifindex);
		if (!device || !device->address)
			return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
		node = device->address;
		port = jnc_snat_claim_port(packet, backend, node, &reply, &full);
		if (!port)
			return drop(skb, full ? JUNCTION_DROP_CT_MAP_FULL : JUNCTION_DROP_NO_NAT_PORT,
				    direction);
		request.nat_address = node;
		request.nat_port = port;
		if (bpf_map_update_elem(&jnc_ct4, &key, &request, BPF_ANY) < 0) {
			const struct junction_ct4_key claimed =
				ct_key(backend->address, node, backend->port, port, packet->proto,
				       JUNCTION_CT_REPLY);

			bpf_map_delete_elem(&jnc_ct4, &claimed);
			return drop(skb, JUNCTION_DROP_CT_MAP_FULL, direction);
		}
	}
	trace->snat_address = node;
	trace->snat_port = port;
	if (jnc_nat_rewrite(skb, packet, JNC_IPV4_DADDR_OFF, packet->daddr, backend->address,
			    packet->l4_off + 2, packet->dport, backend->port) < 0 ||
	    jnc_nat_rewrite(skb, packet, JNC_IPV4_SADDR_OFF, packet->saddr, node, packet->l4_off,
			    packet->sport, port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	verdict = jnc_fib_redirect(skb, &route, verdict);
	return verdict < 0 ? drop(skb, JUNCTION_DROP_FIB_FAILED, direction) : verdict;
}

/* ---- from_netdev's three cases ------------------------------------------------------- */

/* A packet to an external frontend: pick (or find) the backend, then forward it the way
 * the connection goes (local, DSR or SNAT). */
static __always_inline int nodeport_lb(struct __sk_buff *skb, const struct jnc_packet *packet,
				       const struct junction_lb4_service_key *frontend,
				       const struct junction_lb4_service *service,
				       struct jnc_trace *trace)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	const struct junction_ct4_key key = ct_key_of(packet, JUNCTION_CT_SERVICE);
	struct junction_lb4_backend *backend = NULL;
	struct junction_ct4_entry *entry = NULL;
	__u64 now = bpf_ktime_get_ns();
	__u16 mode;
	__u32 id;

	/* No backend for this node (none at all, or externalTrafficPolicy=Local without a
	 * local one): refused at once, as kube-proxy's REJECT. */
	if (service->count == 0) {
		trace->skip = 1; /* the drop event tells it */
		count_drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		return jnc_icmp_port_unreachable(skb, packet);
	}
	id = ct_lookup_service(packet, service, now, &backend, &entry);
	/* A SYN on a closing SNAT connection: the client reused its port for a new one, which
	 * gets a backend and a port of its own (the old port is released by its close timeout). */
	if (id && entry && (entry->flags & JUNCTION_CT_F_SNAT) &&
	    (entry->flags & JUNCTION_CT_F_CLOSING) && jnc_tcp_opens(packet))
		id = 0;
	if (id && entry && backend) {
		mode = entry->flags & (JUNCTION_CT_F_EXTERNAL | JUNCTION_CT_F_DSR | JUNCTION_CT_F_SNAT);
	} else {
		entry = NULL;
		id = select_backend(packet, frontend, service, now, &backend);
		if (!id || !backend)
			return drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		trace->flags = JUNCTION_FLOW_F_NEW;
		if (backend->flags & JUNCTION_BE_F_LOCAL) {
			mode = JUNCTION_CT_F_EXTERNAL;
			if (ct_create(packet, backend, id, service->rev_nat_id,
				      JUNCTION_CT_F_EXTERNAL, now) < 0)
				return drop(skb, JUNCTION_DROP_CT_MAP_FULL, direction);
		} else if (service->flags & JUNCTION_SVC_F_DSR) {
			/* Only the SERVICE entry: no reply comes back through this node. */
			const struct junction_ct4_entry dsr = {
				.last_seen = now,
				.backend_id = id,
				.rev_nat_id = service->rev_nat_id,
				.flags = JUNCTION_CT_F_DSR,
			};

			mode = JUNCTION_CT_F_DSR;
			if (ct_insert(&key, NULL, &dsr) < 0)
				return drop(skb, JUNCTION_DROP_CT_MAP_FULL, direction);
		} else {
			mode = JUNCTION_CT_F_SNAT; /* forward_snat records the entries */
		}
	}
	trace->flags |= JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN;
	trace->nat_address = backend->address;
	trace->nat_port = backend->port;
	trace->rev_nat_id = service->rev_nat_id;
	trace->stamp = now;
	switch (mode) {
	case JUNCTION_CT_F_EXTERNAL:
		return forward_local(skb, packet, backend);
	case JUNCTION_CT_F_DSR:
		trace->flags |= JUNCTION_FLOW_F_DSR;
		return forward_dsr(skb, packet, backend, trace);
	case JUNCTION_CT_F_SNAT:
		trace->flags |= JUNCTION_FLOW_F_SNAT;
		return forward_snat(skb, packet, backend, id, service->rev_nat_id, entry, now,
				    trace);
	default:
		/* An east-west entry on this tuple (a pod's connection): not ours. */
		trace->skip = 1;
		return TC_ACT_OK;
	}
}

/* A backend's reply to a connection this node SNATed: back to the client, from the
 * frontend, out by FIB. */
static __always_inline int snat_reverse(struct __sk_buff *skb, const struct jnc_packet *packet,
					struct junction_ct4_entry *entry, struct jnc_trace *trace)
{
	const __u32 direction = JUNCTION_DIR_FROM_NETDEV;
	struct junction_lb4_revnat_key revnat_key = { .rev_nat_id = entry->rev_nat_id };
	struct bpf_fib_lookup route = {};
	struct junction_lb4_revnat *revnat;
	int verdict;

	revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);
	/* The service is gone: nothing to answer from; the node's stack drops it. */
	if (!revnat) {
		trace->skip = 1;
		return TC_ACT_OK;
	}
	entry->last_seen = bpf_ktime_get_ns();
	trace->flags = JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_REPLY_KNOWN | JUNCTION_FLOW_F_XLATED |
		       JUNCTION_FLOW_F_SNAT;
	trace->nat_address = revnat->address;
	trace->nat_port = revnat->port;
	trace->rev_nat_id = entry->rev_nat_id;
	trace->snat_address = entry->nat_address;
	trace->snat_port = entry->nat_port;
	if (jnc_tcp_closes(packet)) {
		const struct junction_ct4_key reply = ct_key_of(packet, JUNCTION_CT_REPLY);
		const struct junction_ct4_key service =
			ct_key(entry->nat_address, revnat->address, entry->nat_port, revnat->port,
			       packet->proto, JUNCTION_CT_SERVICE);

		jnc_snat_mark_closing(&service, &reply);
	}
	verdict = jnc_fib_route(skb, &route, revnat->address, entry->nat_address, packet->proto,
				jnc_wire_len(skb, packet));
	if (!route_usable(verdict))
		return route_refused(skb, packet, verdict, route.mtu_result, trace);
	if (jnc_nat_rewrite(skb, packet, JNC_IPV4_DADDR_OFF, packet->daddr, entry->nat_address,
			    packet->l4_off + 2, packet->dport, entry->nat_port) < 0 ||
	    jnc_nat_rewrite(skb, packet, JNC_IPV4_SADDR_OFF, packet->saddr, revnat->address,
			    packet->l4_off, packet->sport, revnat->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	verdict = jnc_fib_redirect(skb, &route, verdict);
	return verdict < 0 ? drop(skb, JUNCTION_DROP_FIB_FAILED, direction) : verdict;
}

/*
 * On the backend's node: remember the frontend the option names for the replies. An entry
 * already there for the same frontend (every UDP datagram carries the option) is only
 * refreshed, and the packet is not a new connection.
 */
static __always_inline int dsr_record(struct __sk_buff *skb, const struct jnc_packet *packet,
				      const struct junction_dsr_opt4 *option,
				      struct jnc_trace *trace)
{
	const struct junction_ct4_key key = ct_reply_key(packet, packet->daddr, packet->dport);
	const struct junction_ct4_entry entry = {
		.last_seen = bpf_ktime_get_ns(),
		.flags = JUNCTION_CT_F_DSR,
		.nat_address = option->address,
		.nat_port = option->port,
	};
	struct junction_ct4_entry *known = bpf_map_lookup_elem(&jnc_ct4, &key);

	trace->flags = JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN | JUNCTION_FLOW_F_DSR;
	trace->nat_address = packet->daddr;
	trace->nat_port = packet->dport;
	if (known && known->flags == JUNCTION_CT_F_DSR && known->nat_address == option->address &&
	    known->nat_port == option->port) {
		known->last_seen = entry.last_seen;
		return TC_ACT_OK;
	}
	trace->flags |= JUNCTION_FLOW_F_NEW;
	/* The map full (it never evicts): refused, counted, as on the ingress node; without
	 * the entry the replies would leave with the pod's address and the client reset them. */
	if (bpf_map_update_elem(&jnc_ct4, &key, &entry, BPF_ANY) < 0)
		return drop(skb, JUNCTION_DROP_CT_MAP_FULL, JUNCTION_DIR_FROM_NETDEV);
	return TC_ACT_OK;
}

/* ---- Entry points ---------------------------------------------------------------------- */

/* from_netdev's IPv6 half (lib/nodeport6.h), a program of its own reached by a tail call:
 * IPv4's 480-byte frame is then not under IPv6's (512 bytes for all frames at once). */
SEC("tc")
int from_netdev6(struct __sk_buff *skb)
{
	JNC_VARIANT_MARK();
	return jnc_hook_verdict(jnc_from_netdev6(skb));
}

/* ICMP and ICMPv6 errors about an SNAT connection (lib/icmp_error_ns.h), also reached by a
 * tail call: neither from_netdev's frame nor from_netdev6's instructions carry it. */
SEC("tc")
int from_netdev_icmp(struct __sk_buff *skb)
{
	JNC_VARIANT_MARK();
	return jnc_hook_verdict(jnc_icmp_error_ns(skb));
}

#define JNC_ND_CALL_IPV6 0
#define JNC_ND_CALL_ICMP 1

/* The tail calls' table, filled by libbpf when the object loads (not pinned: each load of
 * this object has its own, holding its own programs). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32)); /* a size, not a BTF type: the kernel refuses BTF here */
	__array(values, int(struct __sk_buff *));
} jnc_nd_calls SEC(".maps") = {
	.values = {
		[JNC_ND_CALL_IPV6] = (void *)&from_netdev6,
		[JNC_ND_CALL_ICMP] = (void *)&from_netdev_icmp,
	},
};

static __always_inline int from_netdev_verdict(struct __sk_buff *skb)
{
	const __u32 point = JUNCTION_DIR_FROM_NETDEV;
	struct junction_lb4_service_key frontend = {};
	struct junction_lb4_service *service;
	struct junction_ct4_entry *reply;
	struct junction_dsr_opt4 option;
	struct jnc_packet packet = {};
	struct jnc_trace trace = {};
	struct junction_ct4_key key;

	/* Not loaded: on as before (ICMP passes untouched). */
	if (jnc_icmp_error_ns_candidate(skb))
		bpf_tail_call(skb, &jnc_nd_calls, JNC_ND_CALL_ICMP);
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		bpf_tail_call(skb, &jnc_nd_calls, JNC_ND_CALL_IPV6);
		return TC_ACT_OK; /* no from_netdev6 (not loaded): untouched, as before */
	}
	if (jnc_parse_ipv4(skb, &packet) != JNC_PARSE_OK)
		return TC_ACT_OK;
	key = ct_key_of(&packet, JUNCTION_CT_REPLY);
	reply = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (reply && (reply->flags & JUNCTION_CT_F_SNAT))
		return jnc_traced(skb, &packet, point, &trace,
				  snat_reverse(skb, &packet, reply, &trace));
	if (jnc_dsr_read_option(skb, &packet, &option)) {
		/* Traced as the client sent it: to the option's frontend, now the backend. */
		struct jnc_packet sent = packet;

		sent.daddr = option.address;
		sent.dport = option.port;
		return jnc_traced(skb, &sent, point, &trace, dsr_record(skb, &packet, &option, &trace));
	}
	frontend.address = packet.daddr;
	frontend.port = packet.dport;
	frontend.proto = packet.proto;
	service = bpf_map_lookup_elem(&jnc_lb4_svc, &frontend);
	if (!service || !(service->flags & JUNCTION_SVC_F_EXTERNAL))
		return TC_ACT_OK;
	/* An L7 proxy frontend: to the node's proxy, untranslated (lib/proxy.h). */
	if (jnc_to_proxy_wanted(&packet, service))
		return jnc_to_proxy(skb, &packet, service, point, &trace);
	return jnc_traced(skb, &packet, point, &trace,
			  nodeport_lb(skb, &packet, &frontend, service, &trace));
}

static __always_inline int to_netdev_verdict(struct __sk_buff *skb)
{
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb4_revnat *revnat;
	struct junction_ct4_entry *entry;
	struct jnc_packet packet = {};
	struct jnc_trace trace = {};
	struct junction_ct4_key key;
	__be32 address;
	__be16 port;

	/* An ICMP or ICMPv6 error from a local backend (lib/icmp_error_ns.h), else untouched. */
	if (jnc_icmp_error_ns_candidate(skb))
		return jnc_icmp_error_ns_local(skb);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return jnc_to_netdev6(skb);
	if (jnc_parse_ipv4(skb, &packet) != JNC_PARSE_OK)
		return TC_ACT_OK;
	key = ct_key_of(&packet, JUNCTION_CT_REPLY);
	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	if (!entry)
		return TC_ACT_OK;
	if (entry->flags & JUNCTION_CT_F_DSR) {
		address = entry->nat_address;
		port = entry->nat_port;
		trace.flags = JUNCTION_FLOW_F_DSR;
	} else if (entry->flags & JUNCTION_CT_F_EXTERNAL) {
		revnat_key.rev_nat_id = entry->rev_nat_id;
		revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);
		if (!revnat)
			return TC_ACT_OK;
		address = revnat->address;
		port = revnat->port;
	} else {
		return TC_ACT_OK;
	}
	entry->last_seen = bpf_ktime_get_ns();
	ct_note_close(entry, &packet);
	if (jnc_nat_rewrite(skb, &packet, JNC_IPV4_SADDR_OFF, packet.saddr, address,
			    packet.l4_off, packet.sport, port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_NETDEV);
	trace.flags |= JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_REPLY_KNOWN | JUNCTION_FLOW_F_XLATED;
	trace.nat_address = address;
	trace.nat_port = port;
	trace.rev_nat_id = entry->rev_nat_id;
	return jnc_traced(skb, &packet, JUNCTION_DIR_TO_NETDEV, &trace, TC_ACT_OK);
}

/* Every packet let through goes on to the hook's next program (lib/verdict.h); the tail
 * calls' programs above say the same for theirs. */
SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	JNC_VARIANT_MARK();
	return jnc_hook_verdict(from_netdev_verdict(skb));
}

SEC("tc")
int to_netdev(struct __sk_buff *skb)
{
	JNC_VARIANT_MARK();
	return jnc_hook_verdict(to_netdev_verdict(skb));
}
