// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Endpoint programs, attached by the CNI plugin to each pod's host-side veth through a
 * clsact qdisc:
 *   from_endpoint  tc ingress of the host-side veth = packets the pod sends
 *   to_endpoint    tc egress of the host-side veth  = packets delivered to the pod
 *
 * Both count packets and bytes per endpoint (every packet, before anything else). On top:
 *   from_endpoint  IPv4 TCP/UDP to a service VIP:port -> pick a backend (conntrack entry,
 *                  else ClientIP affinity, else Maglev or random), record the connection
 *                  in conntrack, DNAT to the backend (the pod-side half of kube-proxy);
 *                  a Local Redirect Policy frontend is the same, except that with
 *                  skipRedirectFromBackend the policy's own pods get the original Service;
 *                  a pod that is its own backend (hairpin) gets the service loopback
 *                  address as source and the packet straight back (lib/hairpin.h), and
 *                  its answers to that address are turned back to VIP:port -> pod;
 *                  an L7 proxy frontend's TCP packets go to the node's proxy instead,
 *                  unchanged (lib/proxy.h: bpf_sk_assign), and its replies, from the
 *                  proxy's transparent socket with VIP:port as source, need nothing;
 *   to_endpoint    a reply from a backend of a connection in conntrack -> source rewritten
 *                  back to the VIP:port (reverse NAT), wherever the backend lives; an ICMP
 *                  or ICMPv6 error about such a connection (port unreachable, fragmentation
 *                  needed / Packet Too Big, time exceeded) gets its quote's destination back
 *                  to VIP:port and, from the backend, the VIP as source (lib/icmp_error.h,
 *                  lib/icmp_error6.h), so the client's socket sees it.
 * IPv6 (lib/parse6.h, lib/lb6.h, lib/nat6.h): ClusterIP balancing and reverse NAT over the
 * jnc_lb6_* maps and jnc_ct6, the same selection as IPv4, with the same flow events
 * (lib/events6.h); Local Redirect Policy with skipRedirectFromBackend (lib/lrp6.h) and
 * hairpin through the IPv6 service loopback address (lib/hairpin6.h) as IPv4; no L7 proxy
 * yet (such a frontend is balanced to its slots as a plain one).
 * Other ICMPv6 (Neighbor Discovery, Packet Too Big about untranslated traffic) and fragments
 * pass untouched; a malformed header or extension header chain is dropped with its reason.
 * Both write flow events (lib/events.h) for what they pass: a connection's first packet with
 * its service translation, FIN and RST (every packet at the ALL level); drops write theirs
 * in count_drop. Everything else passes untouched. Layout (Cilium / Katran style): the maps declared once
 * for every object (lib/maps.h), one small always-inline helper per concern (lib/parse.h,
 * lib/nat.h, lib/jhash.h, lib/counters.h, lib/lb4.h: shared with netdev.c and sock.c), entry
 * points that only chain helpers. Every drop goes through drop() so it is counted with a
 * reason; nothing returns TC_ACT_SHOT directly.
 *
 * Layouts and names come from junction_abi.h, the one header Swift imports as well.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"
#include "lib/variant.h"
#include "lib/counters.h"
#include "lib/events.h"
#include "lib/events6.h"
#include "lib/hairpin.h"
#include "lib/hairpin6.h"
#include "lib/icmp.h"
#include "lib/icmp6.h"
#include "lib/icmp_error.h"
#include "lib/icmp_error6.h"
#include "lib/lb4.h"
#include "lib/lrp.h"
#include "lib/lb6.h"
#include "lib/lrp6.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/nat6.h"
#include "lib/parse.h"
#include "lib/parse6.h"
#include "lib/proxy.h"
#include "lib/stages.h"
#include "lib/verdict.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- Service load balancing --------------------------------------------------------- */

/* from_endpoint, for a packet to a service frontend: pick, record, DNAT; `trace` gets the
 * translation (and whether the connection is new) for the flow event. */
static __always_inline int lb4_service(struct __sk_buff *skb, const struct jnc_packet *packet,
				       const struct junction_lb4_service_key *frontend,
				       const struct junction_lb4_service *service,
				       struct jnc_trace *trace)
{
	const __u32 direction = JUNCTION_DIR_FROM_ENDPOINT;
	struct junction_lb4_backend *backend = NULL;
	__u64 now = bpf_ktime_get_ns();
	__u32 id;

