/*
 * test_smtp.c - the blocking SMTP client (lib/smtp.c) against a scripted server
 * on a loopback socket in a thread: CERT/CERS success, 550/451/554 replies, no
 * CERT extension, URL answers, garbage, STARTTLS with verification, response
 * injection after the STARTTLS 220, silent server timeouts, HELO fallback. Also
 * the MX answer parser (lib/mx.c) on hand-built DNS messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>

#include "testsrv.h"
#include "mx_int.h"
#include "testcert.h"

static char dir[512], ca_file[600], chain_file[600], key_file[600];
static char *leaf_pem, *chain_pem;

/* ---- scripted server ---------------------------------------------------------- */

struct server {
	int lfd, fd;
	char port[8];
	const char *const *script;
	pthread_t th;
	sc_tls *tls;
	char failed[256];      /* first script mismatch, for the test to report */
	char last_cmd[1024];    /* last line the client sent */
};

static int srv_line(struct server *sv, char *buf, size_t size)
{
	return ts_line(sv->fd, sv->tls, buf, size);
}

static void srv_send(struct server *sv, const char *data, size_t len)
{
	ts_send(sv->fd, sv->tls, data, len);
}

static void srv_lines(struct server *sv, const char *text)
{
	ts_lines(sv->fd, sv->tls, text);
}

/* A PEM as "250-" lines plus "250 2.0.0 OK". */
static void srv_pem(struct server *sv, const char *pem)
{
	char out[32768];
	size_t n = 0;

	while (*pem) {
		size_t k = strcspn(pem, "\n");

		n += (size_t)snprintf(out + n, sizeof out - n, "250-%.*s\r\n", (int)k, pem);
		pem += k + (pem[k] == '\n');
	}
	n += (size_t)snprintf(out + n, sizeof out - n, "250 2.0.0 OK\r\n");
	srv_send(sv, out, n);
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
		} else if (!strncmp(s, "RAW ", 4)) {
			srv_send(sv, s + 4, strlen(s + 4));
		} else if (!strncmp(s, "C ", 2)) {
			if (srv_line(sv, line, sizeof line) != 0) {
				snprintf(sv->failed, sizeof sv->failed, "EOF, expected \"%.200s\"", s + 2);
				break;
			}
			snprintf(sv->last_cmd, sizeof sv->last_cmd, "%s", line);
			if (strncmp(line, s + 2, strlen(s + 2))) {
				snprintf(sv->failed, sizeof sv->failed, "got \"%.100s\", expected \"%.100s\"",
					 line, s + 2);
				break;
			}
		} else if (!strcmp(s, "PEM")) {
			srv_pem(sv, leaf_pem);
		} else if (!strcmp(s, "CHAIN")) {
			srv_pem(sv, chain_pem);
		} else if (!strcmp(s, "TLS")) {
			if (sc_tls_server_ctx_new(chain_file, key_file, &ctx, err, sizeof err) != SC_OK ||
			    sc_tls_new(ctx, sv->fd, NULL, &sv->tls) != SC_OK) {
				snprintf(sv->failed, sizeof sv->failed, "server TLS: %.200s", err);
				break;
			}
			sc_tls_ctx_unref(ctx);
			if (sc_tls_handshake(sv->tls) != SC_OK)
				break; /* the client refused us: expected in some tests */
		} else if (!strcmp(s, "HDRS")) {
			/* the rest of an HTTP request head */
			while (srv_line(sv, line, sizeof line) == 0 && line[0])
				;
		} else if (!strcmp(s, "CLOSE")) {
			sv->failed[0] = '\0';
			goto out;
		} else if (!strcmp(s, "SILENT")) {
			/* swallow everything until the client gives up */
			while (srv_line(sv, line, sizeof line) == 0)
				;
		}
	}
	/* Answer QUIT (and anything else) until the client goes away. */
	while (!sv->failed[0] && srv_line(sv, line, sizeof line) == 0) {
		if (!strcasecmp(line, "QUIT")) {
			srv_lines(sv, "221 2.0.0 bye");
			break;
		}
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

/* ---- fixtures ------------------------------------------------------------------ */

static int setup(void **state)
{
	tc_key *cak = tc_key_new(TC_P256), *k = tc_key_new(TC_P256), *sk = tc_key_new(TC_P256);
	X509 *ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "SMTP Test CA", .is_ca = 1,
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
	tc_cert_pem(leaf, &leaf_pem, &len);
	tc_chain_pem(chain, 2, &chain_pem, &len);
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
	free(leaf_pem);
	free(chain_pem);
	tc_rmtree(dir);
	return 0;
}

static struct sc_smtp_opts plain_opts(void)
{
	return (struct sc_smtp_opts){ .helo = "client.test", .timeout_ms = 5000,
				      .tls = SC_SMTP_TLS_NEVER };
}

static struct sc_addr alice(void)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse("alice@example.test", 18, 0, &a, NULL), SC_OK);
	return a;
}

