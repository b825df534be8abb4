/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow events for the agent (junction_abi.h, "Flow events"): reserved in the jnc_events
 * ring, filled, submitted. Nothing here ever changes a packet's fate: a full ring
 * (bpf_ringbuf_reserve returning NULL) only counts a lost event in jnc_ev_lost.
 *
 * Cost on the fast path: one array lookup of the level (inlined by the verifier) and a test
 * of the TCP flags already parsed; an established packet at the FLOWS level writes nothing.
 * No wakeup per record (jnc_event_submit): the kernel's adaptive default wakes the consumer
 * whenever it had caught up, which is every event of an agent that keeps up, and that
 * wakeup (irq_work, a self-IPI in a VM) cost a first packet ~1.2 us against ~0.2 us for the
 * record itself (bench/results/flow-events.md). The agent polls on a timer instead
 * (FlowConsumer, 20 ms); a burst that takes the ring past half full wakes it once.
 */
#ifndef JUNCTION_LIB_EVENTS_H
#define JUNCTION_LIB_EVENTS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/parse6.h"
#include "lib/stages.h"

/* The service translation of a traced packet (JUNCTION_FLOW_F_XLATED), and whether it is a
 * connection's first packet or a reply, as the program learnt them on its way. */
struct jnc_trace {
	__be32 nat_address;
	__be16 nat_port;
	__u16 rev_nat_id;
	__u8 flags; /* JUNCTION_FLOW_F_* */
	__u8 skip;  /* already reported otherwise (a drop event), or not traced: no trace */
	__be16 snat_port;
	__be32 snat_address; /* with JUNCTION_FLOW_F_SNAT */
	/* bpf_ktime_get_ns the service path already read for conntrack, or 0: the event's
	 * timestamp, so a first packet reads the clock once, not twice. */
	__u64 stamp;
};

static __always_inline __u32 jnc_monitor_level(void)
{
	const __u32 zero = 0;
	const struct junction_monitor_config *config = bpf_map_lookup_elem(&jnc_mon_cfg, &zero);

	return config ? config->level : JUNCTION_MONITOR_OFF;
}

/* An event the full ring could not take. */
static __always_inline void jnc_event_lost(void)
{
	const __u32 zero = 0;
	struct junction_events_lost *lost = bpf_map_lookup_elem(&jnc_ev_lost, &zero);

	if (lost)
		lost->events++;
}

/* A zeroed record of `size` bytes in the ring, or NULL (ring full: counted as lost). Both
 * record types (junction_flow_event, junction_flow_event6) start here; `size` is a constant
 * once inlined, as the reserve and the memset need. */
static __always_inline void *jnc_event_alloc(__u64 size)
{
	void *event = bpf_ringbuf_reserve(&jnc_events, size, 0);

	if (!event) {
		jnc_event_lost();
		return NULL;
	}
	__builtin_memset(event, 0, size);
	return event;
}

/* A zeroed event in the ring stamped `stamp` (0: now), or NULL (ring full: counted as
 * lost). */
static __always_inline struct junction_flow_event *
jnc_event_reserve_at(__u8 kind, __u8 point, __u8 verdict, __u64 stamp)
{
	struct junction_flow_event *event = jnc_event_alloc(sizeof(*event));

	if (!event)
		return NULL;
	event->timestamp = stamp ? stamp : bpf_ktime_get_ns();
	event->kind = kind;
	event->point = point;
	event->verdict = verdict;
	return event;
}

static __always_inline struct junction_flow_event *jnc_event_reserve(__u8 kind, __u8 point,
								     __u8 verdict)
{
	return jnc_event_reserve_at(kind, point, verdict, 0);
}

/*
 * Commit a reserved event without waking the consumer, except for the record that takes the
 * ring past half full: that one forces a wakeup, so a burst is read before the ring fills
 * rather than at the consumer's next tick. Only the crossing record wakes (not every record
 * past the mark, which would make each pay a wakeup while a backlog drains). With producers
 * on several CPUs reserving at once the crossing can be missed; the timer still reads it.
 */
