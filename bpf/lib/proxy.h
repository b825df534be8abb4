/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * L7 proxy redirect (JUNCTION_SVC_F_L7_PROXY), shared by from_endpoint and from_netdev: a
 * TCP packet to a redirected frontend is handed to a socket of the node's proxy with
 * bpf_sk_assign, TPROXY-style, as Cilium does with bpf.tproxy:
 *   1. the flow's own socket (bpf_skc_lookup_tcp on the packet's tuple: a half-open
 *      connection of the proxy whose SYN is retransmitted, bound to VIP:port);
 *   2. else the proxy's listener on proxy_port (any local address), which accepts the
 *      connection with the packet's destination (VIP:port) as its local address.
 * That for a SYN; later packets only get the mark (see jnc_proxy_assign). When the agent has
 * put the proxy's listener in JUNCTION_MAP_PROXY_LISTENERS, the SYN too only gets the mark,
 * and bpf/proxy_lookup.c hands it to the listener from the kernel's socket lookup (after its
 * TIME_WAIT lookup, which bpf_sk_assign skips: junction_abi.h says why that matters).
 * The packet itself is unchanged: the proxy sees the client's address as peer and the
 * Service's as local (its original destination). skb->mark JUNCTION_MARK_TO_PROXY makes the
 * node route it to itself (the agent's rule and table, junction_abi.h): with a non-local
 * destination the kernel would otherwise forward it, and forwarding drops a packet with a
 * socket assigned. Replies leave the proxy's transparent socket from VIP:port, and no
 * conntrack entry exists for them, so to_endpoint and to_netdev let them pass as they are.
 *
 * Requirements the kernel sets (bpf_sk_assign): tc ingress only, the socket in the
 * namespace of the device the packet arrived on (the node's: the host-side veth and the
 * node's devices are both there), a hashed socket. The listener needs IP_TRANSPARENT to
 * answer from an address that is not the node's (the kernel refuses a non-local source
 * otherwise); Envoy's `transparent: true` listeners set it.
 */
#ifndef JUNCTION_LIB_PROXY_H
#define JUNCTION_LIB_PROXY_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/counters.h"
#include "lib/events.h"
#include "lib/icmp.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/stages.h"

/* Whether the frontend's packet goes to the proxy (TCP only: the proxy listens on TCP). */
static __always_inline int jnc_to_proxy_wanted(const struct jnc_packet *packet,
					       const struct junction_lb4_service *service)
{
	return !jnc_skip(JNC_STAGE_PROXY) && packet->proto == IPPROTO_TCP &&
	       (service->flags & JUNCTION_SVC_F_L7_PROXY) &&
	       service->proxy_port != 0;
}

/* Whether the agent put a listening socket for proxy_port in JUNCTION_MAP_PROXY_LISTENERS
 * (the kernel drops the entry when the socket closes). */
static __always_inline int jnc_proxy_listener_mapped(__u16 proxy_port)
{
	struct junction_proxy_listener_key key = { .proxy_port = proxy_port };
	struct bpf_sock *sk = bpf_map_lookup_elem(&jnc_proxy_lsn, &key);
	int listening;

	if (!sk)
		return 0;
	listening = sk->state == BPF_TCP_LISTEN;
	bpf_sk_release(sk);
	return listening;
}

/*
 * The socket for the packet (see the top), assigned to it; 0, or < 0 when there is none.
 * Only a connection's SYN needs one: every later packet of it is addressed to a socket of
 * the proxy's own (the request socket, then the accepted one, both bound to VIP:port), which
 * the kernel finds itself once the mark routes the packet locally, and early demux then
 * skips the route lookup as for any local connection. Assigning on every packet measured at
 * half the throughput (bench/results/proxy-redirect.md): no early demux for a packet that
 * already has a socket, so a policy-routed lookup per packet, plus the BPF lookups.
 */
static __always_inline long jnc_proxy_assign(struct __sk_buff *skb,
					     const struct jnc_packet *packet, __u16 proxy_port)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	long err;

	if (!jnc_tcp_opens(packet))
		return 0;
	/* The listener is in JUNCTION_MAP_PROXY_LISTENERS: the mark alone takes the SYN to
	 * the kernel's socket lookup, where bpf/proxy_lookup.c hands it to the listener
	 * unless the flow's own socket answers first (a request socket, or a TIME_WAIT one
	 * that lets the SYN reopen the 4-tuple: what bpf_sk_assign would prevent). */
	if (jnc_proxy_listener_mapped(proxy_port))
		return 0;

	tuple.ipv4.saddr = packet->saddr;
	tuple.ipv4.daddr = packet->daddr;
	tuple.ipv4.sport = packet->sport;
	tuple.ipv4.dport = packet->dport;
	sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		/* A listener on VIP:port itself is not the proxy's, and a TIME_WAIT socket would
		 * answer a new SYN by looking for a listener on the Service port: take the
		 * proxy's listener for both. A request socket (SYN_RECV) is the flow's own. */
		if (sk->state != BPF_TCP_LISTEN && sk->state != BPF_TCP_TIME_WAIT)
			goto assign;
		bpf_sk_release(sk);
	}
	tuple.ipv4.dport = bpf_htons(proxy_port);
	sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return -1;
	if (sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		return -1;
	}
assign:
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return err;
}

/* The to-proxy flow event: the packet as it goes (to VIP:port), the proxy port in nat_port,
 * written when the connection opens or closes (every packet at the ALL level). */
static __always_inline void jnc_emit_to_proxy(const struct __sk_buff *skb,
					      const struct jnc_packet *packet,
					      const struct junction_lb4_service *service)
{
	struct junction_flow_event *event;
	__u8 flags = JUNCTION_FLOW_F_REPLY_KNOWN;
	__u32 level = jnc_monitor_level();

	if (jnc_tcp_opens(packet))
		flags |= JUNCTION_FLOW_F_NEW;
	if (level == JUNCTION_MONITOR_OFF ||
	    (level == JUNCTION_MONITOR_FLOWS && !(flags & JUNCTION_FLOW_F_NEW) &&
	     !jnc_tcp_closes(packet)))
		return;
	event = jnc_event_reserve_skb(skb, JUNCTION_FLOW_TRACE, JUNCTION_DIR_TO_PROXY,
				      JUNCTION_VERDICT_REDIRECTED, 0);
	if (!event)
		return;
	jnc_event_packet(event, packet);
	event->flags = flags;
	event->nat_port = bpf_htons(service->proxy_port);
	event->rev_nat_id = service->rev_nat_id;
	jnc_event_submit(event);
}

/*
 * A redirected frontend's packet: to the proxy (TC_ACT_OK, marked), or, for a SYN with no
 * proxy socket for it (the proxy is down or not listening yet), refused at once like a Service without
 * backends (ICMP port unreachable), counted PROXY_UNAVAILABLE under `direction`. `trace`
 * is skipped: the to-proxy event (or the drop's) tells it.
 */
static __always_inline int jnc_to_proxy(struct __sk_buff *skb, const struct jnc_packet *packet,
					const struct junction_lb4_service *service,
					__u32 direction, struct jnc_trace *trace)
{
	trace->skip = 1;
	if (jnc_proxy_assign(skb, packet, service->proxy_port) < 0) {
		count_drop(skb, JUNCTION_DROP_PROXY_UNAVAILABLE, direction);
		return jnc_icmp_port_unreachable(skb, packet);
	}
	skb->mark = JUNCTION_MARK_TO_PROXY;
	jnc_emit_to_proxy(skb, packet, service);
	return TC_ACT_OK;
}

#endif /* JUNCTION_LIB_PROXY_H */
