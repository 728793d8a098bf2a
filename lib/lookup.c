/*
 * lookup.c - sc_lookup_cert(): a recipient's certificate the sender can trust.
 * The order of work: the cache (same question, not expired, checked again),
 * else a fetch (--server, or the MX hosts: lookup_mx.c) over an authenticated
 * channel, then the checks (sc_cert_check_for_encryption: lookup_check.c), then
 * the known-certificates store (lookup_known.c), then the cache is refreshed
 * (lookup_cache.c). Also lookup_ask(): one server, one CERT/CERS. Runs in the
 * CLI's process (fetch, encrypt, send); blocks.
 *
 * Nothing is remembered or cached before the checks pass, and an answer over an
 * unauthenticated channel (--insecure) is never cached: a later authenticated
 * lookup must not be served what an attacker may have put there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lookup_int.h"
#include "errmsg.h"

#define LOOKUP_DEFAULT_TTL 3600
#define LOOKUP_PATH_MAX 4096

const char *sc_trust_name(enum sc_trust t)
{
	switch (t) {
	case SC_TRUST_INSECURE: return "insecure";
	case SC_TRUST_TLS_ONLY: return "tls-only";
	case SC_TRUST_PKIX: return "pkix";
	case SC_TRUST_DANE: return "dane";
	case SC_TRUST_CACHE: return "cache";
	}
	return "unknown";
}

const char *sc_pin_name(enum sc_pin p)
{
	switch (p) {
	case SC_PIN_NEW: return "new";
	case SC_PIN_SAME: return "same";
	case SC_PIN_CHANGED_CA: return "changed-ca";
	case SC_PIN_ACCEPTED_NEW: return "accepted-new";
	case SC_PIN_OFF: return "off";
	}
	return "unknown";
}

int lookup_try_next(sc_status st)
{
	/* A server that fails to authenticate may be a forgery on the path to
	 * this MX host only; RFC 7672 2.2 lets the client go on to the next. */
	return st == SC_ERR_NETWORK || st == SC_ERR_TIMEOUT || st == SC_ERR_TEMP ||
	       st == SC_ERR_TLS || st == SC_ERR_VERIFY || st == SC_ERR_UNSUPPORTED;
}

sc_status lookup_ask(const struct sc_addr *a, const struct sc_lookup_opts *o, const char *addr,
		     const char *port, const char *tls_name, const struct sc_tlsa *tlsa,
		     size_t ntlsa, struct lookup_fetch *f, char *err, size_t errlen)
{
	struct sc_smtp_opts so = { 0 };
	char match[64] = "";
	const char *ver;
	sc_smtp *s;
	sc_status st;
	int code = 0;

	so.helo = o->helo ? o->helo : "localhost";
	so.timeout_ms = o->timeout_ms;
	so.tls = o->insecure ? SC_SMTP_TLS_IF_OFFERED : SC_SMTP_TLS_REQUIRE;
	so.ca_file = o->ca_file;
	so.insecure = o->insecure;
	so.tls_name = tls_name;
	if (!o->insecure) {
		so.tlsa = tlsa;
		so.ntlsa = ntlsa;
	}
	st = sc_smtp_connect(addr, port, &so, &s, err, errlen);
	if (st != SC_OK && err && errlen && strcmp(addr, tls_name)) {
		char orig[512];

		/* The message names the address connected to; say which host. */
		snprintf(orig, sizeof orig, "%s", err);
		sc_errf(err, errlen, "MX host %s (port %s): %s", tls_name, port, orig);
	}
	/* Here "unsupported" means STARTTLS was required and not offered: the
	 * channel cannot be authenticated. */
	if (st == SC_ERR_UNSUPPORTED)
		return SC_ERR_TLS;
	if (st != SC_OK)
		return st;
	ver = sc_smtp_tls_version(s);
	snprintf(f->server, sizeof f->server, strchr(tls_name, ':') ? "[%s]:%s" : "%s:%s",
		 tls_name, port);
	if (o->insecure) {
		f->trust = ver ? SC_TRUST_TLS_ONLY : SC_TRUST_INSECURE;
		sc_errf(f->detail, sizeof f->detail, "%s: server not authenticated (--insecure, %s)",
			 f->server, ver ? ver : "plaintext");
	} else if (so.ntlsa && sc_smtp_dane_match(s, match, sizeof match)) {
		f->trust = SC_TRUST_DANE;
		sc_errf(f->detail, sizeof f->detail, "%s: %s, authenticated by DANE (TLSA %s of "
			 "_%s._tcp.%s, DNSSEC-validated)", f->server, ver ? ver : "TLS", match, port,
			 tls_name);
	} else {
		f->trust = SC_TRUST_PKIX;
		sc_errf(f->detail, sizeof f->detail, "%s: %s, server certificate verified for %s "
			 "against %s", f->server, ver ? ver : "TLS", tls_name,
			 o->ca_file ? o->ca_file : "the system trust store");
	}
	st = sc_smtp_fetch_cert(s, a, o->chain, &f->cert, &code, err, errlen);
	sc_smtp_close(s);
	return st;
}