static __always_inline void jnc_event_commit(void *event, __u64 size)
{
	const __u64 half = JUNCTION_EVENTS_RING_SIZE / 2;
	/* What this record takes in the ring: the kernel's 8-byte header and the record. */
	const __u64 taken = size + 8;
	__u64 queued = jnc_skip(JNC_STAGE_EVENT_QUERY) ? 0
						       : bpf_ringbuf_query(&jnc_events, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(event, queued >= half && queued < half + taken ? BPF_RB_FORCE_WAKEUP
									 : BPF_RB_NO_WAKEUP);
}

static __always_inline void jnc_event_submit(struct junction_flow_event *event)
{
	jnc_event_commit(event, sizeof(*event));
}

/* The IPv6 record (junction_flow_event6), zeroed, stamped `stamp` (0: now), with the skb's
 * interface and length when there is one; or NULL (ring full: counted as lost). */
static __always_inline struct junction_flow_event6 *
jnc_event6_reserve(const struct __sk_buff *skb, __u8 kind, __u8 point, __u8 verdict,
		   __u64 stamp)
{
	struct junction_flow_event6 *event = jnc_event_alloc(sizeof(*event));

	if (!event)
		return NULL;
	event->timestamp = stamp ? stamp : bpf_ktime_get_ns();
	event->kind = kind;
	event->point = point;
	event->verdict = verdict;
	if (skb) {
		event->ifindex = skb->ifindex;
		event->length = skb->len;
	}
	return event;
}

static __always_inline void jnc_event6_submit(struct junction_flow_event6 *event)
{
	jnc_event_commit(event, sizeof(*event));
}

/* An event about a packet: also its interface and length. */
static __always_inline struct junction_flow_event *
jnc_event_reserve_skb(const struct __sk_buff *skb, __u8 kind, __u8 point, __u8 verdict,
		      __u64 stamp)
{
	struct junction_flow_event *event = jnc_event_reserve_at(kind, point, verdict, stamp);

	if (event) {
		event->ifindex = skb->ifindex;
		event->length = skb->len;
	}
	return event;
}

/* The parsed packet's addresses, ports, protocol and TCP flags. */
static __always_inline void jnc_event_packet(struct junction_flow_event *event,
					     const struct jnc_packet *packet)
{
	event->saddr = packet->saddr;
	event->daddr = packet->daddr;
	event->sport = packet->sport;
	event->dport = packet->dport;
	event->proto = packet->proto;
	event->tcp_flags = packet->tcp_flags;
}

/*
 * A dropped IPv6 frame (jnc_emit_drop's IPv6 half): its addresses, read straight into the
 * record (no copy on the stack, which the IPv6 paths have little of), and its ports and TCP
 * flags when TCP or UDP follows the fixed header directly. Behind extension headers (or a
 * header cut short) the ports are left 0: a drop is rare, and the walk (lib/parse6.h) is
 * not worth repeating here.
 */
static __always_inline void jnc_emit_drop6(const struct __sk_buff *skb, __u32 reason, __u32 point)
{
	const __u32 l4_off = ETH_HLEN + 40;
	struct junction_flow_event6 *event;
	__u8 nexthdr;

	event = jnc_event6_reserve(skb, JUNCTION_FLOW_DROP, point, JUNCTION_VERDICT_DROPPED, 0);
	if (!event)
		return;
	event->drop_reason = reason;
	/* saddr and daddr: 32 contiguous bytes at offset 8 of the header, and of the record. */
	if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, event->saddr, 32) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + 6, &nexthdr, 1) < 0)
		goto submit;
	if (nexthdr == IPPROTO_TCP || nexthdr == IPPROTO_UDP || nexthdr == JNC_NEXTHDR_ICMPV6)
		event->proto = nexthdr;
	if (nexthdr == IPPROTO_TCP || nexthdr == IPPROTO_UDP)
		bpf_skb_load_bytes(skb, l4_off, &event->sport, 4);
	if (nexthdr == IPPROTO_TCP)
		bpf_skb_load_bytes(skb, l4_off + 13, &event->tcp_flags, 1);
submit:
	jnc_event6_submit(event);
}

/*
 * A dropped packet, read from the skb as it is at the drop (count_drop calls this, so every
 * program's drops are covered): addresses, ports and TCP flags when it is IPv4 with the L4
 * header there (an IPv6 frame: jnc_emit_drop6), else only what is known (ifindex, length,
 * reason).
 */
static __always_inline void jnc_emit_drop(const struct __sk_buff *skb, __u32 reason, __u32 point)
{
	struct junction_flow_event *event;
	struct iphdr ip;
	__be16 eth_proto;
	__u32 l4_off;

	if (jnc_monitor_level() == JUNCTION_MONITOR_OFF)
		return;
	if (bpf_skb_load_bytes(skb, 12, &eth_proto, sizeof(eth_proto)) < 0)
		eth_proto = 0;
	if (eth_proto == bpf_htons(ETH_P_IPV6)) {
		jnc_emit_drop6(skb, reason, point);
		return;
	}
	event = jnc_event_reserve_skb(skb, JUNCTION_FLOW_DROP, point, JUNCTION_VERDICT_DROPPED, 0);
	if (!event)
		return;
	event->drop_reason = reason;
	if (eth_proto != bpf_htons(ETH_P_IP) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.version != 4)
		goto submit;
	event->saddr = ip.saddr;
	event->daddr = ip.daddr;
	event->proto = ip.protocol;
	if (ip.frag_off & bpf_htons(JNC_IP_OFFSET))
		goto submit;
	l4_off = ETH_HLEN + ip.ihl * 4;
	if (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP)
		bpf_skb_load_bytes(skb, l4_off, &event->sport, 4);
	if (ip.protocol == IPPROTO_TCP)
		bpf_skb_load_bytes(skb, l4_off + 13, &event->tcp_flags, 1);
submit:
	jnc_event_submit(event);
}

