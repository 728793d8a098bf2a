/*
 * mkrepo.c - bench tool: fill a repository with many addresses through the public
 * API (sc_repo_store_batch), and report the import rate. Runs standalone from
 * bench/run; never part of the daemon.
 *
 * Usage: mkrepo SPEC CERT.pem PATTERN FIRST COUNT [BATCH]
 *   SPEC     repository spec, e.g. lmdb:/path (created when missing)
 *   CERT.pem certificate (leaf + chain) stored under every address
 *   PATTERN  printf pattern with one %d, e.g. user%d@example.test (none when
 *            COUNT is 1: one address)
 *   FIRST, COUNT   addresses FIRST .. FIRST+COUNT-1
 *   BATCH    entries per transaction (default 10000)
 * Prints "imported N in S s: R/s" on stdout, progress on stderr when it is a tty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <smtpcert/smtpcert.h>

#include "common.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The pattern is used as a format string: only %d conversions, exactly one
 * (or none for a single address). */
static int pattern_ok(const char *p, long count)
{
	int n = bench_pattern_count(p);

	return n == 1 || (n == 0 && count == 1);
}

int main(int argc, char **argv)
{
	const char *pattern;
	sc_repo *repo;
	sc_cert *cert;
	struct sc_addr *addrs;
	const sc_cert **certs;
	char err[512];
	long first, count, batch;
	int tty = isatty(2);
	double t0, t;
	sc_status st;

	if (argc < 6 || argc > 7) {
		fprintf(stderr, "usage: mkrepo SPEC CERT.pem PATTERN FIRST COUNT [BATCH]\n");
		return 2;
	}
	pattern = argv[3];
	first = bench_arg_long("mkrepo", argv[4], 0, 1000000000L, "FIRST");
	count = bench_arg_long("mkrepo", argv[5], 1, 100000000L, "COUNT");
	if (!pattern_ok(pattern, count)) {
		fprintf(stderr, "mkrepo: PATTERN needs exactly one %%d\n");
		return 2;
	}
	batch = argc > 6 ? bench_arg_long("mkrepo", argv[6], 1, 1000000L, "BATCH") : 10000;
	st = sc_cert_load_file(argv[2], &cert);
	if (st != SC_OK) {
		fprintf(stderr, "mkrepo: %s: %s\n", argv[2], sc_strerror(st));
		return 1;
	}
	st = sc_repo_open(argv[1], SC_REPO_CREATE, &repo, err, sizeof err);
	if (st != SC_OK) {
		fprintf(stderr, "mkrepo: %s\n", err);
		return 1;
	}
	addrs = calloc((size_t)batch, sizeof *addrs);
	certs = calloc((size_t)batch, sizeof *certs);
	if (!addrs || !certs) {
		fprintf(stderr, "mkrepo: out of memory\n");
		return 1;
	}
	for (long i = 0; i < batch; i++)
		certs[i] = cert;
	t0 = now_s();
	for (long done = 0; done < count;) {
		long n = count - done < batch ? count - done : batch;

		for (long i = 0; i < n; i++) {
			char buf[SC_LOCAL_MAX + SC_DOMAIN_MAX + 2];
			int len;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			len = snprintf(buf, sizeof buf, pattern, (int)(first + done + i));
#pragma GCC diagnostic pop
			if (len < 0 || (size_t)len >= sizeof buf ||
			    sc_addr_parse(buf, (size_t)len, 0, &addrs[i], NULL) != SC_OK) {
				fprintf(stderr, "mkrepo: not an address: %s\n", buf);
				return 1;
			}
		}
		st = sc_repo_store_batch(repo, addrs, certs, (size_t)n, NULL);
		if (st != SC_OK) {
			fprintf(stderr, "mkrepo: store: %s\n", sc_strerror(st));
			return 1;
		}
		done += n;
		if (tty)
			fprintf(stderr, "\rmkrepo: %ld/%ld (%3ld%%)", done, count,
				done * 100 / count);
	}
	t = now_s() - t0;
	if (tty)
		fputc('\n', stderr);
	printf("imported %ld in %.2f s: %.0f/s\n", count, t, (double)count / t);
	sc_repo_close(repo);
	sc_cert_free(cert);
	free(addrs);
	free(certs);
	return 0;
}
