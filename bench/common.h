/*
 * common.h - argument helpers shared by the bench tools (loadgen, mkrepo).
 */
#ifndef SC_BENCH_COMMON_H
#define SC_BENCH_COMMON_H

/* Parse a decimal in [lo, hi]; otherwise print "PROG: bad WHAT: S" and exit 2. */
long bench_arg_long(const char *prog, const char *s, long lo, long hi, const char *what);

/* How many %d conversions @p p holds, or -1 when it has any other conversion (the
 * pattern is used as a printf format). */
int bench_pattern_count(const char *p);

#endif