	/* As kube-proxy's REJECT: the client hears "port unreachable" at once. Counted (before
	 * the rewrite, with the original length) as dropped: the request goes nowhere. */
	if (service->count == 0) {
		trace->skip = 1; /* the drop event tells it */
		count_drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		return jnc_icmp_port_unreachable(skb, packet);
	}
	id = ct_lookup_service(packet, service, now, &backend, NULL);
	if (!id) {
		id = select_backend(packet, frontend, service, now, &backend);
		if (!id || !backend)
			return drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		if (ct_create(packet, backend, id, service->rev_nat_id, 0, now) < 0)
			return drop(skb, JUNCTION_DROP_CT_MAP_FULL, direction);
		trace->flags |= JUNCTION_FLOW_F_NEW;
	}
	if (jnc_nat_rewrite(skb, packet, JNC_IPV4_DADDR_OFF, packet->daddr, backend->address,
			    packet->l4_off + 2, packet->dport, backend->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	trace->flags |= JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN;
	trace->nat_address = backend->address;
	trace->nat_port = backend->port;
	trace->rev_nat_id = service->rev_nat_id;
	trace->stamp = now;
	if (service->flags & JUNCTION_SVC_F_LOCAL_REDIRECT)
		trace->flags |= JUNCTION_FLOW_F_LRP;
	if (!jnc_skip(JNC_STAGE_HAIRPIN) && backend->address == packet->saddr) {
		int verdict = jnc_hairpin_request(skb, packet, packet->saddr);

		return verdict < 0 ? drop(skb, JUNCTION_DROP_NAT_FAILED, direction) : verdict;
	}
	return TC_ACT_OK;
}

/* to_endpoint: a reply of a service connection gets the VIP:port back as its source. */
static __always_inline int lb4_reverse_nat(struct __sk_buff *skb, const struct jnc_packet *packet,
					   struct jnc_trace *trace)
{
	const struct junction_ct4_key key = ct_key_of(packet, JUNCTION_CT_REPLY);
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb4_revnat *revnat;
	struct junction_ct4_entry *entry;

	entry = bpf_map_lookup_elem(&jnc_ct4, &key);
	/* North-south entries are translated on the node's device (netdev.c), not here. */
	if (!entry || (entry->flags & (JUNCTION_CT_F_SNAT | JUNCTION_CT_F_DSR |
					JUNCTION_CT_F_EXTERNAL)))
		return TC_ACT_OK;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb4_revnat, &revnat_key);
	/* The service is gone: nothing to translate back to; the client drops the packet. */
	if (!revnat)
		return TC_ACT_OK;
	entry->last_seen = bpf_ktime_get_ns();
	ct_note_close(entry, packet);
	if (jnc_nat_rewrite(skb, packet, JNC_IPV4_SADDR_OFF, packet->saddr, revnat->address,
			    packet->l4_off, packet->sport, revnat->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_ENDPOINT);
	trace->flags = JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_REPLY_KNOWN;
	trace->nat_address = revnat->address;
	trace->nat_port = revnat->port;
	trace->rev_nat_id = entry->rev_nat_id;
	return TC_ACT_OK;
}

/* ---- IPv6 ------------------------------------------------------------------------------ */

/* from_endpoint, for a packet to an IPv6 service frontend: pick, record, DNAT; a hairpin
 * goes straight back to the pod (lib/hairpin6.h). */
static __always_inline int lb6_service(struct __sk_buff *skb, const struct jnc_packet6 *packet,
				       const struct junction_lb6_service_key *frontend,
				       const struct junction_lb4_service *service,
				       struct jnc_trace6 *trace)
{
	const __u32 direction = JUNCTION_DIR_FROM_ENDPOINT;
	struct junction_lb6_backend *backend = NULL;
	__u64 now = bpf_ktime_get_ns();
	__u32 id;

	if (service->count == 0) {
		trace->skip = 1; /* the drop event tells it */
		count_drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		return jnc_icmp6_port_unreachable(skb, packet);
	}
	id = ct6_lookup_service(packet, service, now, &backend);
	if (!id) {
		id = select_backend6(packet, frontend, service, now, &backend);
		if (!id || !backend)
			return drop(skb, JUNCTION_DROP_NO_BACKEND, direction);
		if (ct6_create(packet, backend, id, service->rev_nat_id, now) < 0)
			return drop(skb, JUNCTION_DROP_CT_MAP_FULL, direction);
		trace->flags |= JUNCTION_FLOW_F_NEW;
	}
	if (jnc_nat6_rewrite(skb, packet, JNC_IPV6_DADDR_OFF, packet->daddr, backend->address,
			     packet->l4_off + 2, packet->dport, backend->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, direction);
	jnc_trace6_xlated(trace, backend->address, backend->port, service, now);
	if (jnc_addr6_equal(backend->address, packet->saddr)) {
		int verdict = jnc_hairpin6_request(skb, packet);

		return verdict < 0 ? drop(skb, JUNCTION_DROP_NAT_FAILED, direction) : verdict;
	}
	return TC_ACT_OK;
}

/* to_endpoint: a reply of an IPv6 service connection gets the VIP:port back as source. */
static __always_inline int lb6_reverse_nat(struct __sk_buff *skb, const struct jnc_packet6 *packet,
					   struct jnc_trace6 *trace)
{
	const struct junction_ct6_key key = ct6_key_of(packet, JUNCTION_CT_REPLY);
	struct junction_lb4_revnat_key revnat_key = {};
	struct junction_lb6_revnat *revnat;
	struct junction_ct6_entry *entry;

	entry = bpf_map_lookup_elem(&jnc_ct6, &key);
	/* North-south entries are translated on the node's device (lib/nodeport6.h). */
	if (!entry || (entry->flags & (JUNCTION_CT_F_SNAT | JUNCTION_CT_F_DSR |
					JUNCTION_CT_F_EXTERNAL)))
		return TC_ACT_OK;
	revnat_key.rev_nat_id = entry->rev_nat_id;
	revnat = bpf_map_lookup_elem(&jnc_lb6_revnat, &revnat_key);
	if (!revnat)
		return TC_ACT_OK;
	entry->last_seen = bpf_ktime_get_ns();
	ct6_note_close(entry, packet);
	if (jnc_nat6_rewrite(skb, packet, JNC_IPV6_SADDR_OFF, packet->saddr, revnat->address,
			     packet->l4_off, packet->sport, revnat->port) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_ENDPOINT);
	jnc_trace6_reply(trace, revnat->address, revnat->port, entry->rev_nat_id);
	return TC_ACT_OK;
}

/* The verdict for an IPv6 frame the parser did not hand over (`parsed` is not OK). */
static __always_inline int untranslated6(struct __sk_buff *skb, int parsed, __u32 direction)
{
	switch (parsed) {
	case JNC_PARSE_INVALID:
		return drop(skb, JUNCTION_DROP_INVALID_PACKET, direction);
	case JNC_PARSE_INVALID_EXTHDR:
		return drop(skb, JUNCTION_DROP_INVALID_EXTHDR, direction);
	default:
		return TC_ACT_OK;
	}
}

static __always_inline int from_endpoint_ipv6(struct __sk_buff *skb)
{
	struct junction_lb6_service_key frontend = {};
	struct jnc_packet6 packet = {};
	struct jnc_trace6 trace = {};
	struct junction_lb4_service *service;
	int parsed = jnc_parse_ipv6(skb, &packet);

	if (parsed != JNC_PARSE_OK)
		return untranslated6(skb, parsed, JUNCTION_DIR_FROM_ENDPOINT);
	if (jnc_is_service_loopback6(packet.daddr)) {
		int verdict = jnc_hairpin6_reply(skb, &packet);

		if (verdict < 0)
			return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_FROM_ENDPOINT);
		if (verdict != JNC_NOT_HAIRPIN) {
			trace.flags = JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_REPLY_KNOWN;
			return jnc_traced6(skb, &packet, JUNCTION_DIR_FROM_ENDPOINT, &trace, verdict);
		}
	}
	jnc_addr6_copy(frontend.address, packet.daddr);
	frontend.port = packet.dport;
	frontend.proto = packet.proto;
	service = bpf_map_lookup_elem(&jnc_lb6_svc, &frontend);
	if (!service)
		return jnc_traced6(skb, &packet, JUNCTION_DIR_FROM_ENDPOINT, &trace, TC_ACT_OK);
	service = lrp6_skip_from_backend(&packet, &frontend, service);
	if (!service)
		return jnc_traced6(skb, &packet, JUNCTION_DIR_FROM_ENDPOINT, &trace, TC_ACT_OK);
	return jnc_traced6(skb, &packet, JUNCTION_DIR_FROM_ENDPOINT, &trace,
			   lb6_service(skb, &packet, &frontend, service, &trace));
}

static __always_inline int to_endpoint_ipv6(struct __sk_buff *skb)
{
	struct jnc_packet6 packet = {};
	struct jnc_trace6 trace = {};
	int parsed = jnc_parse_ipv6(skb, &packet);

	/* ICMPv6 passes, except an error about a service connection (lib/icmp_error6.h). */
	if (parsed == JNC_PARSE_PASS && jnc_icmp6_error_rev_nat(skb, 0) < 0)
		return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_ENDPOINT);
	if (parsed != JNC_PARSE_OK)
		return untranslated6(skb, parsed, JUNCTION_DIR_TO_ENDPOINT);
	return jnc_traced6(skb, &packet, JUNCTION_DIR_TO_ENDPOINT, &trace,
			   lb6_reverse_nat(skb, &packet, &trace));
}

/* ---- Entry points ---------------------------------------------------------------------- */

/* Past parsing: hairpin answers, then services; everything else passes. */
static __always_inline int from_endpoint_ipv4(struct __sk_buff *skb, struct jnc_packet *packet,
					      struct jnc_trace *trace)
{
	struct junction_lb4_service_key frontend = {};
	struct junction_lb4_service *service;

