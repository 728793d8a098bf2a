/*
 * test_smtp_submit.c - the CERC client (lib/smtp_submit.c) against a scripted
 * server on a loopback socket in a thread, as test_smtp.c does: AUTH PLAIN over
 * TLS, the refusal to send a password in plaintext, 535/504/454/334 answers, the
 * CERC upload (content compared line by line with the certificate's PEM),
 * queued/accepted results, every refusal stage (CERC, DATA, after the upload:
 * 550 Invalid Certificate, 552, 451), malformed ids, and a server that hangs up
 * mid-upload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>

#include "testsrv.h"
#include "testcert.h"

static char dir[512], ca_file[600], chain_file[600], key_file[600];
static char *chain_pem;
static sc_cert *chain_cert;

/* base64("\0alice@example.test\0s3cret"), RFC 4616 with an empty authzid */
#define PLAIN_ALICE "AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ="

/* ---- scripted server (the approach of test_smtp.c) ------------------------------------ */

struct server {
	int lfd, fd;
	char port[8];
	const char *const *script;
	pthread_t th;
	sc_tls *tls;
	char failed[256];       /* first script mismatch */
	char last_cmd[1024];     /* last line the client sent for a "C" step */
	char extra[1024];        /* first line the script did not expect, besides QUIT */
	char upload[65536];      /* DATA content, dot-stuffing undone, LF line ends */
	size_t upload_len;
};

static int srv_line(struct server *sv, char *buf, size_t size)
{
	return ts_line(sv->fd, sv->tls, buf, size);
}

static void srv_lines(struct server *sv, const char *text)
{
	ts_lines(sv->fd, sv->tls, text);
}

/* Read DATA lines up to ".", undoing dot-stuffing (RFC 5321 4.5.2). */
static int srv_upload(struct server *sv, size_t max_lines)
{
	char line[1024];

	for (size_t i = 0; i < max_lines; i++) {
		const char *p = line;
		size_t len;

		if (srv_line(sv, line, sizeof line) != 0)
			return -1;
		if (!strcmp(line, "."))
			return 0;
		if (line[0] == '.')
			p++;
		len = strlen(p);
		if (sv->upload_len + len + 1 < sizeof sv->upload) {
			memcpy(sv->upload + sv->upload_len, p, len);
			sv->upload_len += len;
			sv->upload[sv->upload_len++] = '\n';
			sv->upload[sv->upload_len] = '\0';
		}
	}
	return 1; /* stopped early on purpose */
}

