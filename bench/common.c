/*
 * common.c - argument helpers shared by the bench tools (see common.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

long bench_arg_long(const char *prog, const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: bad %s: %s\n", prog, what, s);
		exit(2);
	}
	return v;
}

int bench_pattern_count(const char *p)
{
	int n = 0;

	for (; *p; p++) {
		if (*p != '%')
			continue;
		if (p[1] == '%') {
			p++;
			continue;
		}
		if (p[1] != 'd')
			return -1;
		n++;
	}
	return n;
}

int bench_next_addr(unsigned long *rng, const char *pattern, long range, char *buf,
		    size_t size)
{
	int n;

	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = snprintf(buf, size, pattern, (int)(*rng % (unsigned long)range));
#pragma GCC diagnostic pop
	return n < 0 || (size_t)n >= size ? -1 : n;
}