	if (!jnc_skip(JNC_STAGE_HAIRPIN) && packet->daddr == jnc_service_loopback()) {
		int verdict = jnc_hairpin_reply(skb, packet);

		if (verdict < 0)
			return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_FROM_ENDPOINT);
		if (verdict != JNC_NOT_HAIRPIN) {
			trace->flags = JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_REPLY_KNOWN;
			return verdict;
		}
	}
	frontend.address = packet->daddr;
	frontend.port = packet->dport;
	frontend.proto = packet->proto;
	service = bpf_map_lookup_elem(&jnc_lb4_svc, &frontend);
	if (!service)
		return TC_ACT_OK;
	/* An L7 proxy frontend: to the node's proxy, untranslated (lib/proxy.h). */
	if (jnc_to_proxy_wanted(packet, service))
		return jnc_to_proxy(skb, packet, service, JUNCTION_DIR_FROM_ENDPOINT, trace);
	service = lrp_skip_from_backend(packet, &frontend, service);
	if (!service)
		return TC_ACT_OK;
	return lb4_service(skb, packet, &frontend, service, trace);
}

static __always_inline int from_endpoint_verdict(struct __sk_buff *skb)
{
	struct jnc_trace trace = {};
	struct jnc_packet packet = {};

	count_endpoint(skb, JUNCTION_DIR_FROM_ENDPOINT);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return from_endpoint_ipv6(skb);
	switch (jnc_parse_ipv4(skb, &packet)) {
	case JNC_PARSE_OK:
		break;
	case JNC_PARSE_INVALID:
		return drop(skb, JUNCTION_DROP_INVALID_PACKET, JUNCTION_DIR_FROM_ENDPOINT);
	default:
		return TC_ACT_OK;
	}
	return jnc_traced(skb, &packet, JUNCTION_DIR_FROM_ENDPOINT, &trace,
		      from_endpoint_ipv4(skb, &packet, &trace));
}