static void *srv_main(void *arg)
{
	struct server *sv = arg;
	struct timeval tv = { 5, 0 };
	char line[1024], err[256];
	sc_tls_ctx *ctx;

	sv->fd = accept(sv->lfd, NULL, NULL);
	if (sv->fd < 0)
		return NULL;
	setsockopt(sv->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	for (const char *const *st = sv->script; *st; st++) {
		const char *s = *st;

		if (!strncmp(s, "S ", 2)) {
			srv_lines(sv, s + 2);
		} else if (!strncmp(s, "C ", 2)) {
			if (srv_line(sv, line, sizeof line) != 0) {
				snprintf(sv->failed, sizeof sv->failed, "EOF, expected \"%.200s\"", s + 2);
				break;
			}
			snprintf(sv->last_cmd, sizeof sv->last_cmd, "%s", line);
			if (strcmp(line, s + 2)) {
				snprintf(sv->failed, sizeof sv->failed, "got \"%.100s\", expected \"%.100s\"",
					 line, s + 2);
				break;
			}
		} else if (!strcmp(s, "UPLOAD")) {
			if (srv_upload(sv, 10000) != 0) {
				snprintf(sv->failed, sizeof sv->failed, "upload not ended by \".\"");
				break;
			}
		} else if (!strcmp(s, "UPLOAD3")) {
			/* take three lines, then hang up */
			(void)srv_upload(sv, 3);
			goto out;
		} else if (!strcmp(s, "TLS")) {
			if (sc_tls_server_ctx_new(chain_file, key_file, &ctx, err, sizeof err) != SC_OK ||
			    sc_tls_new(ctx, sv->fd, NULL, &sv->tls) != SC_OK) {
				snprintf(sv->failed, sizeof sv->failed, "server TLS: %.200s", err);
				break;
			}
			sc_tls_ctx_unref(ctx);
			if (sc_tls_handshake(sv->tls) != SC_OK)
				break;
		}
	}
	while (!sv->failed[0] && srv_line(sv, line, sizeof line) == 0) {
		if (!strcasecmp(line, "QUIT")) {
			srv_lines(sv, "221 2.0.0 bye");
			break;
		}
		if (!sv->extra[0])
			snprintf(sv->extra, sizeof sv->extra, "%s", line);
		srv_lines(sv, "502 5.5.1 not in script");
	}
out:
	if (sv->tls)
		sc_tls_free(sv->tls);
	close(sv->fd);
	return NULL;
}

static void srv_start(struct server *sv, const char *const *script)
{
	memset(sv, 0, sizeof *sv);
	sv->script = script;
	sv->lfd = ts_listen(sv->port);
	assert_true(sv->lfd >= 0);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

static void srv_stop(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
	if (sv->failed[0])
		fail_msg("server script: %s", sv->failed);
}

/* ---- fixtures ------------------------------------------------------------------------ */

static int setup(void **state)
{
	tc_key *cak = tc_key_new(TC_P256), *k = tc_key_new(TC_P256), *sk = tc_key_new(TC_P256);
	X509 *ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Submit Test CA", .is_ca = 1,
				.key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			       cak, NULL, NULL);
	X509 *leaf = tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice",
				  .emails = { "alice@example.test" },
				  .eku = TC_EKU_EMAIL_PROTECTION },
				 k, ca, cak);
	X509 *srv = tc_cert_new(&(struct tc_cert_opts){ .cn = "mx.example.test",
				 .dns_names = { "mx.example.test" }, .ip = "127.0.0.1",
				 .eku = TC_EKU_SERVER_AUTH },
				sk, ca, cak);
	X509 *chain[2] = { leaf, ca }, *schain[2] = { srv, ca };
	char *pem;
	size_t len;

	signal(SIGPIPE, SIG_IGN);
	tc_tmpdir(dir, sizeof dir);
	snprintf(ca_file, sizeof ca_file, "%s/ca.pem", dir);
	snprintf(chain_file, sizeof chain_file, "%s/chain.pem", dir);
	snprintf(key_file, sizeof key_file, "%s/key.pem", dir);
	tc_chain_pem(chain, 2, &chain_pem, &len);
	if (sc_cert_parse(chain_pem, len, &chain_cert) != SC_OK)
		return -1;
	tc_cert_pem(ca, &pem, &len);
	tc_write_file(ca_file, pem, len);
	free(pem);
	tc_chain_pem(schain, 2, &pem, &len);
	tc_write_file(chain_file, pem, len);
	free(pem);
	tc_key_pem(sk, &pem, &len);
	tc_write_file(key_file, pem, len);
	free(pem);
	X509_free(ca);
	X509_free(leaf);
	X509_free(srv);
	tc_key_free(cak);
	tc_key_free(k);
	tc_key_free(sk);
	return 0;
}

static int teardown(void **state)
{
	free(chain_pem);
	sc_cert_free(chain_cert);
	tc_rmtree(dir);
	return 0;
}

static struct sc_addr alice(void)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse("alice@example.test", 18, 0, &a, NULL), SC_OK);
	return a;
}

#define BANNER "S 220 mx.example.test ESMTP test"
#define EHLO_PRE "S 250-mx.example.test greets client.test\n250-STARTTLS\n250 HELP"
#define EHLO_POST "S 250-mx.example.test greets client.test\n250-AUTH PLAIN LOGIN\n" \
		  "250-CERT\n250-CERC\n250 HELP"
