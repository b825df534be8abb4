/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bob Jenkins' lookup3 final mix, as the kernel's jhash_3words: cheap, well mixed, and
 * fully specified here, because the Maglev slot of a connection must be the same on every
 * node (and the tests recompute it in Swift).
 */
#ifndef JUNCTION_LIB_JHASH_H
#define JUNCTION_LIB_JHASH_H

#include <linux/types.h>

#define JUNCTION_JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 jnc_rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

/* jhash_3words(a, b, c, initval): a, b += INITVAL; c += initval; final mix; return c. */
static __always_inline __u32 jnc_jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += JUNCTION_JHASH_INITVAL;
	b += JUNCTION_JHASH_INITVAL;
	c += initval;
	c ^= b; c -= jnc_rol32(b, 14);
	a ^= c; a -= jnc_rol32(c, 11);
	b ^= a; b -= jnc_rol32(a, 25);
	c ^= b; c -= jnc_rol32(b, 16);
	a ^= c; a -= jnc_rol32(c, 4);
	b ^= a; b -= jnc_rol32(a, 14);
	c ^= b; c -= jnc_rol32(b, 24);
	return c;
}

#endif /* JUNCTION_LIB_JHASH_H */