#define BANNER "S 220 mx.example.test ESMTP test"
#define EHLO_CERT "S 250-mx.example.test greets client.test\n250-PIPELINING\n250-CERT\n250-CERS\n250 HELP"

/* Connect with @p opts, fetch alice's certificate; @return the fetch status. */
static sc_status run_fetch(const char *const *script, const struct sc_smtp_opts *o, int chain,
			   sc_cert **cert, int *code, char *err, size_t errlen,
			   struct server *sv)
{
	struct sc_addr a = alice();
	sc_smtp *s;
	sc_status st;

	srv_start(sv, script);
	st = sc_smtp_connect("127.0.0.1", sv->port, o, &s, err, errlen);
	if (st == SC_OK) {
		st = sc_smtp_fetch_cert(s, &a, chain, cert, code, err, errlen);
		sc_smtp_close(s);
	}
	srv_stop(sv);
	return st;
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_fetch_plain(void **state)
{
	static const char *const script[] = { BANNER, "C EHLO client.test", EHLO_CERT,
					       "C CERT alice@example.test", "PEM", NULL };
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_cert *c = NULL;
	struct sc_addr a = alice();
	char err[256] = "";
	int code = 0;

	assert_int_equal(run_fetch(script, &o, 0, &c, &code, err, sizeof err, &sv), SC_OK);
	assert_int_equal(code, 250);
	assert_non_null(c);
	assert_int_equal(sc_cert_count(c), 1);
	assert_true(sc_cert_has_email(c, &a));
	/* sent without angle brackets, as in the proposal */
	assert_string_equal(sv.last_cmd, "CERT alice@example.test");
	sc_cert_free(c);
}

static void test_fetch_chain_over_tls(void **state)
{
	static const char *const script[] = {
		BANNER, "C EHLO client.test",
		"S 250-mx.example.test greets client.test\n250-STARTTLS\n250 HELP",
		"C STARTTLS", "S 220 2.0.0 Ready to start TLS", "TLS",
		"C EHLO client.test", EHLO_CERT, "C CERS alice@example.test", "CHAIN", NULL
	};
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	struct sc_addr a = alice();
	sc_smtp *s;
	sc_cert *c = NULL;
	char err[256] = "";
	int code = 0;

	o.tls = SC_SMTP_TLS_REQUIRE;
	o.ca_file = ca_file;
	o.tls_name = "mx.example.test";
	srv_start(&sv, script);
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err), SC_OK);
	assert_true(sc_smtp_is_tls(s));
	assert_non_null(sc_smtp_tls_version(s));
	/* extensions are those of the EHLO after TLS */
	assert_true(sc_smtp_has_ext(s, "cers"));
	assert_false(sc_smtp_has_ext(s, "STARTTLS"));
	assert_int_equal(sc_smtp_fetch_cert(s, &a, 1, &c, &code, err, sizeof err), SC_OK);
	assert_int_equal(sc_cert_count(c), 2);
	sc_cert_free(c);
	sc_smtp_close(s);
	srv_stop(&sv);
}

