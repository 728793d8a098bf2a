/*
 * lookup_int.h - private to the certificate lookup (lib/lookup*.c, lib/dns.c)
 * and its unit tests: the known-certificates store (TOFU), the answer cache,
 * the CA rule of the pin check and the DNSSEC-aware resolver. Not installed.
 */
#ifndef SMTPCERT_LOOKUP_INT_H
#define SMTPCERT_LOOKUP_INT_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>

#include "smtpcert/smtpcert.h"
#include "smtpcert/lookup.h"


/**
 * Atomic file replacement for the known_certs file and the cache: open a 0600
 * temporary file next to @p path (its name into @p tmp of @p tmpsize octets).
 * @return SC_OK with *@p f open; SC_ERR_TOO_LONG; SC_ERR_IO (message in @p err).
 */
SC_MUST_CHECK sc_status lookup_tmp_open(const char *path, char *tmp, size_t tmpsize, FILE **f,
					char *err, size_t errlen);

/**
 * Finish what lookup_tmp_open() began: unless @p bad (a write already failed),
 * flush, fsync, close and rename over @p path; on any failure the temporary file
 * is removed and @p path is left as it was.
 * @return SC_OK; SC_ERR_IO (message in @p err).
 */
SC_MUST_CHECK sc_status lookup_tmp_commit(FILE *f, int bad, const char *tmp, const char *path,
					  char *err, size_t errlen);

/* Longest line of the known-certificates file; longer lines are corrupt. */
#define KNOWN_LINE_MAX 1024
/* Largest known-certificates file read (a bound, not a quota: ~100k addresses). */
#define KNOWN_FILE_MAX (16 * 1024 * 1024)

/*
 * Compare @p c with what @p path remembers for lookup key @p key and record the
 * outcome (first-seen / last-seen) at @p now: new -> added (SC_PIN_NEW); same ->
 * last-seen updated (SC_PIN_SAME); changed -> replaced when @p ca_ok
 * (SC_PIN_CHANGED_CA) or @p accept_new (SC_PIN_ACCEPTED_NEW), else
 * SC_ERR_CHANGED naming both fingerprints. The file is rewritten atomically
 * (temporary file + rename, mode 0600); lines that do not parse are kept as they
 * are and otherwise ignored.
 * @return SC_OK with *@p pin; SC_ERR_CHANGED; SC_ERR_IO; SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status lookup_known_check(const char *path, const char *key, const sc_cert *c,
					   int ca_ok, int accept_new, time_t now,
					   enum sc_pin *pin, char *err, size_t errlen);

/*
 * The cache: one PEM file per question (address, server or MX, trust anchors,
 * chain flag) named by the SHA-256 of the question, with a header that repeats
 * the question and says when and how it was fetched.
 */
struct lookup_cache_meta {
	int64_t fetched;          /* seconds since the epoch */
	enum sc_trust trust;      /* how the channel was authenticated back then */
	int dnssec;
	char server[SC_DOMAIN_MAX + 8];
};

/* The question a cached answer answers: address key, server (or MX and port),
 * trust anchors, chain flag. */
void lookup_question(const char *key, const struct sc_lookup_opts *o, char *out, size_t size);

/* Cache file name (without directory) for @p question: hex SHA-256 + ".pem". */
void lookup_cache_name(const char *question, char out[70]);

/*
 * Look up @p question in @p dir. A hit needs the same question in the header and
 * now < fetched + @p ttl. @return SC_OK with *@p out (caller frees) and @p meta;
 * SC_ERR_NOT_FOUND (absent, stale or unreadable: never an error for the caller).
 */
SC_MUST_CHECK sc_status lookup_cache_get(const char *dir, const char *question, int ttl,
					 time_t now, sc_cert **out, struct lookup_cache_meta *meta);

/* Store @p c as the answer to @p question (atomic, mode 0600; creates @p dir 0700). */
SC_MUST_CHECK sc_status lookup_cache_put(const char *dir, const char *question, const sc_cert *c,
					 const struct lookup_cache_meta *meta, char *err,
					 size_t errlen);

/* Remove the cache entry for @p question (best effort). */
void lookup_cache_drop(const char *dir, const char *question);

/*
 * The CA rule of the pin check: non-zero when @p c (leaf, with its chain as
 * untrusted intermediates) verifies for S/MIME encryption against the anchors
 * in @p ca_file at @p now.
 */
int lookup_chains_to_ca(const sc_cert *c, const char *ca_file, time_t now);

/* mkdir -p with mode 0700 for the user's private directories. */
SC_MUST_CHECK sc_status lookup_mkdirs(const char *path, char *err, size_t errlen);

/* What one fetch brought back, before the checks and the pin. */
struct lookup_fetch {
	sc_cert *cert;            /* owned until handed to the result */
	enum sc_trust trust;
	int dnssec;               /* the MX answer validated under DNSSEC */
	char server[SC_DOMAIN_MAX + 8];
	char detail[256];
};

/* Default port for MX hosts (RFC 5321 4.5.4 / 7672 2.2.3: TLSA at _25._tcp). */
#define LOOKUP_MX_PORT "25"

/*
 * Ask one server for @p a's certificate: connect to @p addr (a host name or an
 * IP address) on @p port, STARTTLS authenticating @p tls_name by DANE when
 * @p ntlsa > 0, else PKIX (o->ca_file or the system store), unless o->insecure.
 * Fills @p f (trust, server, detail) on SC_OK. Statuses of sc_smtp_connect()
 * and sc_smtp_fetch_cert(); a message goes to @p err.
 */
SC_MUST_CHECK sc_status lookup_ask(const struct sc_addr *a, const struct sc_lookup_opts *o,
				   const char *addr, const char *port, const char *tls_name,
				   const struct sc_tlsa *tlsa, size_t ntlsa, struct lookup_fetch *f,
				   char *err, size_t errlen);

/*
 * Without --server: the MX hosts of @p a's domain in order (RFC 5321 5.1), each
 * authenticated by DANE when its MX and TLSA records validate under DNSSEC
 * (RFC 7672), else by PKIX. lookup_mx.c.
 */
SC_MUST_CHECK sc_status lookup_fetch_mx(const struct sc_addr *a, const struct sc_lookup_opts *o,
					struct lookup_fetch *f, char *err, size_t errlen);

/* Failures after which the next MX host may do better (RFC 5321 5.1). */
int lookup_try_next(sc_status st);

#endif
