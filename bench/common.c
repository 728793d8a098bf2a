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