static __always_inline int to_endpoint_verdict(struct __sk_buff *skb)
{
	struct jnc_trace trace = {};
	struct jnc_packet packet = {};

	count_endpoint(skb, JUNCTION_DIR_TO_ENDPOINT);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return to_endpoint_ipv6(skb);
	switch (jnc_parse_ipv4(skb, &packet)) {
	case JNC_PARSE_OK:
		return jnc_traced(skb, &packet, JUNCTION_DIR_TO_ENDPOINT, &trace,
			      lb4_reverse_nat(skb, &packet, &trace));
	case JNC_PARSE_INVALID:
		return drop(skb, JUNCTION_DROP_INVALID_PACKET, JUNCTION_DIR_TO_ENDPOINT);
	default:
		/* ICMP passes, except an error about a service connection (lib/icmp_error.h). */
		if (jnc_icmp_error_rev_nat(skb, 0) < 0)
			return drop(skb, JUNCTION_DROP_NAT_FAILED, JUNCTION_DIR_TO_ENDPOINT);
		return TC_ACT_OK;
	}
}

/* Every packet let through goes on to the hook's next program (lib/verdict.h). */
SEC("tc")
int from_endpoint(struct __sk_buff *skb)
{
	JNC_VARIANT_MARK();
	return jnc_hook_verdict(from_endpoint_verdict(skb));
}

SEC("tc")
int to_endpoint(struct __sk_buff *skb)
{
	JNC_VARIANT_MARK();
	return jnc_hook_verdict(to_endpoint_verdict(skb));
}
