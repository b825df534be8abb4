/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * North-south SNAT to a remote backend: the connection leaves the ingress node with the
 * node's address on the device and a source port of the node's SNAT range, so the backend's
 * replies come back to this node, which translates them back to the client.
 */
#ifndef JUNCTION_LIB_SNAT_H
#define JUNCTION_LIB_SNAT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lib/lb4.h"
#include "lib/maps.h"
#include "lib/parse.h"

/* Ports tried from a random start before giving up (JUNCTION_DROP_NO_NAT_PORT). Random
 * starts spread connections over the range, so a few probes find a free port until the
 * range is nearly full (each port is free per backend address:port, not globally). */
#define JNC_SNAT_PORT_PROBES 8

/* Used until the agent has written jnc_node_cfg (Cilium's NodePort SNAT ports). */
#define JNC_SNAT_PORT_MIN_DEFAULT 32768
#define JNC_SNAT_PORT_MAX_DEFAULT 65535

/*
 * Claims a source port for a connection from `node` to `backend` and records its REPLY
 * entry (backend -> node:port; nat = the client's address:port, the SNAT flag, `reply`'s
 * other fields). The claim is the BPF_NOEXIST insert itself: two CPUs picking the same port
 * for the same backend cannot both win. Returns the port (network order), or 0 when none
 * of the probed ports was free.
 */
static __always_inline __be16 jnc_snat_claim_port(const struct jnc_packet *packet,
						  const struct junction_lb4_backend *backend,
						  __be32 node, const struct junction_ct4_entry *reply)
{
	struct junction_ct4_key key =
		ct_key(backend->address, node, backend->port, 0, packet->proto, JUNCTION_CT_REPLY);
	const __u32 zero = 0;
	struct junction_node_config *config = bpf_map_lookup_elem(&jnc_node_cfg, &zero);
	__u32 low = JNC_SNAT_PORT_MIN_DEFAULT, high = JNC_SNAT_PORT_MAX_DEFAULT;
	__u32 span, start;

	if (config && config->snat_port_min && config->snat_port_min <= config->snat_port_max) {
		low = config->snat_port_min;
		high = config->snat_port_max;
	}
	span = high - low + 1;
	start = bpf_get_prandom_u32() % span;
	for (__u32 probe = 0; probe < JNC_SNAT_PORT_PROBES; probe++) {
		key.dport = bpf_htons((__u16)(low + (start + probe) % span));
		if (bpf_map_update_elem(&jnc_ct4, &key, reply, BPF_NOEXIST) == 0)
			return key.dport;
	}
	return 0;
}

#endif /* JUNCTION_LIB_SNAT_H */
