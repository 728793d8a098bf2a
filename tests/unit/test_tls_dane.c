/*
 * test_tls_dane.c - DANE authentication of a TLS server (lib/tls.c:
 * sc_tls_set_dane, sc_tls_dane_match) on a non-blocking socketpair in one
 * process. The client trusts only an unrelated CA, so only a TLSA match
 * can authenticate: DANE-EE(3) SPKI SHA-256 and full certificate, without name
 * checks (RFC 7672 3.2.1); DANE-TA(2) on the CA, with the MX host name checked
 * (3.2.2); a mismatch; PKIX-only records (unusable for SMTP, 3.1.3); argument
 * errors. Certificates come from tests/lib/testcert at run time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <smtpcert/smtpcert.h>
#include "testcert.h"

static char dir[512];
static char chain_pem[600], key_pem[600], anchors_pem[600];
static uint8_t leaf_spki_sha256[32], ca_sha256[32], other_sha256[32];
static uint8_t *leaf_der;
static size_t leaf_der_len;

static void path(char *buf, const char *name)
{
	snprintf(buf, 600, "%s/%s", dir, name);
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

static int setup(void **state)
{
	tc_key *cak = tc_key_new(TC_P256), *srvk = tc_key_new(TC_P256);
	X509 *ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "DANE CA", .is_ca = 1,
				.key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			       cak, NULL, NULL);
	X509 *leaf = tc_cert_new(&(struct tc_cert_opts){ .cn = "mx.example.test",
				  .dns_names = { "mx.example.test" },
				  .eku = TC_EKU_SERVER_AUTH,
				  .key_usage = TC_KU_DIGITAL_SIGNATURE },
				 srvk, ca, cak);
	X509 *chain[2] = { leaf, ca };
	unsigned char *spki = NULL;
	uint8_t *der;
	size_t len;
	char *pem;
	int n;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	tc_tmpdir(dir, sizeof dir);
	path(chain_pem, "chain.pem");
	path(key_pem, "key.pem");
	path(anchors_pem, "anchors.pem");
	tc_chain_pem(chain, 2, &pem, &len);
	tc_write_file(chain_pem, pem, len);
	free(pem);
	tc_key_pem(srvk, &pem, &len);
	tc_write_file(key_pem, pem, len);
	free(pem);
	/* A trust store with only an unrelated CA: PKIX cannot succeed. */
	{
		tc_key *ok = tc_key_new(TC_P256);
		X509 *other = tc_cert_new(&(struct tc_cert_opts){ .cn = "Unrelated CA", .is_ca = 1,
					   .key_usage = TC_KU_KEY_CERT_SIGN }, ok, NULL, NULL);

		tc_cert_pem(other, &pem, &len);
		tc_write_file(anchors_pem, pem, len);
		free(pem);
		X509_free(other);
		tc_key_free(ok);
	}
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &spki);
	assert_true(n > 0);
	sha256(spki, (size_t)n, leaf_spki_sha256);
	OPENSSL_free(spki);
	tc_cert_der(leaf, &leaf_der, &leaf_der_len);
	tc_cert_der(ca, &der, &len);
	sha256(der, len, ca_sha256);
	free(der);
	memset(other_sha256, 0x5a, sizeof other_sha256);
	X509_free(ca);
	X509_free(leaf);
	tc_key_free(cak);
	tc_key_free(srvk);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(leaf_der);
	tc_rmtree(dir);
	return 0;
}

static int waiting(sc_status st)
{
	return st == SC_WANT_READ || st == SC_WANT_WRITE;
}

struct conn {
	int fds[2];
	sc_tls_ctx *sctx, *cctx;
	sc_tls *s, *c;
	sc_status sst, cst, dane;
	char dane_err[256];
};

