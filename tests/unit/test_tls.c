/*
 * test_tls.c - TLS sessions (lib/tls.c): a server and a client on a non-blocking
 * socketpair in one process, both handshakes driven by hand. Verification with
 * the right CA, a wrong CA, a wrong host name and an IP literal; insecure mode;
 * data both ways incl. partial writes; close_notify and bare EOF; context errors
 * (missing file, garbage, key/certificate mismatch). Certificates come from
 * tests/lib/testcert at run time.
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

#include <smtpcert/smtpcert.h>
#include "testcert.h"

static char dir[512];
static char ca_pem[600], chain_pem[600], key_pem[600], other_ca_pem[600], other_key_pem[600],
	garbage_pem[600];

static void path(char *buf, const char *name)
{
	snprintf(buf, 600, "%s/%s", dir, name);
}

static int setup(void **state)
{
	tc_key *cak = tc_key_new(TC_P256), *srvk = tc_key_new(TC_P256),
	       *ocak = tc_key_new(TC_P256), *otherk = tc_key_new(TC_P256);
	X509 *ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Test CA", .is_ca = 1,
				.key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			       cak, NULL, NULL);
	X509 *other_ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Other CA", .is_ca = 1,
				      .key_usage = TC_KU_KEY_CERT_SIGN },
				     ocak, NULL, NULL);
	X509 *leaf = tc_cert_new(&(struct tc_cert_opts){ .cn = "mx.example.test",
				  .dns_names = { "mx.example.test" }, .ip = "127.0.0.1",
				  .eku = TC_EKU_SERVER_AUTH,
				  .key_usage = TC_KU_DIGITAL_SIGNATURE },
				 srvk, ca, cak);
	X509 *chain[2] = { leaf, ca };
	char *pem;
	size_t len;

	signal(SIGPIPE, SIG_IGN);
	tc_tmpdir(dir, sizeof dir);
	path(ca_pem, "ca.pem");
	path(chain_pem, "chain.pem");
	path(key_pem, "key.pem");
	path(other_ca_pem, "other_ca.pem");
	path(other_key_pem, "other_key.pem");
	path(garbage_pem, "garbage.pem");
	tc_cert_pem(ca, &pem, &len);
	tc_write_file(ca_pem, pem, len);
	free(pem);
	tc_cert_pem(other_ca, &pem, &len);
	tc_write_file(other_ca_pem, pem, len);
	free(pem);
	tc_chain_pem(chain, 2, &pem, &len);
	tc_write_file(chain_pem, pem, len);
	free(pem);
	tc_key_pem(srvk, &pem, &len);
	tc_write_file(key_pem, pem, len);
	free(pem);
	tc_key_pem(otherk, &pem, &len);
	tc_write_file(other_key_pem, pem, len);
	free(pem);
	tc_write_file(garbage_pem, "not a certificate\n", 18);
	X509_free(ca);
	X509_free(other_ca);
	X509_free(leaf);
	tc_key_free(cak);
	tc_key_free(srvk);
	tc_key_free(ocak);
	tc_key_free(otherk);
	return 0;
}

static int teardown(void **state)
{
	tc_rmtree(dir);
	return 0;
}

static void nb_pair(int fds[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK), 0);
}

static int waiting(sc_status st)
{
	return st == SC_WANT_READ || st == SC_WANT_WRITE;
}

/* Drive both handshakes until neither side waits (bounded). */
static void drive(sc_tls *c, sc_tls *s, sc_status *cst, sc_status *sst)
{
	*cst = *sst = SC_WANT_READ;
	for (int i = 0; i < 50 && (waiting(*cst) || waiting(*sst)); i++) {
		if (waiting(*cst))
			*cst = sc_tls_handshake(c);
		if (waiting(*sst))
			*sst = sc_tls_handshake(s);
		/* one side failed: the other may still wait for bytes that never come */
		if (!waiting(*cst) && *cst != SC_OK && i > 5)
			break;
	}
}

struct conn {
	int fds[2];
	sc_tls_ctx *sctx, *cctx;
	sc_tls *s, *c;
	sc_status sst, cst;
};

