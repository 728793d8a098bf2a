/*
 * lookup_cache.c - the sender's cache of fetched certificates, so repeated sends
 * do not reconnect. One file per question, named by the SHA-256 (hex) of the
 * question text (address key, server or "mx", trust anchors, chain flag: an
 * answer is reused only for the same question), holding a few header lines and
 * then the certificates as PEM (RFC 7468 section 2 allows text before a block):
 *
 *     smtpcert-cache: 1
 *     fetched: 1795982400
 *     trust: dane
 *     dnssec: 1
 *     server: mx.example.test:25
 *     -----BEGIN CERTIFICATE-----
 *
 * Expiry is fetched + the caller's TTL; a cached answer is checked again
 * (address, validity, key usage) by the caller on every use. Only answers over
 * an authenticated channel (PKIX or DANE) are stored. Files are written
 * atomically with mode 0600 in a 0700 directory. Runs in the CLI's process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "lookup_int.h"
#include "errmsg.h"

#define CACHE_PATH_MAX 4096
#define CACHE_HEADER_MAX 1024

void lookup_cache_name(const char *question, char out[70])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)question, strlen(question), md);
	sc_hex(md, sizeof md, out);
	memcpy(out + 64, ".pem", 5);
}

static int cache_path(const char *dir, const char *question, char *out, size_t size)
{
	char name[70];

	lookup_cache_name(question, name);
	return snprintf(out, size, "%s/%s", dir, name) < (int)size;
}

sc_status lookup_mkdirs(const char *path, char *err, size_t errlen)
{
	char buf[CACHE_PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof buf)
		return SC_ERR_ARG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
				sc_errf(err, errlen, "cannot create %s: %s", buf,
					      strerror(errno));
				return SC_ERR_IO;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return SC_OK;
}

static const char *header_value(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, "-----BEGIN ", 11))
			return NULL;
		if (!strncmp(p, name, n) && p[n] == ':' && p[n + 1] == ' ')
			return p + n + 2;
	}
	return NULL;
}

static int parse_i64(const char *s, long long *out)
{
	char *end;

	if (!s)
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || end == s || (*end != '\n' && *end != '\0') ? -1 : 0;
}

static int parse_trust(const char *s, enum sc_trust *t)
{
	static const enum sc_trust all[] = { SC_TRUST_PKIX, SC_TRUST_DANE };

	for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++) {
		size_t n = strlen(sc_trust_name(all[i]));

		if (!strncmp(s, sc_trust_name(all[i]), n) && (s[n] == '\n' || !s[n])) {
			*t = all[i];
			return 0;
		}
	}
	return -1;
}

/* Read at most SC_CERT_INPUT_MAX + header bytes of @p path, NUL-terminated. */
static char *slurp(const char *path, size_t *len)
{
	size_t max = SC_CERT_INPUT_MAX + CACHE_HEADER_MAX, n = 0;
	char *buf = malloc(max + 1);
	int fd;
	ssize_t r = 0;

	if (!buf)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while (n < max && (r = read(fd, buf + n, max - n)) > 0)
		n += (size_t)r;
	/* A file over the bound is not ours to trust. */
	if (n == max || r < 0) {
		close(fd);
		free(buf);
		return NULL;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

sc_status lookup_cache_get(const char *dir, const char *question, int ttl, time_t now,
			   sc_cert **out, struct lookup_cache_meta *meta)
{
	char path[CACHE_PATH_MAX];
	const char *server;
	long long fetched, dnssec;
	size_t len, slen;
	char *text;
	sc_status st;

	SC_ENSURE_ARG(dir && question && out && meta);
	*out = NULL;
	memset(meta, 0, sizeof *meta);
	if (!cache_path(dir, question, path, sizeof path))
		return SC_ERR_NOT_FOUND;
	text = slurp(path, &len);
	if (!text)
		return SC_ERR_NOT_FOUND;
	if (strncmp(text, "smtpcert-cache: 1\n", 18) ||
	    parse_i64(header_value(text, "fetched"), &fetched) ||
	    parse_i64(header_value(text, "dnssec"), &dnssec) ||
	    parse_trust(header_value(text, "trust"), &meta->trust) ||
	    !(server = header_value(text, "server")) ||
	    /* Expired, or from the future (clock set back): fetch again. */
	    fetched > (long long)now || (long long)now - fetched >= (long long)ttl) {
		free(text);
		return SC_ERR_NOT_FOUND;
	}
	slen = strcspn(server, "\n");
	if (slen >= sizeof meta->server)
		slen = sizeof meta->server - 1;
	memcpy(meta->server, server, slen);
	meta->server[slen] = '\0';
	meta->fetched = fetched;
	meta->dnssec = dnssec != 0;
	st = sc_cert_parse(text, len, out);
	free(text);
	return st == SC_OK ? SC_OK : SC_ERR_NOT_FOUND;
}

static int write_pem(FILE *f, const sc_cert *c)
{
	for (size_t i = 0; i < sc_cert_count(c); i++) {
		const uint8_t *der;
		size_t len, size, outlen;
		char *pem;
		int bad;

		if (sc_cert_der(c, i, &der, &len) != SC_OK)
			return -1;
		size = sc_pem_encoded_size(len, "CERTIFICATE") + 1;
		pem = malloc(size);
		if (!pem)
			return -1;
		bad = sc_pem_encode(der, len, "CERTIFICATE", pem, size, &outlen) != SC_OK ||
		      fwrite(pem, 1, outlen, f) != outlen ||
		      (outlen && pem[outlen - 1] != '\n' && fputc('\n', f) == EOF);
		free(pem);
		if (bad)
			return -1;
	}
	return 0;
}

sc_status lookup_cache_put(const char *dir, const char *question, const sc_cert *c,
			   const struct lookup_cache_meta *meta, char *err, size_t errlen)
{
	char path[CACHE_PATH_MAX], tmp[CACHE_PATH_MAX + 16];
	FILE *f;
	int bad;

	SC_ENSURE_ARG(dir && question && c && meta);
	SC_ENSURE(meta->trust == SC_TRUST_PKIX || meta->trust == SC_TRUST_DANE, SC_ERR_ARG);
	SC_ENSURE(!strchr(meta->server, '\n'), SC_ERR_ARG);
	SC_ENSURE(cache_path(dir, question, path, sizeof path), SC_ERR_TOO_LONG);
	SC_TRY(lookup_mkdirs(dir, err, errlen));
	SC_TRY(lookup_tmp_open(path, tmp, sizeof tmp, &f, err, errlen));
	bad = fprintf(f, "smtpcert-cache: 1\nfetched: %lld\ntrust: %s\ndnssec: %d\nserver: %s\n",
		      (long long)meta->fetched, sc_trust_name(meta->trust), meta->dnssec ? 1 : 0,
		      meta->server) < 0 || write_pem(f, c) != 0;
	return lookup_tmp_commit(f, bad, tmp, path, err, errlen);
}

void lookup_cache_drop(const char *dir, const char *question)
{
	char path[CACHE_PATH_MAX];

	if (dir && question && cache_path(dir, question, path, sizeof path))
		(void)unlink(path);
}
