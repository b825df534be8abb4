/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bench-only stage switches for the first-packet attribution (bench/first-packet.sh): a build
 * with -DJNC_BENCH_SKIP=<mask of JNC_STAGE_*> leaves out one or more stages of
 * from_endpoint's IPv4 service path, so timing it against the full build tells what that
 * stage costs. Such a build is wrong on purpose (no conntrack, no NAT...) and only ever
 * loaded by the bench. The default build has JNC_BENCH_SKIP 0: every jnc_skip() is a
 * constant 0 the compiler folds away, so its instructions are the same as without this file.
 */
#ifndef JNC_LIB_STAGES_H
#define JNC_LIB_STAGES_H

#ifndef JNC_BENCH_SKIP
#define JNC_BENCH_SKIP 0
#endif

#define JNC_STAGE_FLOW_EVENT 0x001  /* jnc_emit_trace (level lookup, record) */
#define JNC_STAGE_LRP 0x002         /* lrp_skip_from_backend */
#define JNC_STAGE_HAIRPIN 0x004     /* the loopback check and the hairpin test */
#define JNC_STAGE_AFFINITY 0x008    /* ClientIP affinity lookup and update */
#define JNC_STAGE_SELECT 0x010      /* slot + backend lookups: a constant backend instead */
#define JNC_STAGE_CT_REPLY 0x020    /* the REPLY conntrack insert */
#define JNC_STAGE_CT_REQUEST 0x040  /* the SERVICE conntrack insert */
#define JNC_STAGE_NAT 0x080         /* the DNAT rewrite with its checksums */
#define JNC_STAGE_CT_LOOKUP 0x100   /* the conntrack lookup (a miss for a first packet) */
#define JNC_STAGE_COUNT 0x200       /* the per-endpoint packet and byte counters */
#define JNC_STAGE_PROXY 0x400       /* the L7 proxy frontend test */
#define JNC_STAGE_EVENT_QUERY 0x1000 /* the ring fill query of a flow event (never wake) */
/* Not a stage: the conntrack lookup always misses, so a run repeated over one packet
 * (BPF_PROG_TEST_RUN repeat=N) takes the first-packet path every time; the inserts then
 * replace the entries the previous run wrote (BPF_ANY), and the DNAT is undone after it
 * (lib/nat.h), since every run of a repeated test run sees the same skb. */
#define JNC_STAGE_ALWAYS_NEW 0x800

#define jnc_skip(stage) ((JNC_BENCH_SKIP & (stage)) != 0)

#endif /* JNC_LIB_STAGES_H */