static void test_tls_by_ip_and_wrong_name(void **state)
{
	static const char *const script[] = {
		BANNER, "C EHLO", "S 250-mx greets\n250 STARTTLS", "C STARTTLS",
		"S 220 2.0.0 go", "TLS", "C EHLO", EHLO_CERT, NULL
	};
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_smtp *s;
	char err[256] = "";

	/* verified against the host connected to: the IP SAN */
	o.tls = SC_SMTP_TLS_REQUIRE;
	o.ca_file = ca_file;
	srv_start(&sv, script);
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err), SC_OK);
	sc_smtp_close(s);
	srv_stop(&sv);

	o.tls_name = "wrong.example.test";
	srv_start(&sv, (const char *const[]){ BANNER, "C EHLO", "S 250-mx greets\n250 STARTTLS",
					      "C STARTTLS", "S 220 2.0.0 go", "TLS", NULL });
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_VERIFY);
	assert_non_null(strstr(err, "hostname mismatch"));
	srv_stop(&sv);
}

static void test_tls_required_not_offered(void **state)
{
	static const char *const script[] = { BANNER, "C EHLO", EHLO_CERT, NULL };
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_smtp *s;
	char err[256] = "";

	o.tls = SC_SMTP_TLS_REQUIRE;
	srv_start(&sv, script);
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_string_equal(err, "127.0.0.1: server does not offer STARTTLS");
	srv_stop(&sv);

	/* if-offered goes on in plaintext */
	o.tls = SC_SMTP_TLS_IF_OFFERED;
	srv_start(&sv, script);
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err), SC_OK);
	assert_false(sc_smtp_is_tls(s));
	assert_null(sc_smtp_tls_version(s));
	sc_smtp_close(s);
	srv_stop(&sv);
}

/* RFC 3207 4.2, CVE-2011-0411 seen from the client: bytes after the 220. */
static void test_starttls_injection(void **state)
{
	static const char *const script[] = {
		BANNER, "C EHLO", "S 250-mx greets\n250 STARTTLS", "C STARTTLS",
		"RAW 220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 CERT\r\n", NULL
	};
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_smtp *s;
	char err[256] = "";

	o.tls = SC_SMTP_TLS_REQUIRE;
	o.ca_file = ca_file;
	srv_start(&sv, script);
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_PROTOCOL);
	assert_non_null(strstr(err, "data after its STARTTLS reply"));
	srv_stop(&sv);
}

static void test_starttls_refused(void **state)
{
	static const char *const script[] = { BANNER, "C EHLO", "S 250-mx greets\n250 STARTTLS",
					       "C STARTTLS", "S 454 4.7.0 TLS not available", NULL };
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_smtp *s;
	char err[256] = "";

	o.tls = SC_SMTP_TLS_REQUIRE;
	srv_start(&sv, script);
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_TEMP);
	assert_non_null(strstr(err, "STARTTLS refused: 454 4.7.0 TLS not available"));
	srv_stop(&sv);
}

