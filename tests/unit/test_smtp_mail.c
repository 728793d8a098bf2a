/*
 * test_smtp_mail.c - the mail-sending client (lib/smtp_mail.c) and the LMTP
 * greeting (lib/smtp.c) against a scripted server on a loopback socket in a
 * thread: MAIL/RCPT commands and their parameters, 4xx/5xx on MAIL, RCPT and
 * DATA, the exact octets DATA puts on the wire (bare LF and bare CR made CRLF,
 * CRLF kept, dot-stuffing, a last line without newline, an empty message, a CR
 * and its LF split across the read chunks, a large message), LMTP per-recipient
 * replies, the same over TLS, a server that hangs up mid-data, and a file that
 * cannot be read (the server never sees the final "."); sc_mx_resolve()'s
 * argument and resolver checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
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

/* ---- scripted server ---------------------------------------------------------------- */

#define DATA_MAX (4u * 1024 * 1024)

struct server {
	int lfd, fd;
	char port[8];
	const char *const *script;
	pthread_t th;
	sc_tls *tls;
	char failed[256];   /* first script mismatch */
	char extra[1024];   /* first line the script did not expect, besides QUIT */
	char *data;         /* raw octets after 354, up to and including "\r\n.\r\n" */
	size_t data_len;
	int data_ended;     /* the end-of-data line arrived */
};

static ssize_t srv_read(struct server *sv, char *buf, size_t len)
{
	if (sv->tls) {
		size_t n;

		return sc_tls_read(sv->tls, buf, len, &n) == SC_OK ? (ssize_t)n : -1;
	}
	return recv(sv->fd, buf, len, 0);
}

/* Raw DATA octets up to CRLF "." CRLF (or "." CRLF first). The client sends
 * nothing after it before our reply, so reading in chunks takes nothing more.
 * @p cut: stop after this many octets and hang up (0 = read to the end). */
