/*
 * lookup.c - bench tool: the cost of one repository lookup in-process, without
 * the network: sc_repo_lookup() of random addresses, optionally under a CRL set,
 * as the daemon's CERT does it. Separates the store's share of a request from
 * the event loop's and the socket's. Runs standalone from bench/run.
 *
 * Usage: [LOOKUP_INDEX=1] [LOOKUP_BATCH=N] lookup SPEC PATTERN RANGE COUNT [CRL_FILE]
 *   SPEC      repository spec, opened read-only (e.g. lmdb:/path)
 *   PATTERN   printf pattern with one %d, e.g. user%d@example.test
 *   RANGE     addresses 0 .. RANGE-1, drawn at random (xorshift, fixed seed)
 *   COUNT     lookups to time
 *   CRL_FILE  CRLs applied to every lookup (PEM or DER)
 *   LOOKUP_INDEX=1 builds the store's lookup index first (sc_repo_index_refresh(),
 *             as smtpcertd does), LOOKUP_BATCH=N (1..32; useful with the index) looks up
 *             N addresses at a time after sc_repo_prefetch() of all N, as for N
 *             pipelined CERTs; LOOKUP_INDEX=copy copies every entry list into the
 *             index as well (sc_repo_index_copy_limit())
 * Prints "lookups=N found=F wall_ns=X cpu_ns=C crl_load_ms=Y index_ms=I check=K" per
 * lookup on stdout (wall clock and CPU time per lookup; the CRL's parse time; the
 * index's build time, 0 without).
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
	double t0, c0, crl_ms = 0, index_ms = 0;
	long batch = 1;
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
	if (getenv("LOOKUP_INDEX") && strcmp(getenv("LOOKUP_INDEX"), "1") != 0 &&
	    strcmp(getenv("LOOKUP_INDEX"), "copy") != 0) {
		fprintf(stderr, "lookup: LOOKUP_INDEX must be 1 or copy\n");
		return 1;
	}
	if (getenv("LOOKUP_INDEX")) {
		if (strcmp(getenv("LOOKUP_INDEX"), "copy") == 0)
			sc_repo_index_copy_limit(repo, SIZE_MAX);
		t0 = now_s();
		st = sc_repo_index_refresh(repo, NULL, NULL);
		if (st != SC_OK) {
			fprintf(stderr, "lookup: index: %s\n", sc_strerror(st));
			return 1;
		}
		index_ms = (now_s() - t0) * 1e3;
	}
	if (getenv("LOOKUP_BATCH"))
		batch = bench_arg_long("lookup", getenv("LOOKUP_BATCH"), 1, SC_REPO_PREFETCH_MAX,
				       "LOOKUP_BATCH");
	t0 = now_s();
	c0 = cpu_s();
	for (long i = 0; i < count; i += batch) {
		char buf[SC_REPO_PREFETCH_MAX][SC_LOCAL_MAX + SC_DOMAIN_MAX + 2];
		const char *args[SC_REPO_PREFETCH_MAX];
		size_t lens[SC_REPO_PREFETCH_MAX];
		long n = count - i < batch ? count - i : batch;

		for (long b = 0; b < n; b++) {
			int len = bench_next_addr(&rng, argv[2], range, buf[b], sizeof buf[b]);

			if (len < 0) {
				fprintf(stderr, "lookup: PATTERN too long\n");
				return 1;
			}
			args[b] = buf[b];
			lens[b] = (size_t)len;
		}
		if (n > 1)
			sc_repo_prefetch(repo, args, lens, (size_t)n);
		for (long b = 0; b < n; b++) {
			struct sc_addr a;

			if (sc_addr_parse(buf[b], lens[b], 0, &a, NULL) != SC_OK) {
				fprintf(stderr, "lookup: not an address: %s\n", buf[b]);
				return 1;
			}
			st = sc_repo_lookup(repo, &a, time(NULL), crls, touch, &sum);
			if (st == SC_OK)
				found++;
			else if (st != SC_ERR_NOT_FOUND) {
				fprintf(stderr, "lookup: %s: %s\n", buf[b], sc_strerror(st));
				return 1;
			}
		}
	}
	printf("lookups=%ld found=%ld wall_ns=%.0f cpu_ns=%.0f "
	       "crl_load_ms=%.1f index_ms=%.0f check=%u\n", count, found,
	       (now_s() - t0) * 1e9 / (double)count, (cpu_s() - c0) * 1e9 / (double)count,
	       crl_ms, index_ms, sum & 1);
	sc_repo_close(repo);
	sc_crlset_free(crls);
	return 0;
}
