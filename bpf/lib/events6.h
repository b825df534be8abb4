/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 flow events (junction_abi.h, "Flow events": struct junction_flow_event6), the twins of
 * lib/events.h's trace and socket events with the same rules (levels, NEW on a pure SYN,
 * FIN/RST at FLOWS, a full ring only counted). Drops of IPv6 frames are lib/events.h's
 * jnc_emit_drop6, reached from count_drop as every drop is.
 *
 * The IPv6 paths are short of stack (lib/nodeport6.h: 512 bytes for all frames), so the core
 * here (jnc_trace6_begin) fills the packet's side of the record and hands it back for the
 * caller to add its translation straight into the ring, without a second copy on the stack;
 * the endpoint programs, which have room, keep what they learnt in a struct jnc_trace6.
 */
#ifndef JUNCTION_LIB_EVENTS6_H
#define JUNCTION_LIB_EVENTS6_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"
#include "lib/events.h"
#include "lib/parse6.h"

/* lib/events.h's struct jnc_trace for an IPv6 packet. */
struct jnc_trace6 {
	__be32 nat_address[4];
	__be32 snat_address[4]; /* with JUNCTION_FLOW_F_SNAT */
	__u64 stamp;		/* the service path's bpf_ktime_get_ns, or 0 */
	__be16 nat_port;
	__be16 snat_port;
	__u16 rev_nat_id;
	__u8 flags; /* JUNCTION_FLOW_F_* */
	__u8 skip;  /* already reported otherwise (a drop event), or not traced */
};

/* A request translated to a backend `address`:`port` of `service` (the endpoint's DNAT);
 * `stamp`: the clock the service path read. */
static __always_inline void jnc_trace6_xlated(struct jnc_trace6 *trace, const __be32 *address,
					      __be16 port,
					      const struct junction_lb4_service *service,
					      __u64 stamp)
{
	trace->flags |= JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN;
	if (service->flags & JUNCTION_SVC_F_LOCAL_REDIRECT)
		trace->flags |= JUNCTION_FLOW_F_LRP;
	jnc_addr6_copy(trace->nat_address, address);
	trace->nat_port = port;
	trace->rev_nat_id = service->rev_nat_id;
	trace->stamp = stamp;
}

/* A reply whose source went back to the frontend `address`:`port` (reverse NAT). */
static __always_inline void jnc_trace6_reply(struct jnc_trace6 *trace, const __be32 *address,
					     __be16 port, __u16 rev_nat_id)
{
	trace->flags = JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_REPLY_KNOWN;
	jnc_addr6_copy(trace->nat_address, address);
	trace->nat_port = port;
	trace->rev_nat_id = rev_nat_id;
}

/*
 * The trace event of a packet passed on at `point`, if the level wants it (FLOWS: a pure
 * SYN or `flags` with NEW, a FIN or RST; ALL: every one): its record with the packet's
 * addresses, ports, protocol, TCP flags and `flags` (plus NEW for a SYN) filled, for the
 * caller to complete and submit (jnc_event6_submit); NULL when nothing is to be written.
 * `daddr`/`dport`: the destination to report (the packet's own, or on a DSR backend's node
 * the frontend the option names).
 */
static __always_inline struct junction_flow_event6 *
jnc_trace6_begin(const struct __sk_buff *skb, const struct jnc_packet6 *packet,
		 const __be32 *daddr, __be16 dport, __u32 point, __u8 flags, __u64 stamp)
{
	struct junction_flow_event6 *event;
	__u32 level;

	if (jnc_tcp6_opens(packet))
		flags |= JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_REPLY_KNOWN;
	level = jnc_monitor_level();
	if (level == JUNCTION_MONITOR_OFF)
		return NULL;
	if (level == JUNCTION_MONITOR_FLOWS && !(flags & JUNCTION_FLOW_F_NEW) &&
	    !jnc_tcp6_closes(packet))
		return NULL;
	event = jnc_event6_reserve(skb, JUNCTION_FLOW_TRACE, point, JUNCTION_VERDICT_FORWARDED,
				   stamp);
	if (!event)
		return NULL;
	jnc_addr6_copy(event->saddr, packet->saddr);
	jnc_addr6_copy(event->daddr, daddr);
	event->sport = packet->sport;
	event->dport = dport;
	event->proto = packet->proto;
	event->tcp_flags = packet->tcp_flags;
	event->flags = flags;
	return event;
}

/* A packet an endpoint program passes, with what `trace` learnt (lib/events.h's
 * jnc_emit_trace). */
static __always_inline void jnc_emit_trace6(const struct __sk_buff *skb,
					    const struct jnc_packet6 *packet, __u32 point,
					    const struct jnc_trace6 *trace)
{
	struct junction_flow_event6 *event;

	if (trace->skip)
		return;
	event = jnc_trace6_begin(skb, packet, packet->daddr, packet->dport, point, trace->flags,
				 trace->stamp);
	if (!event)
		return;
	jnc_addr6_copy(event->nat_address, trace->nat_address);
	event->nat_port = trace->nat_port;
	event->rev_nat_id = trace->rev_nat_id;
	jnc_addr6_copy(event->snat_address, trace->snat_address);
	event->snat_port = trace->snat_port;
	jnc_event6_submit(event);
}

/* The verdict, after the flow event for a packet that goes on (drops have their own). */
static __always_inline int jnc_traced6(const struct __sk_buff *skb,
				       const struct jnc_packet6 *packet, __u32 point,
				       const struct jnc_trace6 *trace, int verdict)
{
	if (verdict != TC_ACT_SHOT)
		jnc_emit_trace6(skb, packet, point, trace);
	return verdict;
}

/*
 * Socket LB over IPv6 (sock.c's connect6/sendmsg6 to an IPv6 frontend): lib/events.h's
 * jnc_emit_sock with IPv6 addresses. `backend` NULL: refused with `reason`.
 */
static __always_inline void jnc_emit_sock6(__u64 cookie, const struct jnc_packet6 *packet,
					   const struct junction_lb6_backend *backend,
					   __u16 rev_nat_id, __u32 reason, int per_connection,
					   __u8 flags)
{
	struct junction_flow_event6 *event;

	if (!jnc_sock_event_wanted(backend != NULL, per_connection))
		return;
	event = jnc_event6_reserve(NULL, jnc_sock_event_kind(backend != NULL), JUNCTION_DIR_SOCKET,
				   jnc_sock_event_verdict(backend != NULL), 0);
	if (!event)
		return;
	event->socket_cookie = cookie;
	jnc_addr6_copy(event->saddr, packet->saddr);
	jnc_addr6_copy(event->daddr, packet->daddr);
	event->sport = packet->sport;
	event->dport = packet->dport;
	event->proto = packet->proto;
	event->rev_nat_id = rev_nat_id;
	event->drop_reason = reason;
	event->flags = jnc_sock_event_flags(flags, backend != NULL, per_connection);
	if (backend) {
		jnc_addr6_copy(event->nat_address, backend->address);
		event->nat_port = backend->port;
	}
	jnc_event6_submit(event);
}

#endif /* JUNCTION_LIB_EVENTS6_H */
