/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Local Redirect Policy's skipRedirectFromBackend, shared by the per-packet path
 * (from_endpoint) and the socket path (sock.c), so both decide alike for the same client.
 */
#ifndef JUNCTION_LIB_LRP_H
#define JUNCTION_LIB_LRP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/stages.h"

/* A redirect frontend has this node's pods of the policy as its slots; skipRedirectFromBackend
 * looks at most this many of them for the client (a node runs a handful of such pods). */
#define JNC_LRP_MAX_SLOTS 16

/* Whether `client` is one of the backends in the frontend's slots. */
static __always_inline int lrp_client_is_backend(const struct junction_lb4_service_key *frontend,
						 const struct junction_lb4_service *service,
						 __be32 client)
{
	struct junction_lb4_service_key key = *frontend;
	struct junction_lb4_backend_key backend_key = {};
	struct junction_lb4_backend *backend;
	struct junction_lb4_service *slot;

	for (__u16 index = 1; index <= JNC_LRP_MAX_SLOTS; index++) {
		if (index > service->count)
			break;
		key.slot = index;
		slot = bpf_map_lookup_elem(&jnc_lb4_svc, &key);
		if (!slot)
			continue;
		backend_key.backend_id = slot->backend_id;
		backend = bpf_map_lookup_elem(&jnc_lb4_be, &backend_key);
		if (backend && backend->address == client)
			return 1;
	}
	return 0;
}

/*
 * skipRedirectFromBackend: a policy's own pod reaching its redirected frontend gets the
 * original Service (the REDIRECT_ORIGIN-scope entry) instead of itself, or, for an address
 * with no origin, passes untouched (NULL). Anything else keeps `service`.
 */
static __always_inline struct junction_lb4_service *
lrp_skip_from_backend(const struct jnc_packet *packet, struct junction_lb4_service_key *frontend,
		      struct junction_lb4_service *service)
{
	const __u16 skip = JUNCTION_SVC_F_LOCAL_REDIRECT | JUNCTION_SVC_F_SKIP_FROM_BACKEND;

	if (jnc_skip(JNC_STAGE_LRP) || (service->flags & skip) != skip ||
	    !lrp_client_is_backend(frontend, service, packet->saddr))
		return service;
	frontend->scope = JUNCTION_SCOPE_REDIRECT_ORIGIN;
	return bpf_map_lookup_elem(&jnc_lb4_svc, frontend);
}

#endif /* JUNCTION_LIB_LRP_H */