/* "HOST", "HOST:PORT", "[V6]", "[V6]:PORT"; a bare IPv6 address has no port. */
static int split_server(const char *s, char *host, size_t hsize, char *port, size_t psize)
{
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hlen;

	snprintf(port, psize, "%s", LOOKUP_MX_PORT);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && (close[1] != ':' || !close[2])))
			return -1;
		h = s + 1;
		hlen = (size_t)(close - h);
		if (close[1] && snprintf(port, psize, "%s", close + 2) >= (int)psize)
			return -1;
	} else if (colon && colon == strchr(s, ':')) {
		hlen = (size_t)(colon - s);
		if (!colon[1] || snprintf(port, psize, "%s", colon + 1) >= (int)psize)
			return -1;
	} else {
		hlen = strlen(s);
	}
	if (hlen == 0 || hlen >= hsize)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	for (const char *p = port; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	return 0;
}

static sc_status fetch_server(const struct sc_addr *a, const struct sc_lookup_opts *o,
			      struct lookup_fetch *f, char *err, size_t errlen)
{
	char host[SC_DOMAIN_MAX + 1], port[8];

	if (split_server(o->server, host, sizeof host, port, sizeof port) != 0) {
		sc_errf(err, errlen, "server '%s': expected HOST, HOST:PORT or [IPV6]:PORT",
			      o->server);
		return SC_ERR_ARG;
	}
	return lookup_ask(a, o, host, port, host, NULL, 0, f, err, errlen);
}

/* $XDG_<var> or $HOME/<fallback>, then "/smtpcert" and @p leaf. 0 on success. */
static int user_path(const char *var, const char *fallback, const char *leaf, char *out,
		     size_t size)
{
	const char *base = getenv(var), *home = getenv("HOME");
	int n;

	/* XDG Base Directory: a relative value is invalid and must be ignored. */
	if (base && base[0] == '/')
		n = snprintf(out, size, "%s/smtpcert%s%s", base, *leaf ? "/" : "", leaf);
	else if (home && home[0] == '/')
		n = snprintf(out, size, "%s/%s/smtpcert%s%s", home, fallback, *leaf ? "/" : "",
			     leaf);
	else
		return -1;
	return n > 0 && (size_t)n < size ? 0 : -1;
}

void lookup_question(const char *key, const struct sc_lookup_opts *o, char *out, size_t size)
{
	snprintf(out, size, "v1\naddress=%s\nserver=%s\nca=%s\nchain=%d\nport=%s\n", key,
		 o->server ? o->server : "(mx)", o->ca_file ? o->ca_file : "(system)",
		 o->chain ? 1 : 0, o->mx_port ? o->mx_port : LOOKUP_MX_PORT);
}

struct lookup_state {
	char key[SC_ADDR_KEY_MAX];
	char known[LOOKUP_PATH_MAX];
	char cache[LOOKUP_PATH_MAX];
	char question[SC_ADDR_KEY_MAX + 2 * LOOKUP_PATH_MAX];
	int ttl;
	time_t now;
};

/* Checks, then the pin; fills @p res on SC_OK (taking the certificate). */
static sc_status accept_cert(const struct sc_addr *a, const struct sc_lookup_opts *o,
			     struct lookup_state *ls, sc_cert *c, struct sc_lookup_result *res,
			     char *err, size_t errlen)
{
	enum sc_pin pin = SC_PIN_OFF;
	int ca_ok;

	SC_TRY(sc_cert_check_for_encryption(c, a, ls->now, err, errlen));
	if (ls->known[0]) {
		char dir[LOOKUP_PATH_MAX], *slash;

		snprintf(dir, sizeof dir, "%s", ls->known);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			SC_TRY(lookup_mkdirs(dir, err, errlen));
		}
		ca_ok = o->smime_ca_file && lookup_chains_to_ca(c, o->smime_ca_file, ls->now);
		SC_TRY(lookup_known_check(ls->known, ls->key, c, ca_ok, o->accept_new, ls->now,
					  &pin, err, errlen));
	}
	res->cert = c;
	res->pin = pin;
	return SC_OK;
}