/* Server with chain/key; client verifying @p name by @p rr; then handshake. */
static void connect_dane(struct conn *k, const char *name, const struct sc_tlsa *rr, size_t n)
{
	char err[512] = "";

	memset(k, 0, sizeof *k);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, k->fds), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(fcntl(k->fds[i], F_SETFL, fcntl(k->fds[i], F_GETFL) | O_NONBLOCK),
				 0);
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, key_pem, &k->sctx, err, sizeof err),
			 SC_OK);
	assert_int_equal(sc_tls_client_ctx_new(anchors_pem, 0, &k->cctx, err, sizeof err), SC_OK);
	assert_int_equal(sc_tls_new(k->sctx, k->fds[0], NULL, &k->s), SC_OK);
	assert_int_equal(sc_tls_new(k->cctx, k->fds[1], name, &k->c), SC_OK);
	sc_tls_ctx_unref(k->sctx);
	sc_tls_ctx_unref(k->cctx);
	k->dane = sc_tls_set_dane(k->c, name, rr, n);
	snprintf(k->dane_err, sizeof k->dane_err, "%s", sc_tls_error(k->c));
	k->cst = k->sst = SC_WANT_READ;
	for (int i = 0; i < 50 && (waiting(k->cst) || waiting(k->sst)); i++) {
		if (waiting(k->cst))
			k->cst = sc_tls_handshake(k->c);
		if (waiting(k->sst))
			k->sst = sc_tls_handshake(k->s);
		if (!waiting(k->cst) && k->cst != SC_OK && i > 5)
			break;
	}
}

static void close_pair(struct conn *k)
{
	sc_tls_free(k->s);
	sc_tls_free(k->c);
	close(k->fds[0]);
	close(k->fds[1]);
}

static void test_no_dane_no_trust(void **state)
{
	struct conn k;

	(void)state;
	/* the baseline: without TLSA records the empty trust store refuses */
	connect_dane(&k, "mx.example.test", NULL, 0);
	assert_int_equal(k.dane, SC_ERR_UNSUPPORTED);
	assert_int_equal(k.cst, SC_ERR_VERIFY);
	close_pair(&k);
}

static void test_dane_ee_spki(void **state)
{
	struct sc_tlsa rr[2] = {
		{ .usage = 3, .selector = 1, .mtype = 1, .data = other_sha256, .len = 32 },
		{ .usage = 3, .selector = 1, .mtype = 1, .data = leaf_spki_sha256, .len = 32 },
	};
	struct conn k;
	char buf[64];

	(void)state;
	/* RFC 7672 3.2.1: the name does not matter with DANE-EE */
	connect_dane(&k, "other.example.test", rr, 2);
	assert_int_equal(k.dane, SC_OK);
	assert_int_equal(k.cst, SC_OK);
	assert_int_equal(k.sst, SC_OK);
	assert_true(sc_tls_dane_match(k.c, buf, sizeof buf));
	assert_string_equal(buf, "DANE-EE(3) SPKI(1) SHA2-256(1)");
	close_pair(&k);
}

static void test_dane_ee_full_cert(void **state)
{
	struct sc_tlsa rr = { .usage = 3, .selector = 0, .mtype = 0, .data = NULL, .len = 0 };
	struct conn k;
	char buf[64];

	(void)state;
	rr.data = leaf_der;
	rr.len = leaf_der_len;
	connect_dane(&k, "mx.example.test", &rr, 1);
	assert_int_equal(k.cst, SC_OK);
	assert_true(sc_tls_dane_match(k.c, buf, sizeof buf));
	assert_string_equal(buf, "DANE-EE(3) Cert(0) Full(0)");
	close_pair(&k);
}