/* Set up a pair: server with chain/key, client per arguments, then handshake. */
static void connect_pair(struct conn *k, const char *ca, int insecure, const char *name)
{
	char err[512] = "";

	memset(k, 0, sizeof *k);
	nb_pair(k->fds);
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, key_pem, &k->sctx, err, sizeof err),
			 SC_OK);
	assert_int_equal(sc_tls_client_ctx_new(ca, insecure, &k->cctx, err, sizeof err), SC_OK);
	assert_int_equal(sc_tls_new(k->sctx, k->fds[0], NULL, &k->s), SC_OK);
	assert_int_equal(sc_tls_new(k->cctx, k->fds[1], name, &k->c), SC_OK);
	/* sessions hold their own references */
	sc_tls_ctx_unref(k->sctx);
	sc_tls_ctx_unref(k->cctx);
	assert_null(sc_tls_version(k->c));
	drive(k->c, k->s, &k->cst, &k->sst);
}

static void close_pair(struct conn *k)
{
	sc_tls_free(k->s);
	sc_tls_free(k->c);
	if (k->fds[0] >= 0)
		close(k->fds[0]);
	if (k->fds[1] >= 0)
		close(k->fds[1]);
}

static sc_status read_all(sc_tls *t, char *buf, size_t want, size_t *got)
{
	sc_status st = SC_OK;

	*got = 0;
	for (int i = 0; i < 1000 && *got < want; i++) {
		size_t n;

		st = sc_tls_read(t, buf + *got, want - *got, &n);
		if (st == SC_OK)
			*got += n;
		else if (!waiting(st))
			return st;
	}
	return *got == want ? SC_OK : st;
}

static void test_verified_by_name(void **state)
{
	struct conn k;
	char buf[64];
	size_t n, got;

	connect_pair(&k, ca_pem, 0, "mx.example.test");
	assert_int_equal(k.cst, SC_OK);
	assert_int_equal(k.sst, SC_OK);
	assert_non_null(sc_tls_version(k.c));
	assert_true(!strcmp(sc_tls_version(k.c), "TLSv1.3") || !strcmp(sc_tls_version(k.c), "TLSv1.2"));
	assert_string_equal(sc_tls_version(k.c), sc_tls_version(k.s));
	assert_non_null(sc_tls_cipher(k.s));
	assert_string_equal(sc_tls_error(k.c), "no error");

	/* client -> server */
	assert_int_equal(sc_tls_write(k.c, "EHLO x\r\n", 8, &n), SC_OK);
	assert_int_equal(n, 8);
	assert_int_equal(read_all(k.s, buf, 8, &got), SC_OK);
	assert_memory_equal(buf, "EHLO x\r\n", 8);
	/* nothing more: the server waits */
	assert_int_equal(sc_tls_read(k.s, buf, sizeof buf, &n), SC_WANT_READ);
	/* server -> client, read in two parts: the rest stays pending inside TLS */
	assert_int_equal(sc_tls_write(k.s, "250 2.0.0 OK\r\n", 14, &n), SC_OK);
	assert_int_equal(read_all(k.c, buf, 4, &got), SC_OK);
	assert_memory_equal(buf, "250 ", 4);
	assert_true(sc_tls_pending(k.c));
	assert_int_equal(read_all(k.c, buf, 10, &got), SC_OK);
	assert_memory_equal(buf, "2.0.0 OK\r\n", 10);
	assert_false(sc_tls_pending(k.c));
	assert_int_equal(sc_tls_write(k.c, "x", 0, &n), SC_OK);
	assert_int_equal(n, 0);

	/* close_notify from the client: the server sees a clean EOF */
	sc_tls_shutdown(k.c);
	assert_int_equal(read_all(k.s, buf, 1, &got), SC_EOF);
	close_pair(&k);
}