/* The session up to the second EHLO over TLS. */
#define TLS_PREFIX BANNER, "C EHLO client.test", EHLO_PRE, "C STARTTLS", \
		   "S 220 2.0.0 Ready to start TLS", "TLS", "C EHLO client.test", EHLO_POST
#define AUTH_OK "C AUTH PLAIN " PLAIN_ALICE, "S 235 2.7.0 Authentication successful"

static sc_smtp *open_tls(struct server *sv, const char *const *script)
{
	struct sc_smtp_opts o = { .helo = "client.test", .timeout_ms = 5000,
				  .tls = SC_SMTP_TLS_REQUIRE, .ca_file = ca_file };
	char err[256] = "";
	sc_smtp *s = NULL;

	srv_start(sv, script);
	if (sc_smtp_connect("127.0.0.1", sv->port, &o, &s, err, sizeof err) != SC_OK)
		fail_msg("connect: %s", err);
	return s;
}

static sc_smtp *open_plain(struct server *sv, const char *const *script)
{
	struct sc_smtp_opts o = { .helo = "client.test", .timeout_ms = 5000,
				  .tls = SC_SMTP_TLS_NEVER };
	char err[256] = "";
	sc_smtp *s = NULL;

	srv_start(sv, script);
	if (sc_smtp_connect("127.0.0.1", sv->port, &o, &s, err, sizeof err) != SC_OK)
		fail_msg("connect: %s", err);
	return s;
}

/* ---- AUTH ----------------------------------------------------------------------------- */

static void test_auth_over_tls(void **state)
{
	static const char *const script[] = { TLS_PREFIX, AUTH_OK, NULL };
	struct server sv;
	char err[256] = "x";
	sc_smtp *s = open_tls(&sv, script);

	assert_true(sc_smtp_is_tls(s));
	assert_int_equal(sc_smtp_auth(s, "alice@example.test", "s3cret", 0, err, sizeof err),
			 SC_OK);
	assert_string_equal(err, "");
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_string_equal(sv.extra, "");
}

static void test_auth_refused_without_tls(void **state)
{
	static const char *const script[] = {
		BANNER, "C EHLO client.test",
		"S 250-mx.example.test greets client.test\n250-AUTH PLAIN\n250 CERC", NULL
	};
	struct server sv;
	char err[256] = "";
	sc_smtp *s = open_plain(&sv, script);

	assert_int_equal(sc_smtp_auth(s, "alice@example.test", "s3cret", 0, err, sizeof err),
			 SC_ERR_POLICY);
	assert_string_equal(err, "127.0.0.1: refusing to send a password without TLS");
	sc_smtp_close(s);
	srv_stop(&sv);
	/* nothing but QUIT reached the server */
	assert_string_equal(sv.extra, "");
}

static void test_auth_plaintext_allowed(void **state)
{
	static const char *const script[] = {
		BANNER, "C EHLO client.test",
		"S 250-mx.example.test greets client.test\n250-AUTH PLAIN\n250 CERC", AUTH_OK, NULL
	};
	struct server sv;
	char err[256] = "";
	sc_smtp *s = open_plain(&sv, script);

	assert_int_equal(sc_smtp_auth(s, "alice@example.test", "s3cret",
				      SC_SMTP_AUTH_PLAINTEXT_OK, err, sizeof err),
			 SC_OK);
	sc_smtp_close(s);
	srv_stop(&sv);
}

