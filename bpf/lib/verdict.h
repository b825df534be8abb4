/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What an entry point returns for a packet it lets through: TC_ACT_UNSPEC, not TC_ACT_OK.
 *
 * Chained after another CNI, Junction's program is often not the only one on a hook: a
 * network policy agent's (aws-network-policy-agent on EKS, Calico's eBPF programs) runs on
 * the same pod veth. Junction's filter is first (priority 1 on clsact, BPF_F_BEFORE on
 * tcx), and any verdict but TC_ACT_UNSPEC ends the hook there: cls_bpf in direct-action
 * mode stops the filter chain at the first filter with a verdict, and on tcx anything but
 * TCX_NEXT (the same -1) skips the later tcx programs and every clsact filter. TC_ACT_OK
 * would let each packet bypass the policy that follows. TC_ACT_UNSPEC passes the packet
 * on (translated or not) to the next program, and, when none follows, into the stack as
 * TC_ACT_OK does. Drops and redirects keep their verdicts: the packet leaves the hook.
 */
#ifndef JUNCTION_LIB_VERDICT_H
#define JUNCTION_LIB_VERDICT_H

#include <linux/pkt_cls.h>

static __always_inline int jnc_hook_verdict(int verdict)
{
	return verdict == TC_ACT_OK ? TC_ACT_UNSPEC : verdict;
}

#endif /* JUNCTION_LIB_VERDICT_H */