static int from_cache(const struct sc_addr *a, const struct sc_lookup_opts *o,
		      struct lookup_state *ls, struct sc_lookup_result *res, sc_status *st,
		      char *err, size_t errlen)
{
	struct lookup_cache_meta meta;
	char when[32];
	struct tm tm;
	time_t t;
	sc_cert *c;

	if (lookup_cache_get(ls->cache, ls->question, ls->ttl, ls->now, &c, &meta) != SC_OK)
		return 0;
	/* Re-checked on every use: it may have expired since it was cached, or
	 * the remembered certificate may have changed since (accepted through
	 * another question): then the cached answer is stale, and the network's
	 * answer goes through the same checks. */
	*st = accept_cert(a, o, ls, c, res, err, errlen);
	if (*st != SC_OK) {
		sc_cert_free(c);
		lookup_cache_drop(ls->cache, ls->question);
		if (err && errlen)
			err[0] = '\0';
		return 0;
	}
	t = (time_t)meta.fetched;
	if (!gmtime_r(&t, &tm) || !strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof when, "?");
	res->trust = SC_TRUST_CACHE;
	res->dnssec = meta.dnssec;
	res->server[0] = '\0';
	sc_errf(res->detail, sizeof res->detail, "from the cache: fetched %s from %s, trusted "
		 "by %s", when, meta.server, sc_trust_name(meta.trust));
	return 1;
}

sc_status sc_lookup_cert(const struct sc_addr *addr, const struct sc_lookup_opts *o,
			 struct sc_lookup_result *res, char *err, size_t errlen)
{
	static const struct sc_lookup_opts defaults = { 0 };
	struct lookup_state *ls;
	struct lookup_fetch f;
	sc_status st;

	SC_ENSURE_ARG(addr);
	SC_ENSURE_ARG(res);
	if (!o)
		o = &defaults;
	memset(res, 0, sizeof *res);
	res->pin = SC_PIN_OFF;
	if (err && errlen)
		err[0] = '\0';
	ls = calloc(1, sizeof *ls);
	if (!ls)
		return SC_ERR_NOMEM;
	st = sc_addr_key(addr, ls->key, sizeof ls->key, NULL);
	if (st != SC_OK)
		goto out;
	ls->now = time(NULL);
	ls->ttl = o->cache_ttl > 0 ? o->cache_ttl : LOOKUP_DEFAULT_TTL;
	if (o->known_file)
		snprintf(ls->known, sizeof ls->known, "%s", o->known_file);
	else if (user_path("XDG_DATA_HOME", ".local/share", "known_certs", ls->known,
			   sizeof ls->known) != 0)
		ls->known[0] = '\0';
	if (o->cache_dir)
		snprintf(ls->cache, sizeof ls->cache, "%s", o->cache_dir);
	else if (user_path("XDG_CACHE_HOME", ".cache", "", ls->cache, sizeof ls->cache) != 0)
		ls->cache[0] = '\0';
	lookup_question(ls->key, o, ls->question, sizeof ls->question);
	if (ls->cache[0] && !o->insecure && from_cache(addr, o, ls, res, &st, err, errlen))
		goto out;

	memset(&f, 0, sizeof f);
	st = o->server ? fetch_server(addr, o, &f, err, errlen)
		       : lookup_fetch_mx(addr, o, &f, err, errlen);
	if (st == SC_OK)
		st = accept_cert(addr, o, ls, f.cert, res, err, errlen);
	if (st != SC_OK) {
		sc_cert_free(f.cert);
		goto out;
	}
	res->trust = f.trust;
	res->dnssec = f.dnssec;
	memcpy(res->server, f.server, sizeof res->server);
	memcpy(res->detail, f.detail, sizeof res->detail);
	if (ls->cache[0] && (f.trust == SC_TRUST_PKIX || f.trust == SC_TRUST_DANE)) {
		struct lookup_cache_meta meta = { .fetched = ls->now, .trust = f.trust,
						  .dnssec = f.dnssec };

		memcpy(meta.server, f.server, sizeof meta.server);
		/* A cache that cannot be written costs a reconnect, nothing more. */
		if (lookup_cache_put(ls->cache, ls->question, res->cert, &meta, NULL, 0) != SC_OK)
			lookup_cache_drop(ls->cache, ls->question);
	}
out:
	free(ls);
	return st;
}