/*
 * A packet an endpoint program passes (TC_ACT_OK or a redirect), seen at `point` as it
 * arrived: written at the FLOWS level when it opens a connection (a pure TCP SYN, or
 * trace->flags has NEW) or closes one (FIN or RST); at the ALL level always.
 */
static __always_inline void jnc_emit_trace(const struct __sk_buff *skb,
					   const struct jnc_packet *packet, __u32 point,
					   const struct jnc_trace *trace)
{
	struct junction_flow_event *event;
	__u8 flags = trace->flags;
	__u32 level;

	if (trace->skip || jnc_skip(JNC_STAGE_FLOW_EVENT))
		return;
	if (jnc_tcp_opens(packet))
		flags |= JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_REPLY_KNOWN;
	level = jnc_monitor_level();
	if (level == JUNCTION_MONITOR_OFF)
		return;
	if (level == JUNCTION_MONITOR_FLOWS && !(flags & JUNCTION_FLOW_F_NEW) &&
	    !jnc_tcp_closes(packet))
		return;
	event = jnc_event_reserve_skb(skb, JUNCTION_FLOW_TRACE, point, JUNCTION_VERDICT_FORWARDED,
				      trace->stamp);
	if (!event)
		return;
	jnc_event_packet(event, packet);
	event->flags = flags;
	event->nat_address = trace->nat_address;
	event->nat_port = trace->nat_port;
	event->rev_nat_id = trace->rev_nat_id;
	event->snat_address = trace->snat_address;
	event->snat_port = trace->snat_port;
	jnc_event_submit(event);
}

/* The verdict, after the flow event for a packet that goes on (drops have their own). */
static __always_inline int jnc_traced(const struct __sk_buff *skb,
				      const struct jnc_packet *packet, __u32 point,
				      const struct jnc_trace *trace, int verdict)
{
	if (verdict != TC_ACT_SHOT)
		jnc_emit_trace(skb, packet, point, trace);
	return verdict;
}

/* What jnc_emit_sock and jnc_emit_sock6 (lib/events6.h) share, by whether the socket was
 * `translated` (else refused). Written at all? A translated send (not `per_connection`)
 * only at ALL, as every packet is; connects and refusals from FLOWS on. */
static __always_inline int jnc_sock_event_wanted(int translated, int per_connection)
{
	__u32 level = jnc_monitor_level();

	return level != JUNCTION_MONITOR_OFF &&
	       !(level == JUNCTION_MONITOR_FLOWS && translated && !per_connection);
}

static __always_inline __u8 jnc_sock_event_kind(int translated)
{
	return translated ? JUNCTION_FLOW_SOCK : JUNCTION_FLOW_DROP;
}

static __always_inline __u8 jnc_sock_event_verdict(int translated)
{
	return translated ? JUNCTION_VERDICT_TRANSLATED : JUNCTION_VERDICT_DROPPED;
}

/* The record's flags: the caller's, the reply direction known, NEW for a connection,
 * XLATED when translated. */
static __always_inline __u8 jnc_sock_event_flags(__u8 flags, int translated, int per_connection)
{
	return flags | JUNCTION_FLOW_F_REPLY_KNOWN | (per_connection ? JUNCTION_FLOW_F_NEW : 0) |
	       (translated ? JUNCTION_FLOW_F_XLATED : 0);
}

/*
 * Socket LB (sock.c): a connect or send to a frontend, as the application asked for it
 * (`packet`: the socket's bound address or 0, its port or a stand-in, the frontend), either
 * translated to `backend` (verdict TRANSLATED, reason 0) or refused (DROPPED, `reason`).
 * `per_connection`: a connect, written from the FLOWS level on; a send (one per datagram)
 * is written only at ALL, as every packet is. Refusals are written from FLOWS on.
 * `flags`: more JUNCTION_FLOW_F_* (LRP for a Local Redirect Policy's frontend).
 */
static __always_inline void jnc_emit_sock(__u64 cookie, const struct jnc_packet *packet,
					  const struct junction_lb4_backend *backend,
					  __u16 rev_nat_id, __u32 reason, int per_connection,
					  __u8 flags)
{
	struct junction_flow_event *event;

	if (!jnc_sock_event_wanted(backend != NULL, per_connection))
		return;
	event = jnc_event_reserve(jnc_sock_event_kind(backend != NULL), JUNCTION_DIR_SOCKET,
				  jnc_sock_event_verdict(backend != NULL));
	if (!event)
		return;
	event->socket_cookie = cookie;
	jnc_event_packet(event, packet); /* tcp_flags: 0, a socket has no packet yet */
	event->rev_nat_id = rev_nat_id;
	event->drop_reason = reason;
	event->flags = jnc_sock_event_flags(flags, backend != NULL, per_connection);
	if (backend) {
		event->nat_address = backend->address;
		event->nat_port = backend->port;
	}
	jnc_event_submit(event);
}

#endif /* JUNCTION_LIB_EVENTS_H */