static void test_dane_ta(void **state)
{
	struct sc_tlsa rr = { .usage = 2, .selector = 0, .mtype = 1, .data = ca_sha256, .len = 32 };
	struct conn k;
	char buf[64];

	(void)state;
	connect_dane(&k, "mx.example.test", &rr, 1);
	assert_int_equal(k.cst, SC_OK);
	assert_true(sc_tls_dane_match(k.c, buf, sizeof buf));
	assert_string_equal(buf, "DANE-TA(2) Cert(0) SHA2-256(1)");
	close_pair(&k);
	/* RFC 7672 3.2.2: with DANE-TA the certificate must name the host */
	connect_dane(&k, "other.example.test", &rr, 1);
	assert_int_equal(k.dane, SC_OK);
	assert_int_equal(k.cst, SC_ERR_VERIFY);
	assert_non_null(strstr(sc_tls_error(k.c), "verification failed"));
	assert_false(sc_tls_dane_match(k.c, buf, sizeof buf));
	assert_string_equal(buf, "");
	close_pair(&k);
}

static void test_dane_mismatch(void **state)
{
	struct sc_tlsa rr = { .usage = 3, .selector = 1, .mtype = 1, .data = other_sha256,
			      .len = 32 };
	struct conn k;

	(void)state;
	connect_dane(&k, "mx.example.test", &rr, 1);
	assert_int_equal(k.dane, SC_OK);
	assert_int_equal(k.cst, SC_ERR_VERIFY);
	assert_false(sc_tls_dane_match(k.c, NULL, 0));
	close_pair(&k);
}

static void test_pkix_usages_unusable(void **state)
{
	/* RFC 7672 3.1.3: PKIX-TA(0)/PKIX-EE(1) are not for SMTP, even if they match */
	struct sc_tlsa rr[2] = {
		{ .usage = 1, .selector = 1, .mtype = 1, .data = leaf_spki_sha256, .len = 32 },
		{ .usage = 0, .selector = 0, .mtype = 1, .data = ca_sha256, .len = 32 },
	};
	struct conn k;

	(void)state;
	connect_dane(&k, "mx.example.test", rr, 2);
	assert_int_equal(k.dane, SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(k.dane_err, "no usable TLSA"));
	/* and they did not authenticate the server either */
	assert_int_equal(k.cst, SC_ERR_VERIFY);
	close_pair(&k);
}

static void test_dane_args(void **state)
{
	struct sc_tlsa rr = { .usage = 3, .selector = 1, .mtype = 1, .data = leaf_spki_sha256,
			      .len = 32 };
	sc_tls_ctx *ins, *srv;
	sc_tls *t, *s;
	int fds[2];
	char err[256];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(sc_tls_client_ctx_new(NULL, 1, &ins, err, sizeof err), SC_OK);
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, key_pem, &srv, err, sizeof err), SC_OK);
	assert_int_equal(sc_tls_new(ins, fds[1], "mx.example.test", &t), SC_OK);
	assert_int_equal(sc_tls_new(srv, fds[0], NULL, &s), SC_OK);
	/* an insecure client or a server cannot do DANE */
	assert_int_equal(sc_tls_set_dane(t, "mx.example.test", &rr, 1), SC_ERR_ARG);
	assert_int_equal(sc_tls_set_dane(s, "mx.example.test", &rr, 1), SC_ERR_ARG);
	assert_int_equal(sc_tls_set_dane(NULL, "mx.example.test", &rr, 1), SC_ERR_ARG);
	assert_int_equal(sc_tls_set_dane(t, "", &rr, 1), SC_ERR_ARG);
	assert_int_equal(sc_tls_set_dane(t, "mx.example.test", NULL, 1), SC_ERR_ARG);
	assert_false(sc_tls_dane_match(NULL, err, sizeof err));
	assert_false(sc_tls_dane_match(t, err, sizeof err));
	sc_tls_free(t);
	sc_tls_free(s);
	sc_tls_ctx_unref(ins);
	sc_tls_ctx_unref(srv);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_dane_no_trust),
		cmocka_unit_test(test_dane_ee_spki),
		cmocka_unit_test(test_dane_ee_full_cert),
		cmocka_unit_test(test_dane_ta),
		cmocka_unit_test(test_dane_mismatch),
		cmocka_unit_test(test_pkix_usages_unusable),
		cmocka_unit_test(test_dane_args),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
