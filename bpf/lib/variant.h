/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef JNC_LIB_VARIANT_H
#define JNC_LIB_VARIANT_H

/* A build whose programs differ from the default one in their bytes and in nothing else:
 * `BPF_CFLAGS=-DJNC_BUILD_VARIANT=N install/build-bpf.sh DIR` puts one "r0 = N" at the top
 * of every entry point (r0 is written, never read, before the program sets it), so the
 * kernel sees other programs (another tag) that behave the same. bench/restarts.py upgrades
 * running agents to such a build to prove the agent replaces the programs of live endpoints
 * and devices under traffic. The default build has no such instruction. */
#ifdef JNC_BUILD_VARIANT
#define JNC_VARIANT_MARK() asm volatile("r0 = %[n]" ::[n] "i"(JNC_BUILD_VARIANT) : "r0")
#else
#define JNC_VARIANT_MARK() \
	do {               \
	} while (0)
#endif

#endif
