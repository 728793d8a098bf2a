/*
 * test_d_fixture.h - shared set-up of the daemon unit tests (test_d_session.c,
 * test_d_conn.c): a temporary directory with a test PKI made at run time
 * (tests/lib/testcert.h), a dir: repository, a CRL, optional TLS files, a config
 * file, and the runtime loaded from it (made current). Test code only.
 *
 * PKI: root "D Test CA" signs alice (valid), carol (revoked by crl.pem), dave
 * (expired), erin (not yet valid), grace@gw.test (gateway domain) and
 * mallory@other.test (stored although foreign). alice's file holds leaf + CA.
 */
#ifndef TEST_D_FIXTURE_H
#define TEST_D_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testcert.h"
#include "runtime.h"
#include "session.h"

struct dfix {
	char dir[512];
	char conf[600];
	struct runtime *rt;
	uint8_t *alice_der, *ca_der;
	size_t alice_len, ca_len;
};

static inline void dfix_put_chain(struct dfix *f, const char *key, X509 *leaf, X509 *ca)
{
	X509 *chain[2] = { leaf, ca };
	char path[700], *pem;
	size_t len;

	snprintf(path, sizeof path, "%s/repo/%s.pem", f->dir, key);
	tc_chain_pem(chain, ca ? 2 : 1, &pem, &len);
	tc_write_file(path, pem, len);
	free(pem);
}

/** Build the PKI and config; @p extra is appended to the config (may be ""),
 *  @p tls non-zero adds tls_cert_file / tls_key_file. Loads and sets the runtime. */
static inline void dfix_setup(struct dfix *f, const char *extra, int tls)
{
	tc_key *cak = tc_key_shared(TC_P256), *k = tc_key_shared(TC_P256);
	X509 *ca, *alice, *carol, *dave, *erin, *grace, *mallory;
	char path[700], text[4096], err[1024] = "", *pem;
	size_t len;
	long revoked[] = { 4242 };
	sc_status rc;

	memset(f, 0, sizeof *f);
	tc_tmpdir(f->dir, sizeof f->dir);
	snprintf(path, sizeof path, "%s/repo", f->dir);
	if (mkdir(path, 0700) != 0)
		fail_msg("mkdir %s", path);
	ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "D Test CA", .is_ca = 1 }, cak, NULL, NULL);
	alice = tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice", .emails = { "alice@example.test" } },
			    k, ca, cak);
	carol = tc_cert_new(&(struct tc_cert_opts){ .cn = "Carol", .serial = 4242,
						     .emails = { "carol@example.test" } }, k, ca, cak);
	dave = tc_cert_new(&(struct tc_cert_opts){ .cn = "Dave", .emails = { "dave@example.test" },
						    .not_before_offset = -400 * 86400L,
						    .not_after_offset = -30 * 86400L }, k, ca, cak);
	erin = tc_cert_new(&(struct tc_cert_opts){ .cn = "Erin", .emails = { "erin@example.test" },
						    .not_before_offset = 30 * 86400L,
						    .not_after_offset = 400 * 86400L }, k, ca, cak);
	grace = tc_cert_new(&(struct tc_cert_opts){ .cn = "Grace", .emails = { "grace@gw.test" } },
			    k, ca, cak);
	mallory = tc_cert_new(&(struct tc_cert_opts){ .cn = "Mallory",
						       .emails = { "mallory@other.test" } }, k, ca, cak);
	dfix_put_chain(f, "alice@example.test", alice, ca);
	dfix_put_chain(f, "carol@example.test", carol, NULL);
	dfix_put_chain(f, "dave@example.test", dave, NULL);
	dfix_put_chain(f, "erin@example.test", erin, NULL);
	dfix_put_chain(f, "grace@gw.test", grace, ca);
	dfix_put_chain(f, "mallory@other.test", mallory, NULL);
	tc_cert_der(alice, &f->alice_der, &f->alice_len);
	tc_cert_der(ca, &f->ca_der, &f->ca_len);

	tc_crl_new(ca, cak, revoked, 1, 0, 0, &pem, &len);
	snprintf(path, sizeof path, "%s/crl.pem", f->dir);
	tc_write_file(path, pem, len);
	free(pem);
	if (tls) {
		X509 *srv = tc_cert_new(&(struct tc_cert_opts){ .cn = "localhost",
								 .dns_names = { "localhost" },
								 .ip = "127.0.0.1",
								 .eku = TC_EKU_SERVER_AUTH }, k, ca, cak);

		tc_cert_pem(srv, &pem, &len);
		snprintf(path, sizeof path, "%s/tls.pem", f->dir);
		tc_write_file(path, pem, len);
		free(pem);
		tc_key_pem(k, &pem, &len);
		snprintf(path, sizeof path, "%s/tls.key", f->dir);
		tc_write_file(path, pem, len);
		free(pem);
		X509_free(srv);
	}
	snprintf(text, sizeof text,
		 "hostname = mx.test\n"
		 "listen = 127.0.0.1:25\n"
		 "domains = example.test\n"
		 "gateway_domains = gw.test\n"
		 "repository = dir:%s/repo\n"
		 "crl_file = %s/crl.pem\n"
		 "state_dir = %s\n"
		 "%s%s%s%s%s%s",
		 f->dir, f->dir, f->dir,
		 tls ? "tls_cert_file = " : "", tls ? f->dir : "", tls ? "/tls.pem\n" : "",
		 tls ? "tls_key_file = " : "", tls ? f->dir : "", tls ? "/tls.key\n" : "");
	if (strlen(text) + strlen(extra) + 1 < sizeof text)
		memcpy(text + strlen(text), extra, strlen(extra) + 1);
	snprintf(f->conf, sizeof f->conf, "%s/smtpcertd.conf", f->dir);
	tc_write_file(f->conf, text, strlen(text));
	rc = runtime_load(f->conf, NULL, &f->rt, err, sizeof err);
	if (rc != SC_OK)
		fail_msg("runtime_load: %s: %s", sc_strerror(rc), err);
	runtime_ref(f->rt);
	runtime_set_current(f->rt);
	X509_free(ca);
	X509_free(alice);
	X509_free(carol);
	X509_free(dave);
	X509_free(erin);
	X509_free(grace);
	X509_free(mallory);
}

/* Everything the session queued since the last call, as text (the queue is
 * emptied). The buffer is static: valid until the next call. */
static inline const char *dfix_take(struct session *s)
{
	static char text[SESSION_OUT_MAX + 1];
	size_t n = session_out_len(s);

	assert_true(n < sizeof text);
	if (n)
		memcpy(text, sc_buf_data(s->out), n);
	text[n] = '\0';
	if (s->out)
		sc_buf_consume(s->out, n);
	return text;
}

static inline void dfix_teardown(struct dfix *f)
{
	runtime_set_current(NULL);
	runtime_unref(f->rt);
	free(f->alice_der);
	free(f->ca_der);
	tc_rmtree(f->dir);
}

#endif