static void test_verified_by_ip(void **state)
{
	struct conn k;

	connect_pair(&k, ca_pem, 0, "127.0.0.1");
	assert_int_equal(k.cst, SC_OK);
	assert_int_equal(k.sst, SC_OK);
	close_pair(&k);

	connect_pair(&k, ca_pem, 0, "[127.0.0.1]");
	assert_int_equal(k.cst, SC_OK);
	close_pair(&k);

	connect_pair(&k, ca_pem, 0, "127.0.0.2");
	assert_int_equal(k.cst, SC_ERR_VERIFY);
	assert_non_null(strstr(sc_tls_error(k.c), "IP address mismatch"));
	close_pair(&k);
}

static void test_wrong_name(void **state)
{
	struct conn k;

	connect_pair(&k, ca_pem, 0, "other.example.test");
	assert_int_equal(k.cst, SC_ERR_VERIFY);
	assert_non_null(strstr(sc_tls_error(k.c), "hostname mismatch"));
	/* the server saw the client's alert */
	assert_int_equal(k.sst, SC_ERR_TLS);
	/* a failed session refuses further use */
	{
		size_t n;
		char b[4];

		assert_int_equal(sc_tls_read(k.c, b, sizeof b, &n), SC_ERR_TLS);
		assert_int_equal(sc_tls_write(k.c, "x", 1, &n), SC_ERR_TLS);
		assert_int_equal(sc_tls_handshake(k.c), SC_ERR_TLS);
	}
	sc_tls_shutdown(k.c); /* no-op after a fatal error */
	close_pair(&k);
}

static void test_wrong_ca(void **state)
{
	struct conn k;

	connect_pair(&k, other_ca_pem, 0, "mx.example.test");
	assert_int_equal(k.cst, SC_ERR_VERIFY);
	assert_non_null(strstr(sc_tls_error(k.c), "certificate verification failed: "));
	/* the chain carries its own (untrusted) root */
	assert_non_null(strstr(sc_tls_error(k.c), "self-signed certificate in certificate chain"));
	close_pair(&k);
}

static void test_insecure(void **state)
{
	struct conn k;
	char buf[8];
	size_t n, got;

	/* wrong CA and no name: insecure still connects */
	connect_pair(&k, other_ca_pem, 1, NULL);
	assert_int_equal(k.cst, SC_OK);
	assert_int_equal(k.sst, SC_OK);
	assert_int_equal(sc_tls_write(k.s, "hi", 2, &n), SC_OK);
	assert_int_equal(read_all(k.c, buf, 2, &got), SC_OK);
	assert_memory_equal(buf, "hi", 2);
	/* the client's TCP connection goes away without close_notify: EOF */
	close(k.fds[1]);
	k.fds[1] = -1;
	assert_int_equal(read_all(k.s, buf, 1, &got), SC_EOF);
	close_pair(&k);

	connect_pair(&k, NULL, 1, "mx.example.test");
	assert_int_equal(k.cst, SC_OK);
	close_pair(&k);
}

/* Large writes go out in parts (SSL_MODE_ENABLE_PARTIAL_WRITE) and arrive intact. */
static void test_bulk_partial(void **state)
{
	struct conn k;
	size_t size = 1 << 20, sent = 0, recvd = 0;
	char *out = malloc(size), *in = malloc(size);

	assert_non_null(out);
	assert_non_null(in);
	for (size_t i = 0; i < size; i++)
		out[i] = (char)(i * 7 + (i >> 8));
	connect_pair(&k, ca_pem, 0, "mx.example.test");
	assert_int_equal(k.cst, SC_OK);
	for (int i = 0; i < 100000 && recvd < size; i++) {
		size_t n;
		sc_status st;

		if (sent < size) {
			st = sc_tls_write(k.c, out + sent, size - sent, &n);
			assert_true(st == SC_OK || waiting(st));
			if (st == SC_OK)
				sent += n;
		}
		st = sc_tls_read(k.s, in + recvd, size - recvd, &n);
		assert_true(st == SC_OK || waiting(st));
		if (st == SC_OK)
			recvd += n;
	}
	assert_int_equal(recvd, size);
	assert_memory_equal(in, out, size);
	close_pair(&k);
	free(out);
	free(in);
}

