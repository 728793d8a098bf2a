/*
 * lookup.c - bench tool: the cost of one repository lookup in-process, without
 * the network: sc_repo_lookup() of random addresses, optionally under a CRL set,
 * as the daemon's CERT does it. Separates the store's share of a request from
 * the event loop's and the socket's. Runs standalone from bench/run.
 *
 * Usage: lookup SPEC PATTERN RANGE COUNT [CRL_FILE]
 *   SPEC      repository spec, opened read-only (e.g. lmdb:/path)
 *   PATTERN   printf pattern with one %d, e.g. user%d@example.test
 *   RANGE     addresses 0 .. RANGE-1, drawn at random (xorshift, fixed seed)
 *   COUNT     lookups to time
 *   CRL_FILE  CRLs applied to every lookup (PEM or DER)
 * Prints "lookups=N found=F wall_ns=X cpu_ns=C crl_load_ms=Y check=K" per lookup on
 * stdout (wall clock and CPU time per lookup; the CRL's parse time).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <smtpcert/smtpcert.h>

#include "common.h"

/* CPU time of this process (user + system): what contention disturbs least. */
static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the daemon does with the entry: read the leaf (it encodes it as PEM). */
static sc_status touch(void *arg, const struct sc_repo_entry *e)
{
	unsigned *sum = arg;

	for (size_t i = 0; i < e->der_len[0]; i += 64)
		*sum += e->der[0][i];
	return SC_OK;
}

int main(int argc, char **argv)
{
	sc_repo *repo;
	sc_crlset *crls = NULL;
	char err[512];
	long range, count, found = 0;
	unsigned long rng = 88172645463325252UL;
	unsigned sum = 0;
	double t0, c0, crl_ms = 0;
	sc_status st;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: lookup SPEC PATTERN RANGE COUNT [CRL_FILE]\n");
		return 2;
	}
	if (bench_pattern_count(argv[2]) != 1) {
		fprintf(stderr, "lookup: PATTERN needs exactly one %%d\n");
		return 2;
	}
	range = bench_arg_long("lookup", argv[3], 1, 1000000000L, "RANGE");
	count = bench_arg_long("lookup", argv[4], 1, 1000000000L, "COUNT");
	if (argc > 5) {
		t0 = now_s();
		snprintf(err, sizeof err, "out of memory");
		if (sc_crlset_new(&crls) != SC_OK ||
		    sc_crlset_add_file(crls, argv[5], err, sizeof err) != SC_OK) {
			fprintf(stderr, "lookup: %s: %s\n", argv[5], err);
			return 1;
		}
		crl_ms = (now_s() - t0) * 1e3;
	}
	st = sc_repo_open(argv[1], SC_REPO_RDONLY, &repo, err, sizeof err);
	if (st != SC_OK) {
		fprintf(stderr, "lookup: %s\n", err);
		return 1;
	}
	t0 = now_s();
	c0 = cpu_s();
	for (long i = 0; i < count; i++) {
		char buf[SC_LOCAL_MAX + SC_DOMAIN_MAX + 2];
		struct sc_addr a;
		int len;

		len = bench_next_addr(&rng, argv[2], range, buf, sizeof buf);
		if (len < 0 ||
		    sc_addr_parse(buf, (size_t)len, 0, &a, NULL) != SC_OK) {
			fprintf(stderr, "lookup: not an address: %s\n", buf);
			return 1;
		}
		st = sc_repo_lookup(repo, &a, time(NULL), crls, touch, &sum);
		if (st == SC_OK)
			found++;
		else if (st != SC_ERR_NOT_FOUND) {
			fprintf(stderr, "lookup: %s: %s\n", buf, sc_strerror(st));
			return 1;
		}
	}
	printf("lookups=%ld found=%ld wall_ns=%.0f cpu_ns=%.0f "
	       "crl_load_ms=%.1f check=%u\n", count, found,
	       (now_s() - t0) * 1e9 / (double)count, (cpu_s() - c0) * 1e9 / (double)count,
	       crl_ms, sum & 1);
	sc_repo_close(repo);
	sc_crlset_free(crls);
	return 0;
}