static int srv_data(struct server *sv, size_t cut)
{
	sv->data_len = 0;
	sv->data_ended = 0;
	for (;;) {
		size_t room = DATA_MAX - sv->data_len;
		ssize_t r;

		if (cut && cut - sv->data_len < room)
			room = cut - sv->data_len;
		if (!room)
			return cut ? 1 : -1;
		r = srv_read(sv, sv->data + sv->data_len, room > 65536 ? 65536 : room);
		if (r <= 0)
			return -1;
		sv->data_len += (size_t)r;
		if ((sv->data_len == 3 && !memcmp(sv->data, ".\r\n", 3)) ||
		    (sv->data_len >= 5 && !memcmp(sv->data + sv->data_len - 5, "\r\n.\r\n", 5))) {
			sv->data_ended = 1;
			return 0;
		}
	}
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
			ts_lines(sv->fd, sv->tls, s + 2);
		} else if (!strncmp(s, "C ", 2)) {
			if (ts_line(sv->fd, sv->tls, line, sizeof line) != 0) {
				snprintf(sv->failed, sizeof sv->failed, "EOF, expected \"%.200s\"", s + 2);
				break;
			}
			if (strcmp(line, s + 2)) {
				snprintf(sv->failed, sizeof sv->failed, "got \"%.100s\", expected \"%.100s\"",
					 line, s + 2);
				break;
			}
		} else if (!strcmp(s, "DATA")) {
			if (srv_data(sv, 0) != 0) {
				snprintf(sv->failed, sizeof sv->failed, "data not ended by \".\"");
				break;
			}
		} else if (!strncmp(s, "CUT ", 4)) {
			/* take some octets, then hang up */
			(void)srv_data(sv, (size_t)strtoul(s + 4, NULL, 10));
			goto out;
		} else if (!strcmp(s, "CLOSE")) {
			goto out;
		} else if (!strcmp(s, "DRAIN")) {
			/* read until the client goes away */
			(void)srv_data(sv, 0);
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
	while (!sv->failed[0] && ts_line(sv->fd, sv->tls, line, sizeof line) == 0) {
		if (!strcasecmp(line, "QUIT")) {
			ts_lines(sv->fd, sv->tls, "221 2.0.0 bye");
			break;
		}
		if (!sv->extra[0])
			snprintf(sv->extra, sizeof sv->extra, "%s", line);
		ts_lines(sv->fd, sv->tls, "502 5.5.1 not in script");
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
	sv->data = malloc(DATA_MAX);
	assert_non_null(sv->data);
	sv->lfd = ts_listen(sv->port);
	assert_true(sv->lfd >= 0);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

/* Join the thread; the recorded data stays until srv_free(). */
static void srv_stop(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
	if (sv->failed[0])
		fail_msg("server script: %s", sv->failed);
}

static void srv_free(struct server *sv)
{
	free(sv->data);
	sv->data = NULL;
}

/* ---- fixtures ------------------------------------------------------------------------ */

static int setup(void **state)
{
	tc_key *cak = tc_key_shared(TC_P256), *sk = tc_key_shared(TC_P256);
	X509 *ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Mail Test CA", .is_ca = 1,
				.key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			       cak, NULL, NULL);
	X509 *srv = tc_cert_new(&(struct tc_cert_opts){ .cn = "mx.example.test",
				 .dns_names = { "mx.example.test" }, .ip = "127.0.0.1",
				 .eku = TC_EKU_SERVER_AUTH },
				sk, ca, cak);
	X509 *schain[2] = { srv, ca };
	char *pem;
	size_t len;

	signal(SIGPIPE, SIG_IGN);
	tc_tmpdir(dir, sizeof dir);
	snprintf(ca_file, sizeof ca_file, "%s/ca.pem", dir);
	snprintf(chain_file, sizeof chain_file, "%s/chain.pem", dir);
	snprintf(key_file, sizeof key_file, "%s/key.pem", dir);
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
	X509_free(srv);
	return 0;
}

static int teardown(void **state)
{
	tc_rmtree(dir);
	return 0;
}

#define BANNER "S 220 mx.example.test ESMTP test"
#define EHLO "C EHLO client.test", "S 250-mx.example.test greets client.test\n250-8BITMIME\n250 HELP"
#define LHLO "C LHLO client.test", "S 250-lmtp.example.test\n250-PIPELINING\n250 ENHANCEDSTATUSCODES"

static sc_smtp *open_session(struct server *sv, const char *const *script, int lmtp, int tls)
{
	struct sc_smtp_opts o = { .helo = "client.test", .timeout_ms = 5000,
				  .tls = tls ? SC_SMTP_TLS_REQUIRE : SC_SMTP_TLS_NEVER,
				  .ca_file = ca_file, .lmtp = lmtp };
	char err[256] = "";
	sc_smtp *s = NULL;

	srv_start(sv, script);
	if (sc_smtp_connect("127.0.0.1", sv->port, &o, &s, err, sizeof err) != SC_OK)
		fail_msg("connect: %s", err);
	return s;
}

/* A file holding @p len octets of @p text; returns an fd open for reading. */
static int msg_fd(const void *text, size_t len)
{
	char path[700];
	int fd;

	snprintf(path, sizeof path, "%s/msg.XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	/* pread ignores the position: leave it at the end on purpose */
	return fd;
}

static sc_reply *new_reply(void)
{
	sc_reply *r = NULL;

	assert_int_equal(sc_reply_new(0, 0, &r), SC_OK);
	return r;
}

/* One full transaction of @p msg; @return the octets the server received. */
static void send_and_compare(const char *msg, size_t len, const char *want, size_t wlen)
{
	static const char *const script[] = {
		BANNER, EHLO, "C MAIL FROM:<alice@example.test> BODY=8BITMIME",
		"S 250 2.1.0 Ok", "C RCPT TO:<bob@example.test>", "S 250 2.1.5 Ok", "C DATA",
		"S 354 End data with <CR><LF>.<CR><LF>", "DATA", "S 250 2.0.0 Ok: queued as X1",
		NULL
	};
	struct server sv;
	sc_smtp *s = open_session(&sv, script, 0, 0);
	sc_reply *r = new_reply();
	int fd = msg_fd(msg, len);

	assert_int_equal(sc_smtp_mail(s, "alice@example.test", "BODY=8BITMIME", r), SC_OK);
	assert_int_equal(sc_reply_code(r), 250);
	assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", NULL, r), SC_OK);
	assert_int_equal(sc_smtp_data_fd(s, fd, len, &r, 1), SC_OK);
	assert_int_equal(sc_reply_code(r), 250);
	assert_string_equal(sc_reply_message(r), "Ok: queued as X1");
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_string_equal(sv.extra, "");
	assert_int_equal(sv.data_len, wlen);
	assert_memory_equal(sv.data, want, wlen);
	srv_free(&sv);
	sc_reply_free(r);
	close(fd);
}

/* ---- DATA content ------------------------------------------------------------------- */

static void test_data_conversion(void **state)
{
	static const char msg[] = "Subject: dots\n\n.hello\nline\r\n..two\n.\nmid.dot\rcr\r\nlast";
	static const char want[] = "Subject: dots\r\n\r\n..hello\r\nline\r\n...two\r\n..\r\n"
				   "mid.dot\r\ncr\r\nlast\r\n.\r\n";

	send_and_compare(msg, sizeof msg - 1, want, sizeof want - 1);
}

static void test_data_edges(void **state)
{
	/* empty message: only the end-of-data line */
	send_and_compare("", 0, ".\r\n", 3);
	/* a lone "." line and a trailing CR */
	send_and_compare(".\r", 2, "..\r\n.\r\n", 7);
	/* already CRLF, ending with CRLF: sent unchanged */
	send_and_compare("a\r\nb\r\n", 6, "a\r\nb\r\n.\r\n", 9);
	/* embedded NUL and 8-bit octets pass through */
	send_and_compare("x\0\xff\n", 4, "x\0\xff\r\n.\r\n", 8);
}

/* A message over several read chunks, with a CR/LF pair and a ".line" start
 * straddling the chunk boundary; compared with a straightforward model. */
static void test_data_large(void **state)
{
	size_t len = 300 * 1024, wlen = 0;
	char *msg = malloc(len), *want = malloc(2 * len + 8);

	assert_non_null(msg);
	assert_non_null(want);
	for (size_t i = 0; i < len; i++)
		msg[i] = (char)('a' + i % 23);
	for (size_t i = 70; i < len; i += 71)
		msg[i] = '\n';
	/* around the first 32 KiB boundary: CR | LF, then "." at a line start */
	msg[32767] = '\r';
	msg[32768] = '\n';
	msg[32769] = '.';
	/* around the second: LF | "." */
	msg[65535] = '\n';
	msg[65536] = '.';
	for (size_t i = 0; i < len; i++) {
		int start = i == 0 || msg[i - 1] == '\n';

		if (msg[i] == '\r')
			continue; /* only ever followed by LF here */
		if (msg[i] == '\n') {
			want[wlen++] = '\r';
			want[wlen++] = '\n';
			continue;
		}
		if (start && msg[i] == '.')
			want[wlen++] = '.';
		want[wlen++] = msg[i];
	}
	if (msg[len - 1] != '\n') {
		want[wlen++] = '\r';
		want[wlen++] = '\n';
	}
	memcpy(want + wlen, ".\r\n", 3);
	wlen += 3;
	send_and_compare(msg, len, want, wlen);
	free(msg);
	free(want);
}

/* Only @p size octets are sent even when the file holds more. */
static void test_data_size_limit(void **state)
{
	static const char *const script[] = {
		BANNER, EHLO, "C MAIL FROM:<>", "S 250 2.1.0 Ok", "C RCPT TO:<bob@example.test>",
		"S 250 2.1.5 Ok", "C DATA", "S 354 go", "DATA", "S 250 2.0.0 Ok", NULL
	};
	struct server sv;
	sc_smtp *s = open_session(&sv, script, 0, 0);
	sc_reply *r = new_reply();
	int fd = msg_fd("one\ntwo\n", 8);

	/* RFC 5321 4.5.5: the null reverse-path, as bounces use */
	assert_int_equal(sc_smtp_mail(s, "", NULL, r), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", "", r), SC_OK);
	assert_int_equal(sc_smtp_data_fd(s, fd, 4, &r, 1), SC_OK);
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_int_equal(sv.data_len, 8);
	assert_memory_equal(sv.data, "one\r\n.\r\n", 8);
	srv_free(&sv);
	sc_reply_free(r);
	close(fd);
}

/* ---- refusals ------------------------------------------------------------------------ */

static void test_refusals(void **state)
{
	static const char *const script[] = {
		BANNER, EHLO,
		"C MAIL FROM:<alice@example.test>", "S 451 4.3.0 try later",
		"C MAIL FROM:<alice@example.test>", "S 553 5.7.1 sender refused",
		"C MAIL FROM:<alice@example.test> SIZE=10", "S 250 2.1.0 Ok",
		"C RCPT TO:<nobody@example.test>", "S 550 5.1.1 no such user",
		"C RCPT TO:<busy@example.test>", "S 452 4.2.2 mailbox full",
		"C RCPT TO:<odd@example.test>", "S 354 what",
		"C RCPT TO:<bob@example.test>", "S 251 2.1.5 will forward",
		"C DATA", "S 554 5.5.1 no valid recipients",
		"C DATA", "S 451 4.3.0 later",
		"C DATA", "S 250 2.0.0 not 354",
		"C DATA", "S 354 go", "DATA", "S 552 5.3.4 message too big",
		NULL
	};
	struct server sv;
	sc_smtp *s = open_session(&sv, script, 0, 0);
	sc_reply *r = new_reply();
	int fd = msg_fd("x\n", 2);

	assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, r), SC_ERR_TEMP);
	assert_int_equal(sc_reply_code(r), 451);
	assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, r), SC_ERR_REJECTED);
	assert_int_equal(sc_reply_code(r), 553);
	assert_string_equal(sc_reply_message(r), "sender refused");
	assert_int_equal(sc_smtp_mail(s, "alice@example.test", "SIZE=10", r), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "nobody@example.test", NULL, r), SC_ERR_REJECTED);
	assert_int_equal(sc_smtp_rcpt(s, "busy@example.test", NULL, r), SC_ERR_TEMP);
	assert_int_equal(sc_smtp_rcpt(s, "odd@example.test", NULL, r), SC_ERR_PROTOCOL);
	/* any 2xx accepts a recipient (RFC 5321 4.2.2: 251 forwards) */
	assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", NULL, r), SC_OK);
	assert_int_equal(sc_reply_code(r), 251);
	assert_int_equal(sc_smtp_data_fd(s, fd, 2, &r, 1), SC_ERR_REJECTED);
	assert_int_equal(sc_reply_code(r), 554);
	assert_int_equal(sc_smtp_data_fd(s, fd, 2, &r, 1), SC_ERR_TEMP);
	assert_int_equal(sc_smtp_data_fd(s, fd, 2, &r, 1), SC_ERR_PROTOCOL);
	/* refused after the data: the data went through, the reply says no */
	assert_int_equal(sc_smtp_data_fd(s, fd, 2, &r, 1), SC_OK);
	assert_int_equal(sc_reply_code(r), 552);
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_string_equal(sv.extra, "");
	srv_free(&sv);
	sc_reply_free(r);
	close(fd);
}