static void test_fetch_replies(void **state)
{
	static const struct {
		const char *reply;
		sc_status st;
		int code;
		const char *msg;
	} cases[] = {
		{ "S 550 5.1.1 Certificate Not Found", SC_ERR_NOT_FOUND, 550,
		  "127.0.0.1: 550 5.1.1 Certificate Not Found" },
		{ "S 451 4.3.0 Certificate repository temporarily unavailable", SC_ERR_TEMP, 451,
		  "127.0.0.1: 451 4.3.0 Certificate repository temporarily unavailable" },
		{ "S 554 5.7.1 go away", SC_ERR_REJECTED, 554, "127.0.0.1: 554 5.7.1 go away" },
		{ "S 550 5.7.1 Domain not served here", SC_ERR_REJECTED, 550,
		  "127.0.0.1: 550 5.7.1 Domain not served here" },
		{ "S 550 Certificate Not Found", SC_ERR_NOT_FOUND, 550,
		  "127.0.0.1: 550 Certificate Not Found" },
		{ "S 354 what", SC_ERR_PROTOCOL, 354, "127.0.0.1: unexpected reply to CERT: 354 what" },
		{ "S 250 2.0.0 OK", SC_ERR_PROTOCOL, 250, "127.0.0.1: 250 reply without a usable" },
		{ "S 250-not a pem\n250 2.0.0 OK", SC_ERR_PROTOCOL, 250, "127.0.0.1: 250 reply without" },
		{ "S 250-http://certs.example.test/alice@example.test.pem\n250 2.0.0 OK",
		  SC_ERR_POLICY, 250,
		  "http://certs.example.test/alice@example.test.pem: refusing a plain http:// URL" },
		{ "S 250-x\n251 mixed", SC_ERR_PROTOCOL, 0, "127.0.0.1: malformed reply line \"251 mixed\"" },
		{ "S certificate coming", SC_ERR_PROTOCOL, 0, "127.0.0.1: malformed reply line" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *script[] = { BANNER, "C EHLO", EHLO_CERT, "C CERT alice@example.test",
					 cases[i].reply, NULL };
		struct sc_smtp_opts o = plain_opts();
		struct server sv;
		sc_cert *c = NULL;
		char err[256] = "";
		int code = -1;
		sc_status st = run_fetch(script, &o, 0, &c, &code, err, sizeof err, &sv);

		if (st != cases[i].st || strncmp(err, cases[i].msg, strlen(cases[i].msg)))
			fail_msg("case %zu: %s / \"%s\"", i, sc_strerror(st), err);
		if (cases[i].code)
			assert_int_equal(code, cases[i].code);
		assert_null(c);
	}
}

static void test_no_cert_ext_and_helo_fallback(void **state)
{
	static const char *const script[] = { BANNER, "C EHLO client.test",
					       "S 502 5.5.1 EHLO not supported",
					       "C HELO client.test", "S 250 mx.example.test", NULL };
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_cert *c = NULL;
	char err[256] = "";
	int code = -1;

	assert_int_equal(run_fetch(script, &o, 0, &c, &code, err, sizeof err, &sv),
			 SC_ERR_UNSUPPORTED);
	assert_string_equal(err, "127.0.0.1: server does not offer CERT");
	assert_int_equal(code, 0);
}

static void test_session_refused(void **state)
{
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_smtp *s;
	char err[256] = "";

	srv_start(&sv, (const char *const[]){ "S 554 5.3.2 no service for you", NULL });
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_REJECTED);
	assert_string_equal(err, "127.0.0.1: server refused the session: 554 5.3.2 no service for you");
	srv_stop(&sv);

	srv_start(&sv, (const char *const[]){ BANNER, "C EHLO", "S 421 4.7.0 busy", NULL });
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_TEMP);
	srv_stop(&sv);
}

static void test_garbage_and_limits(void **state)
{
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_smtp *s;
	char err[256] = "", longline[4000];

	srv_start(&sv, (const char *const[]){ "S HTTP/1.1 400 Bad Request", NULL });
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_PROTOCOL);
	assert_string_equal(err, "127.0.0.1: malformed reply line \"HTTP/1.1 400 Bad Request\"");
	srv_stop(&sv);

	memset(longline, 'x', sizeof longline);
	memcpy(longline, "S 220 ", 6);
	longline[sizeof longline - 1] = '\0';
	srv_start(&sv, (const char *const[]){ longline, NULL });
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_PROTOCOL);
	assert_non_null(strstr(err, "reply line longer than"));
	srv_stop(&sv);

	/* the server hangs up after the banner */
	srv_start(&sv, (const char *const[]){ BANNER, "C EHLO", "CLOSE", NULL });
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_NETWORK);
	assert_non_null(strstr(err, "connection closed by the server"));
	srv_stop(&sv);
}

static void test_timeout(void **state)
{
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_smtp *s;
	char err[256] = "";

	o.timeout_ms = 200;
	srv_start(&sv, (const char *const[]){ "SILENT", NULL });
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_TIMEOUT);
	assert_string_equal(err, "127.0.0.1: timed out waiting for the server");
	srv_stop(&sv);
}

