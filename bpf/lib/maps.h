/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the datapath, declared once for all its objects (endpoint.c, netdev.c,
 * sock.c). Each object that includes this declares the same maps; pinned by name, they are
 * one set of maps in the kernel, whichever object the agent loads first.
 */
#ifndef JUNCTION_LIB_MAPS_H
#define JUNCTION_LIB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"


/*
 * All maps are pinned by name (<pin root>/<map name>), so a restarted or upgraded agent
 * reloading this object gets the same maps back from libbpf, counters and (later) service
 * and conntrack state intact, instead of fresh empty ones. The variable names are the
 * JUNCTION_MAP_* names; the tests look every map up by those constants.
 */

/* Per endpoint counters. Per CPU: no atomics on the fast path. No prealloc: memory only
 * for the endpoints that exist (entries are created on a veth's first packet). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct junction_endpoint_key);
	__type(value, struct junction_endpoint_counters);
	__uint(max_entries, JUNCTION_ENDPOINT_COUNTERS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_ep_counters SEC(".maps");

/* Drops by (reason, direction). Preallocated: counting a drop must not need memory when
 * the node is short of it, which is when drops happen. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct junction_drop_key);
	__type(value, struct junction_drop_counters);
	__uint(max_entries, JUNCTION_DROPS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_drops SEC(".maps");

/*
 * Service tables, written only by the agent (the datapath reads them). Not preallocated:
 * memory for the services that exist, so the agent can size them generously.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb4_service_key);
	__type(value, struct junction_lb4_service);
	__uint(max_entries, JUNCTION_LB4_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb4_backend_key);
	__type(value, struct junction_lb4_backend);
	__uint(max_entries, JUNCTION_LB4_BACKENDS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb4_revnat_key);
	__type(value, struct junction_lb4_revnat);
	__uint(max_entries, JUNCTION_LB4_REVNAT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_revnat SEC(".maps");

/* Written by the datapath on every new connection to an affinity service; LRU so a full
 * map forgets the least recently used client instead of refusing a new one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct junction_lb4_affinity_key);
	__type(value, struct junction_lb4_affinity);
	__uint(max_entries, JUNCTION_LB4_AFFINITY_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_aff SEC(".maps");

/*
 * One Maglev table per service, by rev_nat_id. The inner map is the template the agent's
 * tables must match (ARRAY, key __u32, one value of the whole table): the agent creates a
 * map per table, fills it in one write and swaps it in with one outer update.
 */
struct jnc_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32[JUNCTION_MAGLEV_TABLE_SIZE]);
	__uint(max_entries, 1);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, struct junction_lb4_revnat_key);
	__uint(max_entries, JUNCTION_LB4_MAGLEV_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct jnc_maglev_inner);
} jnc_lb4_maglev SEC(".maps");

/*
 * Connections to services, two entries each (JUNCTION_CT_SERVICE as the client sends,
 * JUNCTION_CT_REPLY as the backend answers), so both directions are one exact lookup.
 * A plain preallocated hash, not LRU: a full table refuses a new connection (its packet is
 * dropped as JUNCTION_DROP_CT_MAP_FULL) instead of silently evicting an established one.
 * The agent deletes expired entries (idle past their lifetime, shorter once closing:
 * AgentCore's ConntrackExpiry, the lifetimes of lib/snat.h); between two of its sweeps an
 * SNAT port's expired REPLY entry may also be taken over by a new connection (lib/snat.h).
 */
/* The conntrack maps' type; -DJNC_CT_MAP_TYPE=BPF_MAP_TYPE_LRU_HASH builds them as ABI 4 did
 * (LRU), for the upgrade test that migrates such pinned maps (ConntrackMigrationTests). */
#ifndef JNC_CT_MAP_TYPE
#define JNC_CT_MAP_TYPE BPF_MAP_TYPE_HASH
#endif

struct {
	__uint(type, JNC_CT_MAP_TYPE);
	__type(key, struct junction_ct4_key);
	__type(value, struct junction_ct4_entry);
	__uint(max_entries, JUNCTION_CT4_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_ct4 SEC(".maps");

/* The IPv6 twins of the service, backend, reverse-NAT, affinity and conntrack maps, with
 * the same properties (junction_abi.h, "Service load balancing (IPv6)"). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb6_service_key);
	__type(value, struct junction_lb4_service);
	__uint(max_entries, JUNCTION_LB6_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb6_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb4_backend_key);
	__type(value, struct junction_lb6_backend);
	__uint(max_entries, JUNCTION_LB6_BACKENDS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb6_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_lb4_revnat_key);
	__type(value, struct junction_lb6_revnat);
	__uint(max_entries, JUNCTION_LB6_REVNAT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb6_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct junction_lb6_affinity_key);
	__type(value, struct junction_lb4_affinity);
	__uint(max_entries, JUNCTION_LB6_AFFINITY_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb6_aff SEC(".maps");

struct {
	__uint(type, JNC_CT_MAP_TYPE); /* not LRU: as jnc_ct4 */
	__type(key, struct junction_ct6_key);
	__type(value, struct junction_ct6_entry);
	__uint(max_entries, JUNCTION_CT6_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_ct6 SEC(".maps");

/* Node devices served north-south, by ifindex; written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_device_key);
	__type(value, struct junction_device);
	__uint(max_entries, JUNCTION_DEVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_devices SEC(".maps");

/* The node's settings the datapath needs (one entry); written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct junction_node_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_node_cfg SEC(".maps");

/* Socket LB's reverse translation, per socket and backend; LRU: sockets are not tracked to
 * their close, so the coldest entries make room. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct junction_lb4_sock_key);
	__type(value, struct junction_lb4_sock_revnat);
	__uint(max_entries, JUNCTION_LB4_SOCK_REVNAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb4_sk_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct junction_lb6_sock_key);
	__type(value, struct junction_lb6_sock_revnat);
	__uint(max_entries, JUNCTION_LB6_SOCK_REVNAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_lb6_sk_rev SEC(".maps");

/* Socket LB's pods, by network namespace cookie; written only by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct junction_pod_netns_key);
	__type(value, struct junction_pod_netns);
	__uint(max_entries, JUNCTION_POD_NETNS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_pod_netns SEC(".maps");

/* The node's L7 proxy listeners by proxy port (junction_abi.h); written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, struct junction_proxy_listener_key);
	__type(value, __u64);
	__uint(max_entries, JUNCTION_PROXY_LISTENERS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_proxy_lsn SEC(".maps");

/* Flow events for the agent (lib/events.h); one ring for every CPU and program. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, JUNCTION_EVENTS_RING_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_events SEC(".maps");

/* Events the full ring could not take, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct junction_events_lost);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_ev_lost SEC(".maps");

/* The monitor level (one entry); written by the agent, OFF until it does. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct junction_monitor_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jnc_mon_cfg SEC(".maps");

#endif /* JUNCTION_LIB_MAPS_H */
