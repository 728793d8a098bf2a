/*
 * common.h - helpers shared by the bench tools (loadgen, mkrepo, lookup).
 */
#ifndef SC_BENCH_COMMON_H
#define SC_BENCH_COMMON_H

#include <stddef.h>

/* Parse a decimal in [lo, hi]; otherwise print "PROG: bad WHAT: S" and exit 2. */
long bench_arg_long(const char *prog, const char *s, long lo, long hi, const char *what);

/* How many %d conversions @p p holds, or -1 when it has any other conversion (the
 * pattern is used as a printf format). */
int bench_pattern_count(const char *p);

/* The next random address: @p pattern (checked by bench_pattern_count()) with a
 * number in [0, @p range) from the xorshift state *@p rng, into @p buf.
 * @return its length, or -1 when it does not fit. */
int bench_next_addr(unsigned long *rng, const char *pattern, long range, char *buf,
		    size_t size);

#endif