static void test_bad_arguments(void **state)
{
	static const char *const script[] = {
		BANNER, EHLO, "C MAIL FROM:<alice@example.test>", "S 250 2.1.0 Ok",
		"C RCPT TO:<\"a<b>\\\"c\"@example.test>", "S 250 2.1.5 Ok", NULL
	};
	struct server sv;
	sc_smtp *s = open_session(&sv, script, 0, 0);
	sc_reply *r = new_reply(), *none[1] = { NULL };
	char big[3000];

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(sc_smtp_mail(NULL, "a@b", NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_mail(s, NULL, NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_mail(s, "a@b>\r\nRCPT TO:<x@y", NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_mail(s, "a<b@c", NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_mail(s, "\"a@b", NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_mail(s, "\"a\\\r\"@b", NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_mail(s, "a@b", "SIZE=1\r\nDATA", r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_mail(s, big, NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_rcpt(s, "", NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_rcpt(s, NULL, NULL, r), SC_ERR_ARG);
	assert_int_equal(sc_smtp_data_fd(s, 0, 1, NULL, 1), SC_ERR_ARG);
	assert_int_equal(sc_smtp_data_fd(s, 0, 1, &r, 0), SC_ERR_ARG);
	assert_int_equal(sc_smtp_data_fd(s, -1, 1, &r, 1), SC_ERR_ARG);
	assert_int_equal(sc_smtp_data_fd(s, 0, 1, none, 1), SC_ERR_ARG);
	/* none of that reached the wire: the session still works, NULL reply allowed;
	 * brackets inside a quoted local part are fine (RFC 5321 qtextSMTP) */
	assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, NULL), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "\"a<b>\\\"c\"@example.test", NULL, r), SC_OK);
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_string_equal(sv.extra, "");
	srv_free(&sv);
	sc_reply_free(r);
}

/* ---- LMTP ---------------------------------------------------------------------------- */

static void test_lmtp_per_recipient(void **state)
{
	static const char *const script[] = {
		"S 220 lmtp.example.test LMTP ready", LHLO,
		"C MAIL FROM:<alice@example.test>", "S 250 2.1.0 Ok",
		"C RCPT TO:<bob@example.test>", "S 250 2.1.5 Ok",
		"C RCPT TO:<nobody@example.test>", "S 550 5.1.1 unknown",
		"C RCPT TO:<carol@example.test>", "S 250 2.1.5 Ok",
		"C DATA", "S 354 go", "DATA",
		"S 250 2.0.0 <bob@example.test> delivered\n452 4.2.2 <carol@example.test> over quota",
		NULL
	};
	struct server sv;
	sc_smtp *s = open_session(&sv, script, 1, 0);
	sc_reply *r[2] = { new_reply(), new_reply() };
	int fd = msg_fd("Subject: hi\n\nbody\n", 18);

	assert_true(sc_smtp_has_ext(s, "PIPELINING"));
	assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, r[0]), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", NULL, r[0]), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "nobody@example.test", NULL, r[0]), SC_ERR_REJECTED);
	assert_int_equal(sc_smtp_rcpt(s, "carol@example.test", NULL, r[0]), SC_OK);
	/* RFC 2033 4.2: one reply per accepted recipient, in order */
	assert_int_equal(sc_smtp_data_fd(s, fd, 18, r, 2), SC_OK);
	assert_int_equal(sc_reply_code(r[0]), 250);
	assert_string_equal(sc_reply_message(r[0]), "<bob@example.test> delivered");
	assert_int_equal(sc_reply_code(r[1]), 452);
	assert_string_equal(sc_reply_enhanced(r[1]), "4.2.2");
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_string_equal(sv.extra, "");
	assert_memory_equal(sv.data, "Subject: hi\r\n\r\nbody\r\n.\r\n", sv.data_len);
	srv_free(&sv);
	sc_reply_free(r[0]);
	sc_reply_free(r[1]);
	close(fd);
}

static void test_lmtp_lhlo_refused(void **state)
{
	static const char *const script[] = {
		"S 220 lmtp.example.test LMTP ready", "C LHLO client.test",
		"S 500 5.5.1 unknown command", NULL
	};
	struct sc_smtp_opts o = { .helo = "client.test", .timeout_ms = 5000,
				  .tls = SC_SMTP_TLS_NEVER, .lmtp = 1 };
	struct server sv;
	char err[256] = "";
	sc_smtp *s = NULL;

	srv_start(&sv, script);
	/* no HELO fallback in LMTP */
	assert_int_equal(sc_smtp_connect("127.0.0.1", sv.port, &o, &s, err, sizeof err),
			 SC_ERR_REJECTED);
	assert_null(s);
	assert_string_equal(err, "127.0.0.1: LHLO refused: 500 5.5.1 unknown command");
	srv_stop(&sv);
	srv_free(&sv);
}

/* The server's last reply is missing: the LMTP session ends early. */
static void test_lmtp_missing_reply(void **state)
{
	static const char *const script[] = {
		"S 220 lmtp.example.test LMTP ready", LHLO,
		"C MAIL FROM:<alice@example.test>", "S 250 2.1.0 Ok",
		"C RCPT TO:<bob@example.test>", "S 250 2.1.5 Ok",
		"C RCPT TO:<carol@example.test>", "S 250 2.1.5 Ok",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 <bob@example.test> delivered",
		"CLOSE", NULL
	};
	struct server sv;
	sc_smtp *s = open_session(&sv, script, 1, 0);
	sc_reply *r[2] = { new_reply(), new_reply() };
	int fd = msg_fd("x\n", 2);

	assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, r[0]), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", NULL, r[0]), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "carol@example.test", NULL, r[0]), SC_OK);
	assert_int_equal(sc_smtp_data_fd(s, fd, 2, r, 2), SC_ERR_NETWORK);
	assert_int_equal(sc_reply_code(r[0]), 250);
	/* the session is unusable now */
	assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, r[0]), SC_ERR_NETWORK);
	sc_smtp_close(s);
	srv_stop(&sv);
	srv_free(&sv);
	sc_reply_free(r[0]);
	sc_reply_free(r[1]);
	close(fd);
}

/* ---- TLS and failures ---------------------------------------------------------------- */

static void test_data_over_tls(void **state)
{
	static const char *const script[] = {
		BANNER, "C EHLO client.test", "S 250-mx.example.test\n250 STARTTLS",
		"C STARTTLS", "S 220 2.0.0 Ready to start TLS", "TLS", EHLO,
		"C MAIL FROM:<alice@example.test>", "S 250 2.1.0 Ok",
		"C RCPT TO:<bob@example.test>", "S 250 2.1.5 Ok",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 Ok", NULL
	};
	struct server sv;
	sc_smtp *s = open_session(&sv, script, 0, 1);
	sc_reply *r = new_reply();
	int fd = msg_fd(".a\nb\n", 5);

	assert_true(sc_smtp_is_tls(s));
	assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, r), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", NULL, r), SC_OK);
	assert_int_equal(sc_smtp_data_fd(s, fd, 5, &r, 1), SC_OK);
	assert_int_equal(sc_reply_code(r), 250);
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_int_equal(sv.data_len, 11);
	assert_memory_equal(sv.data, "..a\r\nb\r\n.\r\n", 11);
	srv_free(&sv);
	sc_reply_free(r);
	close(fd);
}

static void test_cut_mid_data(void **state)
{
	static const char *const script[] = {
		BANNER, EHLO, "C MAIL FROM:<alice@example.test>", "S 250 2.1.0 Ok",
		"C RCPT TO:<bob@example.test>", "S 250 2.1.5 Ok", "C DATA", "S 354 go",
		"CUT 1000", NULL
	};
	struct server sv;
	sc_smtp *s = open_session(&sv, script, 0, 0);
	sc_reply *r = new_reply();
	size_t len = 4 * 1024 * 1024;
	char *msg = malloc(len);
	int fd;
	sc_status st;

	assert_non_null(msg);
	memset(msg, 'm', len);
	fd = msg_fd(msg, len);
	free(msg);
	assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, r), SC_OK);
	assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", NULL, r), SC_OK);
	st = sc_smtp_data_fd(s, fd, len, &r, 1);
	/* a write to the closed socket, or the missing reply */
	assert_int_equal(st, SC_ERR_NETWORK);
	assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", NULL, r), SC_ERR_NETWORK);
	sc_smtp_close(s);
	srv_stop(&sv);
	assert_false(sv.data_ended);
	srv_free(&sv);
	sc_reply_free(r);
	close(fd);
}

