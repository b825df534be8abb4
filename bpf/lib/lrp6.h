/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Local Redirect Policy over IPv6, the twin of endpoint.c's IPv4 lrp_skip_from_backend. A
 * redirected IPv6 frontend is an ordinary jnc_lb6_svc entry (JUNCTION_SVC_F_LOCAL_REDIRECT,
 * this node's pods of the policy as its slots), balanced as any other; the only IPv6 code of
 * its own is skipRedirectFromBackend: a client that is one of those pods gets the original
 * Service, written by the agent under JUNCTION_SCOPE_REDIRECT_ORIGIN, or, for an address
 * matcher (no origin entry), passes untouched.
 */
#ifndef JUNCTION_LIB_LRP6_H
#define JUNCTION_LIB_LRP6_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "junction_abi.h"
#include "lib/lrp.h" /* JNC_LRP_MAX_SLOTS: the same bound for both families */
#include "lib/maps.h"
#include "lib/parse6.h"

/* Whether `client` is one of the backends in the frontend's slots. */
static __always_inline int lrp6_client_is_backend(const struct junction_lb6_service_key *frontend,
						  const struct junction_lb4_service *service,
						  const __be32 *client)
{
	struct junction_lb6_service_key key = *frontend;
	struct junction_lb4_backend_key backend_key = {};
	struct junction_lb6_backend *backend;
	struct junction_lb4_service *slot;

	for (__u16 index = 1; index <= JNC_LRP_MAX_SLOTS; index++) {
		if (index > service->count)
			break;
		key.slot = index;
		slot = bpf_map_lookup_elem(&jnc_lb6_svc, &key);
		if (!slot)
			continue;
		backend_key.backend_id = slot->backend_id;
		backend = bpf_map_lookup_elem(&jnc_lb6_be, &backend_key);
		if (backend && jnc_addr6_equal(backend->address, client))
			return 1;
	}
	return 0;
}

/*
 * skipRedirectFromBackend: a policy's own pod reaching its redirected frontend gets the
 * original Service (the REDIRECT_ORIGIN-scope entry; `frontend` is switched to that scope so
 * selection reads its slots) or, with no origin, NULL: its packet passes untouched. Anything
 * else keeps `service`.
 */
static __always_inline struct junction_lb4_service *
lrp6_skip_from_backend(const struct jnc_packet6 *packet, struct junction_lb6_service_key *frontend,
		       struct junction_lb4_service *service)
{
	const __u16 skip = JUNCTION_SVC_F_LOCAL_REDIRECT | JUNCTION_SVC_F_SKIP_FROM_BACKEND;

	if ((service->flags & skip) != skip ||
	    !lrp6_client_is_backend(frontend, service, packet->saddr))
		return service;
	frontend->scope = JUNCTION_SCOPE_REDIRECT_ORIGIN;
	return bpf_map_lookup_elem(&jnc_lb6_svc, frontend);
}

#endif /* JUNCTION_LIB_LRP6_H */