static void test_auth_failures(void **state)
{
	static const struct {
		const char *reply;
		sc_status want;
		const char *err;
	} cases[] = {
		{ "S 535 5.7.8 Authentication credentials invalid", SC_ERR_REJECTED,
		  "127.0.0.1: authentication failed: 535 5.7.8 Authentication credentials invalid" },
		{ "S 504 5.5.4 Unrecognized authentication type", SC_ERR_UNSUPPORTED,
		  "127.0.0.1: AUTH PLAIN not supported: 504 5.5.4 Unrecognized authentication type" },
		{ "S 454 4.7.0 Temporary authentication failure", SC_ERR_TEMP,
		  "127.0.0.1: AUTH refused: 454 4.7.0 Temporary authentication failure" },
		{ "S 250 2.0.0 what", SC_ERR_PROTOCOL, "127.0.0.1: AUTH refused: 250 2.0.0 what" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *const script[] = { TLS_PREFIX, "C AUTH PLAIN " PLAIN_ALICE,
					       cases[i].reply, NULL };
		struct server sv;
		char err[256] = "";
		sc_smtp *s = open_tls(&sv, script);

		assert_int_equal(sc_smtp_auth(s, "alice@example.test", "s3cret", 0, err,
					      sizeof err),
				 cases[i].want);
		assert_string_equal(err, cases[i].err);
		sc_smtp_close(s);
		srv_stop(&sv);
	}
}

static void test_auth_challenge_cancelled(void **state)
{
	static const char *const script[] = { TLS_PREFIX, "C AUTH PLAIN " PLAIN_ALICE, "S 334 ",
					       "C *", "S 501 5.7.0 Authentication cancelled", NULL };
	struct server sv;
	char err[256] = "";
	sc_smtp *s = open_tls(&sv, script);

	assert_int_equal(sc_smtp_auth(s, "alice@example.test", "s3cret", 0, err, sizeof err),
			 SC_ERR_PROTOCOL);
	assert_string_equal(err, "127.0.0.1: AUTH PLAIN: unexpected challenge");
	sc_smtp_close(s);
	srv_stop(&sv);
}

static void test_auth_args(void **state)
{
	static const char *const script[] = {
		BANNER, "C EHLO client.test",
		"S 250-mx.example.test greets client.test\n250 CERC", NULL
	};
	struct server sv;
	char err[256] = "", longname[300];
	sc_smtp *s = open_plain(&sv, script);

	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(sc_smtp_auth(s, "", "pw", SC_SMTP_AUTH_PLAINTEXT_OK, err, sizeof err),
			 SC_ERR_ARG);
	assert_int_equal(sc_smtp_auth(s, longname, "pw", SC_SMTP_AUTH_PLAINTEXT_OK, err,
				      sizeof err),
			 SC_ERR_ARG);
	assert_int_equal(sc_smtp_auth(s, "u", longname, SC_SMTP_AUTH_PLAINTEXT_OK, err,
				      sizeof err),
			 SC_ERR_ARG);
	assert_int_equal(sc_smtp_auth(NULL, "u", "p", 0, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_smtp_auth(s, NULL, "p", 0, err, sizeof err), SC_ERR_ARG);
	/* no AUTH in the EHLO reply */
	assert_int_equal(sc_smtp_auth(s, "u", "p", SC_SMTP_AUTH_PLAINTEXT_OK, err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "server does not offer AUTH"));
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_string_equal(sv.extra, "");
}

/* ---- CERC -------------------------------------------------------------------------- */

#define CERC_HEAD TLS_PREFIX, AUTH_OK, "C CERC alice@example.test", \
		  "S 250 2.1.0 Send the certificate", "C DATA", "S 354 End with <CRLF>.<CRLF>"

static sc_status run_cerc(const char *const *script, struct sc_cerc_result *res, char *err,
			  size_t errlen, struct server *sv)
{
	struct sc_addr a = alice();
	char aerr[256] = "";
	sc_smtp *s = open_tls(sv, script);
	sc_status st;

	if (sc_smtp_auth(s, "alice@example.test", "s3cret", 0, aerr, sizeof aerr) != SC_OK)
		fail_msg("auth: %s", aerr);
	st = sc_smtp_cerc(s, &a, chain_cert, res, err, errlen);
	sc_smtp_close(s);
	srv_stop(sv);
	return st;
}

static void test_cerc_queued(void **state)
{
	static const char *const script[] = {
		CERC_HEAD, "UPLOAD", "S 250 2.0.0 0123456789abcdef0123456789abcdef queued", NULL
	};
	struct sc_cerc_result res;
	struct server sv;
	char err[256] = "x";

	assert_int_equal(run_cerc(script, &res, err, sizeof err, &sv), SC_OK);
	assert_int_equal(res.code, 250);
	assert_string_equal(res.id, "0123456789abcdef0123456789abcdef");
	assert_string_equal(res.state, "queued");
	assert_string_equal(err, "");
	/* leaf then chain, exactly the PEM of the certificates */
	assert_string_equal(sv.upload, chain_pem);
	assert_string_equal(sv.extra, "");
}

static void test_cerc_accepted_multiline(void **state)
{
	static const char *const script[] = {
		CERC_HEAD, "UPLOAD",
		"S 250-certificate for alice@example.test\n250 2.0.0 ab-12_x.y accepted now", NULL
	};
	struct sc_cerc_result res;
	struct server sv;
	char err[256];

	assert_int_equal(run_cerc(script, &res, err, sizeof err, &sv), SC_OK);
	assert_string_equal(res.id, "ab-12_x.y");
	assert_string_equal(res.state, "accepted");
}

static void test_cerc_refusals(void **state)
{
	static const struct {
		const char *steps[4];
		sc_status want;
		int code;
		const char *err;
	} cases[] = {
		{ { "S 530 5.7.0 Authentication required" }, SC_ERR_REJECTED, 530,
		  "127.0.0.1: CERC refused: 530 5.7.0 Authentication required" },
		{ { "S 550 5.7.0 Service Unavailable" }, SC_ERR_REJECTED, 550,
		  "127.0.0.1: CERC refused: 550 5.7.0 Service Unavailable" },
		{ { "S 553 5.7.1 Not authorised for this address" }, SC_ERR_REJECTED, 553,
		  "127.0.0.1: CERC refused: 553 5.7.1 Not authorised for this address" },
		{ { "S 451 4.3.0 Try later" }, SC_ERR_TEMP, 451,
		  "127.0.0.1: CERC refused: 451 4.3.0 Try later" },
		{ { "S 250 2.1.0 go on", "C DATA", "S 503 5.5.1 Bad sequence" }, SC_ERR_REJECTED,
		  503, "127.0.0.1: DATA refused: 503 5.5.1 Bad sequence" },
		{ { "S 250 2.1.0 go on", "C DATA", "S 354 go", "UPLOAD" }, SC_ERR_POLICY, 550,
		  "127.0.0.1: submission refused: 550 5.7.1 Invalid Certificate: expired" },
		{ { "S 250 2.1.0 go on", "C DATA", "S 354 go", "UPLOAD" }, SC_ERR_TOO_LONG, 552,
		  "127.0.0.1: submission refused: 552 5.3.4 Certificate too large" },
		{ { "S 250 2.1.0 go on", "C DATA", "S 354 go", "UPLOAD" }, SC_ERR_TEMP, 451,
		  "127.0.0.1: submission refused: 451 4.3.0 Queue unavailable" },
		{ { "S 250 2.1.0 go on", "C DATA", "S 354 go", "UPLOAD" }, SC_ERR_PROTOCOL, 250,
		  "127.0.0.1: CERC: no submission id in \"250 2.0.0 \"" },
		{ { "S 250 2.1.0 go on", "C DATA", "S 354 go", "UPLOAD" }, SC_ERR_PROTOCOL, 250,
		  "127.0.0.1: CERC: no submission id in \"250 2.0.0 ../etc/passwd queued\"" },
	};
	/* the final reply of the cases that upload */
	static const char *const finals[] = {
		NULL, NULL, NULL, NULL, NULL,
		"S 550 5.7.1 Invalid Certificate: expired",
		"S 552 5.3.4 Certificate too large",
		"S 451 4.3.0 Queue unavailable",
		"S 250 2.0.0 ",
		"S 250 2.0.0 ../etc/passwd queued",
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *script[32] = { TLS_PREFIX, AUTH_OK, "C CERC alice@example.test" };
		size_t n = 0;
		struct sc_cerc_result res;
		struct server sv;
		char err[256] = "";

		while (script[n])
			n++;
		for (size_t j = 0; j < 4 && cases[i].steps[j]; j++)
			script[n++] = cases[i].steps[j];
		script[n++] = finals[i];
		script[n] = NULL;
		assert_int_equal(run_cerc(script, &res, err, sizeof err, &sv), cases[i].want);
		assert_int_equal(res.code, cases[i].code);
		assert_string_equal(err, cases[i].err);
		assert_string_equal(res.id, "");
		/* a refusal leaves the session in step: the QUIT is answered */
		assert_string_equal(sv.extra, "");
	}
}

static void test_cerc_id_too_long(void **state)
{
	char final[200] = "S 250 2.0.0 ";
	const char *const script[] = { CERC_HEAD, "UPLOAD", final, NULL };
	struct sc_cerc_result res;
	struct server sv;
	char err[256];

	memset(final + strlen(final), 'a', SC_CERC_ID_MAX + 1);
	assert_int_equal(run_cerc(script, &res, err, sizeof err, &sv), SC_ERR_PROTOCOL);
	assert_string_equal(res.id, "");
}

static void test_cerc_not_offered(void **state)
{
	static const char *const script[] = {
		BANNER, "C EHLO client.test",
		"S 250-mx.example.test greets client.test\n250 CERT", NULL
	};
	struct sc_addr a = alice();
	struct sc_cerc_result res;
	struct server sv;
	char err[256] = "";
	sc_smtp *s = open_plain(&sv, script);

	assert_int_equal(sc_smtp_cerc(s, &a, chain_cert, &res, err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "server does not offer CERC"));
	assert_int_equal(sc_smtp_cerc(s, &a, NULL, &res, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_smtp_cerc(s, NULL, chain_cert, &res, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_smtp_cerc(s, &a, chain_cert, NULL, err, sizeof err), SC_ERR_ARG);
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_string_equal(sv.extra, "");
}

static void test_cerc_server_hangs_up(void **state)
{
	static const char *const script[] = { CERC_HEAD, "UPLOAD3", NULL };
	struct sc_addr a = alice();
	struct sc_cerc_result res;
	struct server sv;
	char err[256] = "", aerr[256];
	sc_smtp *s = open_tls(&sv, script);
	sc_status st;

	assert_int_equal(sc_smtp_auth(s, "alice@example.test", "s3cret", 0, aerr, sizeof aerr),
			 SC_OK);
	st = sc_smtp_cerc(s, &a, chain_cert, &res, err, sizeof err);
	assert_true(st == SC_ERR_NETWORK || st == SC_ERR_TLS);
	assert_string_equal(res.id, "");
	/* the session is out of step now: no further commands */
	assert_int_equal(sc_smtp_cerc(s, &a, chain_cert, &res, err, sizeof err), SC_ERR_NETWORK);
	assert_int_equal(sc_smtp_auth(s, "u", "p", 0, err, sizeof err), SC_ERR_NETWORK);
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_int_equal(strncmp(sv.upload, "-----BEGIN CERTIFICATE-----\n", 28), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_over_tls),
		cmocka_unit_test(test_auth_refused_without_tls),
		cmocka_unit_test(test_auth_plaintext_allowed),
		cmocka_unit_test(test_auth_failures),
		cmocka_unit_test(test_auth_challenge_cancelled),
		cmocka_unit_test(test_auth_args),
		cmocka_unit_test(test_cerc_queued),
		cmocka_unit_test(test_cerc_accepted_multiline),
		cmocka_unit_test(test_cerc_refusals),
		cmocka_unit_test(test_cerc_id_too_long),
		cmocka_unit_test(test_cerc_not_offered),
		cmocka_unit_test(test_cerc_server_hangs_up),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