/* A plaintext client talking SMTP to a TLS server: the handshake fails cleanly. */
static void test_garbage_peer(void **state)
{
	char err[256];
	sc_tls_ctx *sctx;
	sc_tls *s;
	int fds[2];
	sc_status st;

	nb_pair(fds);
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, key_pem, &sctx, err, sizeof err), SC_OK);
	assert_int_equal(sc_tls_new(sctx, fds[0], NULL, &s), SC_OK);
	sc_tls_ctx_unref(sctx);
	assert_int_equal(sc_tls_handshake(s), SC_WANT_READ);
	assert_int_equal(write(fds[1], "EHLO client.test\r\n", 18), 18);
	st = sc_tls_handshake(s);
	assert_int_equal(st, SC_ERR_TLS);
	assert_string_not_equal(sc_tls_error(s), "no error");
	sc_tls_free(s);

	/* peer closes in the middle of the handshake */
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, key_pem, &sctx, err, sizeof err), SC_OK);
	assert_int_equal(sc_tls_new(sctx, fds[1], NULL, &s), SC_OK);
	sc_tls_ctx_unref(sctx);
	close(fds[0]);
	assert_int_equal(sc_tls_handshake(s), SC_ERR_TLS);
	sc_tls_free(s);
	close(fds[1]);
}

static void test_ctx_errors(void **state)
{
	char err[512] = "", missing[600];
	sc_tls_ctx *ctx = NULL;

	path(missing, "missing.pem");
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, other_key_pem, &ctx, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_null(ctx);
	assert_true(!strncmp(err, other_key_pem, strlen(other_key_pem)));
	assert_non_null(strstr(err, ": private key does not match the certificate in "));
	assert_non_null(strstr(err, chain_pem));

	assert_int_equal(sc_tls_server_ctx_new(missing, key_pem, &ctx, err, sizeof err), SC_ERR_IO);
	assert_true(!strncmp(err, missing, strlen(missing)));
	assert_non_null(strstr(err, "cannot read certificate: No such file"));
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, missing, &ctx, err, sizeof err), SC_ERR_IO);
	assert_non_null(strstr(err, "cannot read private key"));

	assert_int_equal(sc_tls_server_ctx_new(garbage_pem, key_pem, &ctx, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_true(!strncmp(err, garbage_pem, strlen(garbage_pem)));
	assert_non_null(strstr(err, "not a usable PEM certificate chain"));
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, garbage_pem, &ctx, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "not a usable PEM private key"));
	/* a certificate where the key should be */
	assert_int_equal(sc_tls_server_ctx_new(chain_pem, ca_pem, &ctx, err, sizeof err),
			 SC_ERR_CONFIG);

	assert_int_equal(sc_tls_client_ctx_new(missing, 0, &ctx, err, sizeof err), SC_ERR_IO);
	assert_non_null(strstr(err, "cannot read CA certificates"));
	assert_int_equal(sc_tls_client_ctx_new(garbage_pem, 0, &ctx, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "cannot load trust anchors"));
	/* system store */
	assert_int_equal(sc_tls_client_ctx_new(NULL, 0, &ctx, err, sizeof err), SC_OK);
	/* verifying client sessions need a name */
	{
		sc_tls *t;

		assert_int_equal(sc_tls_new(ctx, 0, NULL, &t), SC_ERR_ARG);
		assert_int_equal(sc_tls_new(ctx, -1, "x", &t), SC_ERR_ARG);
	}
	sc_tls_ctx_ref(ctx);
	sc_tls_ctx_unref(ctx);
	sc_tls_ctx_unref(ctx);
	sc_tls_ctx_unref(NULL);
	sc_tls_free(NULL);
	assert_string_equal(sc_tls_error(NULL), "no TLS session");
	assert_int_equal(sc_tls_server_ctx_new(NULL, key_pem, &ctx, err, sizeof err), SC_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verified_by_name),
		cmocka_unit_test(test_verified_by_ip),
		cmocka_unit_test(test_wrong_name),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_insecure),
		cmocka_unit_test(test_bulk_partial),
		cmocka_unit_test(test_garbage_peer),
		cmocka_unit_test(test_ctx_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