static void test_connect_errors(void **state)
{
	struct sc_smtp_opts o = plain_opts();
	char err[256] = "", port[8];
	sc_smtp *s;

	/* a port nobody listens on */
	assert_int_equal(ts_dead_port(port), 0);
	assert_int_equal(sc_smtp_connect("127.0.0.1", port, &o, &s, err, sizeof err),
			 SC_ERR_NETWORK);
	assert_non_null(strstr(err, "Connection refused"));
	assert_int_equal(sc_smtp_connect("[127.0.0.1]", port, &o, &s, err, sizeof err),
			 SC_ERR_NETWORK);
	assert_int_equal(sc_smtp_connect("", port, &o, &s, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_smtp_connect(NULL, port, &o, &s, err, sizeof err), SC_ERR_ARG);
	sc_smtp_close(NULL);
	assert_false(sc_smtp_has_ext(NULL, "CERT"));
}

static void test_command(void **state)
{
	static const char *const script[] = { BANNER, "C EHLO", EHLO_CERT, "C NOOP",
					       "S 250 2.0.0 OK", NULL };
	struct sc_smtp_opts o = plain_opts();
	struct server sv;
	sc_reply *r;
	sc_smtp *s;
	char err[256];

	assert_int_equal(sc_reply_new(0, 0, &r), SC_OK);
	srv_start(&sv, script);
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err), SC_OK);
	assert_true(sc_smtp_has_ext(s, "PIPELINING"));
	assert_false(sc_smtp_has_ext(s, "HELP2"));
	assert_int_equal(sc_smtp_command(s, "NOOP\r\nQUIT", r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_command(s, "NOOP", r), SC_OK);
	assert_int_equal(sc_reply_code(r), 250);
	assert_string_equal(sc_reply_enhanced(r), "2.0.0");
	sc_smtp_close(s);
	srv_stop(&sv);
	sc_reply_free(r);
}

/* ---- cert_url: following the URL over HTTP(S) ------------------------------------ */

/* An HTTP/1.0 response carrying @p body (Content-Length unless @p no_len). */
static char *http_response(const char *status, const char *body, int no_len)
{
	size_t size = strlen(body) + 256;
	char *r = malloc(size);

	assert_non_null(r);
	if (no_len)
		snprintf(r, size, "RAW HTTP/1.0 %s\r\nContent-Type: application/x-pem-file\r\n\r\n%s",
			 status, body);
	else
		snprintf(r, size, "RAW HTTP/1.0 %s\r\nContent-Length: %zu\r\n\r\n%s", status,
			 strlen(body), body);
	return r;
}

static void test_fetch_follows_url(void **state)
{
	struct sc_smtp_opts o = plain_opts();
	struct server web, sv;
	struct sc_addr a = alice();
	char url[128], err[256] = "";
	char *resp = http_response("200 OK", leaf_pem, 0);
	sc_cert *c = NULL;
	sc_smtp *s;
	int code = 0;

	srv_start(&web, (const char *const[]){ "TLS", "C GET /certs/alice@example.test.pem HTTP/1.0",
						"HDRS", resp, "CLOSE", NULL });
	snprintf(url, sizeof url, "S 250-https://127.0.0.1:%s/certs/alice@example.test.pem#x\n"
				  "250 2.0.0 OK", web.port);
	srv_start(&sv, (const char *const[]){ BANNER, "C EHLO", EHLO_CERT,
					      "C CERT alice@example.test", url, NULL });
	o.ca_file = ca_file;
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err), SC_OK);
	assert_int_equal(sc_smtp_fetch_cert(s, &a, 0, &c, &code, err, sizeof err), SC_OK);
	assert_int_equal(code, 250);
	assert_true(sc_cert_has_email(c, &a));
	sc_cert_free(c);
	sc_smtp_close(s);
	srv_stop(&sv);
	srv_stop(&web);
	free(resp);
}