/* A file that cannot be read, or is shorter than promised: the server must never
 * see the final ".", so it discards the transaction. */
static void test_fd_errors(void **state)
{
	for (int c = 0; c < 2; c++) {
		static const char *const script[] = {
			BANNER, EHLO, "C MAIL FROM:<alice@example.test>", "S 250 2.1.0 Ok",
			"C RCPT TO:<bob@example.test>", "S 250 2.1.5 Ok", "C DATA", "S 354 go",
			"DRAIN", NULL
		};
		struct server sv;
		sc_smtp *s = open_session(&sv, script, 0, 0);
		sc_reply *r = new_reply();
		char path[700];
		int fd;

		if (c == 0) {
			/* open for writing only: pread fails with EBADF */
			snprintf(path, sizeof path, "%s/wo", dir);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			assert_true(fd >= 0);
			assert_int_equal(write(fd, "abc\n", 4), 4);
		} else {
			fd = msg_fd("short\n", 6);
		}
		assert_int_equal(sc_smtp_mail(s, "alice@example.test", NULL, r), SC_OK);
		assert_int_equal(sc_smtp_rcpt(s, "bob@example.test", NULL, r), SC_OK);
		assert_int_equal(sc_smtp_data_fd(s, fd, c == 0 ? 4 : 100, &r, 1), SC_ERR_IO);
		/* broken: no QUIT, the connection is simply dropped */
		assert_int_equal(sc_smtp_mail(s, "a@b", NULL, r), SC_ERR_NETWORK);
		sc_smtp_close(s);
		srv_stop(&sv);
		assert_false(sv.data_ended);
		if (c == 1)
			assert_memory_equal(sv.data, "short\r\n", sv.data_len);
		srv_free(&sv);
		sc_reply_free(r);
		close(fd);
	}
}