/* One HTTPS GET against a scripted web server answering @p raw. */
static sc_status http_case(const char *raw, int tls, const char *path, int insecure,
			   sc_cert **c, char *err, size_t errlen)
{
	struct server web;
	char url[256];
	sc_status st;

	/* the script must outlive the server thread: function scope, not block scope */
	const char *const script[] = { "TLS", "C GET", "HDRS", raw, "CLOSE", NULL };

	srv_start(&web, tls ? script : script + 1);
	snprintf(url, sizeof url, "%s://127.0.0.1:%s%s", tls ? "https" : "http", web.port, path);
	st = sc_http_fetch_cert(url, ca_file, insecure, 5000, c, err, errlen);
	srv_stop(&web);
	return st;
}

static void test_http_responses(void **state)
{
	char *ok = http_response("200 OK", leaf_pem, 0), *nolen = http_response("200 OK", leaf_pem, 1);
	char *junk = http_response("200 OK", "hello\n", 0), *big, *longer;
	size_t bigsize = SC_CERT_INPUT_MAX + 4096;
	sc_cert *c = NULL;
	char err[256];
	static const struct {
		const char *raw;
		sc_status st;
		const char *msg;
	} cases[] = {
		{ "RAW HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", SC_ERR_NOT_FOUND,
		  "HTTP 404 Not Found" },
		{ "RAW HTTP/1.1 410 Gone\r\n\r\n", SC_ERR_NOT_FOUND, "HTTP 410 Gone" },
		{ "RAW HTTP/1.0 503 Busy\r\n\r\n", SC_ERR_TEMP, "HTTP 503 Busy" },
		{ "RAW HTTP/1.0 302 Found\r\nLocation: https://elsewhere.test/x\r\n\r\n",
		  SC_ERR_PROTOCOL, "HTTP 302 Found, redirect not followed: https://elsewhere.test/x" },
		{ "RAW HTTP/1.0 200 OK\r\nContent-Length: 5000\r\n\r\n-----BEGIN", SC_ERR_PROTOCOL,
		  "127.0.0.1: HTTP body truncated (10 of 5000 bytes)" },
		{ "RAW HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		  SC_ERR_PROTOCOL, "127.0.0.1: Transfer-Encoding" },
		{ "RAW HTTP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		  SC_ERR_PROTOCOL, "127.0.0.1: conflicting Content-Length" },
		{ "RAW HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", SC_ERR_PROTOCOL,
		  "127.0.0.1: bad Content-Length" },
		{ "RAW SSH-2.0-OpenSSH\r\n\r\n", SC_ERR_PROTOCOL, "127.0.0.1: not an HTTP response" },
		{ "RAW HTTP/1.0 200 OK\r\nX: y", SC_ERR_PROTOCOL,
		  "127.0.0.1: connection closed inside the HTTP headers" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = '\0';
		sc_status st = http_case(cases[i].raw, 1, "/a.pem", 0, &c, err, sizeof err);

		if (st != cases[i].st || !strstr(err, cases[i].msg))
			fail_msg("case %zu: %s / \"%s\"", i, sc_strerror(st), err);
		assert_null(c);
	}
	/* 200 with and without Content-Length; plain http only when insecure */
	assert_int_equal(http_case(ok, 1, "/a.pem?x=1", 0, &c, err, sizeof err), SC_OK);
	assert_int_equal(sc_cert_count(c), 1);
	sc_cert_free(c);
	assert_int_equal(http_case(nolen, 1, "", 0, &c, err, sizeof err), SC_OK);
	sc_cert_free(c);
	assert_int_equal(http_case(ok, 0, "/a.pem", 1, &c, err, sizeof err), SC_OK);
	sc_cert_free(c);
	assert_int_equal(http_case(junk, 1, "/a.pem", 0, &c, err, sizeof err), SC_ERR_PROTOCOL);
	assert_non_null(strstr(err, "no usable certificate in the response"));

	/* longer than Content-Length: the body is the Content-Length octets and
	 * what follows is never read (libcurl); then over the size limit */
	longer = malloc(strlen(ok) + 16);
	assert_non_null(longer);
	snprintf(longer, strlen(ok) + 16, "%sEXTRA", ok);
	assert_int_equal(http_case(longer, 1, "/a.pem", 0, &c, err, sizeof err), SC_OK);
	assert_int_equal(sc_cert_count(c), 1);
	sc_cert_free(c);
	c = NULL;
	/* over the certificate limit; then over the whole buffer (headers + body) */
	for (int pass = 0; pass < 2; pass++, bigsize += 20000) {
		big = malloc(bigsize + 64);
		assert_non_null(big);
		memcpy(big, "RAW HTTP/1.0 200 OK\r\n\r\n", 23);
		memset(big + 23, 'x', bigsize);
		big[23 + bigsize] = '\0';
		assert_int_equal(http_case(big, 1, "/a.pem", 0, &c, err, sizeof err),
				 SC_ERR_TOO_LONG);
		assert_non_null(strstr(err, "HTTP response larger than"));
		free(big);
	}
	free(ok);
	free(nolen);
	free(junk);
	free(longer);
}

static void test_http_urls_and_trust(void **state)
{
	static const char *const bad[] = {
		"ftp://127.0.0.1/x", "https://user@127.0.0.1/x", "https://127.0.0.1:0/x",
		"https://127.0.0.1:65536/", "https://[::1/x", "https://[::1]x/", "https://a b/",
		"https:///x", "https://bad..host/x", "https://h\xc3\xa9.test/", "https://h.test:/",
	};
	struct server web;
	sc_cert *c = NULL;
	char err[256], url[128];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sc_status st = sc_http_fetch_cert(bad[i], NULL, 0, 1000, &c, err, sizeof err);

		if (st != SC_ERR_SYNTAX)
			fail_msg("accepted %s: %s", bad[i], sc_strerror(st));
	}
	assert_int_equal(sc_http_fetch_cert("http://127.0.0.1:1/x", NULL, 0, 1000, &c, err,
					    sizeof err), SC_ERR_POLICY);
	assert_int_equal(sc_http_fetch_cert(NULL, NULL, 0, 1000, &c, err, sizeof err), SC_ERR_ARG);

	/* the web server's certificate does not name "localhost" */
	srv_start(&web, (const char *const[]){ "TLS", NULL });
	snprintf(url, sizeof url, "https://localhost:%s/a.pem", web.port);
	assert_int_equal(sc_http_fetch_cert(url, ca_file, 0, 5000, &c, err, sizeof err),
			 SC_ERR_VERIFY);
	assert_non_null(strstr(err, "hostname mismatch"));
	srv_stop(&web);
	assert_null(c);
}

/* ---- MX answers ------------------------------------------------------------------ */

static size_t put_name(unsigned char *p, const char *name)
{
	size_t n = 0;

	while (*name) {
		size_t k = strcspn(name, ".");

		p[n++] = (unsigned char)k;
		memcpy(p + n, name, k);
		n += k;
		name += k + (name[k] == '.');
	}
	p[n++] = 0;
	return n;
}

struct rr {
	int type;
	unsigned pref;
	const char *name;
};

static size_t dns_answer(unsigned char *buf, const struct rr *rrs, size_t nrr)
{
	size_t n = 0;

	memcpy(buf, "\x12\x34\x81\x80\x00\x01", 6);
	buf[6] = 0;
	buf[7] = (unsigned char)nrr;
	memset(buf + 8, 0, 4);
	n = 12;
	n += put_name(buf + n, "example.test");
	memcpy(buf + n, "\x00\x0f\x00\x01", 4);
	n += 4;
	for (size_t i = 0; i < nrr; i++) {
		size_t rdlen_at;

		memcpy(buf + n, "\xc0\x0c", 2);
		buf[n + 2] = 0;
		buf[n + 3] = (unsigned char)rrs[i].type;
		memcpy(buf + n + 4, "\x00\x01\x00\x00\x0e\x10", 6);
		n += 10;
		rdlen_at = n;
		n += 2;
		if (rrs[i].type == 15) {
			buf[n++] = (unsigned char)(rrs[i].pref >> 8);
			buf[n++] = (unsigned char)rrs[i].pref;
		}
		n += put_name(buf + n, rrs[i].name);
		buf[rdlen_at] = (unsigned char)((n - rdlen_at - 2) >> 8);
		buf[rdlen_at + 1] = (unsigned char)(n - rdlen_at - 2);
	}
	return n;
}

static void test_mx_parse(void **state)
{
	unsigned char buf[1024];
	char hosts[SC_MX_MAX][SC_DOMAIN_MAX + 1], err[128] = "";
	size_t n, len;

	len = dns_answer(buf, (const struct rr[]){ { 5, 0, "alias.example.test" },
						   { 15, 20, "b.example.test" },
						   { 15, 10, "A.Example.TEST." },
						   { 15, 20, "c.example.test" },
						   { 15, 30, "b.example.test" } }, 5);
	assert_int_equal(mx_parse_answer(buf, len, hosts, SC_MX_MAX, &n, 0, err, sizeof err), SC_OK);
	assert_int_equal(n, 3);
	assert_string_equal(hosts[0], "a.example.test");
	assert_string_equal(hosts[1], "b.example.test");
	assert_string_equal(hosts[2], "c.example.test");
	/* shuffled: the lowest preference still comes first */
	assert_int_equal(mx_parse_answer(buf, len, hosts, SC_MX_MAX, &n, 1, err, sizeof err), SC_OK);
	assert_string_equal(hosts[0], "a.example.test");
	/* bounded by max */
	assert_int_equal(mx_parse_answer(buf, len, hosts, 1, &n, 0, err, sizeof err), SC_OK);
	assert_int_equal(n, 1);

	/* RFC 7505 null MX */
	len = dns_answer(buf, (const struct rr[]){ { 15, 0, "" } }, 1);
	assert_int_equal(mx_parse_answer(buf, len, hosts, SC_MX_MAX, &n, 0, err, sizeof err),
			 SC_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "null MX"));

	/* no MX records */
	len = dns_answer(buf, NULL, 0);
	assert_int_equal(mx_parse_answer(buf, len, hosts, SC_MX_MAX, &n, 0, err, sizeof err), SC_OK);
	assert_int_equal(n, 0);

	/* truncated and garbage answers */
	len = dns_answer(buf, (const struct rr[]){ { 15, 10, "a.example.test" } }, 1);
	assert_int_equal(mx_parse_answer(buf, len - 3, hosts, SC_MX_MAX, &n, 0, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(mx_parse_answer((const unsigned char *)"xx", 2, hosts, SC_MX_MAX, &n, 0,
					 err, sizeof err), SC_ERR_SYNTAX);
}

static void test_mx_args(void **state)
{
	char hosts[2][SC_DOMAIN_MAX + 1], err[128];
	size_t n;

	assert_int_equal(sc_mx_lookup("bad..domain", hosts, 2, &n, err, sizeof err), SC_ERR_ARG);
	assert_string_equal(err, "bad..domain: not a valid domain name");
	assert_int_equal(sc_mx_lookup(NULL, hosts, 2, &n, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_mx_lookup("example.test", hosts, 0, &n, err, sizeof err), SC_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fetch_plain),
		cmocka_unit_test(test_fetch_chain_over_tls),
		cmocka_unit_test(test_tls_by_ip_and_wrong_name),
		cmocka_unit_test(test_tls_required_not_offered),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_starttls_refused),
		cmocka_unit_test(test_fetch_replies),
		cmocka_unit_test(test_no_cert_ext_and_helo_fallback),
		cmocka_unit_test(test_session_refused),
		cmocka_unit_test(test_garbage_and_limits),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_command),
		cmocka_unit_test(test_fetch_follows_url),
		cmocka_unit_test(test_http_responses),
		cmocka_unit_test(test_http_urls_and_trust),
		cmocka_unit_test(test_mx_parse),
		cmocka_unit_test(test_mx_args),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