/* sc_mx_resolve(): argument checks and a resolver that cannot be used (the
 * answers themselves are tested against a private zone in test_send.py). */
static void test_mx_resolve_args(void **state)
{
	struct sc_mx_host hosts[2];
	char err[256] = "";
	size_t n = 7;

	assert_int_equal(sc_mx_resolve(NULL, NULL, "", 1000, hosts, 2, &n, err, sizeof err),
			 SC_ERR_ARG);
	assert_int_equal(n, 7);
	assert_int_equal(sc_mx_resolve("example.test", NULL, "", 1000, NULL, 2, &n, err,
				       sizeof err),
			 SC_ERR_ARG);
	assert_int_equal(sc_mx_resolve("example.test", NULL, "", 1000, hosts, 0, &n, err,
				       sizeof err),
			 SC_ERR_ARG);
	assert_int_equal(n, 0);
	assert_int_equal(sc_mx_resolve("", NULL, "", 1000, hosts, 2, &n, err, sizeof err),
			 SC_ERR_ARG);
	assert_int_equal(sc_mx_resolve("example.test", "not-an-address", "", 1000, hosts, 2, &n,
				       err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "not-an-address"));
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_conversion),
		cmocka_unit_test(test_data_edges),
		cmocka_unit_test(test_data_large),
		cmocka_unit_test(test_data_size_limit),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_lmtp_per_recipient),
		cmocka_unit_test(test_lmtp_lhlo_refused),
		cmocka_unit_test(test_lmtp_missing_reply),
		cmocka_unit_test(test_data_over_tls),
		cmocka_unit_test(test_cut_mid_data),
		cmocka_unit_test(test_fd_errors),
		cmocka_unit_test(test_mx_resolve_args),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
