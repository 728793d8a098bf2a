/*
 * test_d_conn.c - connections end to end without a listener (daemon/conn.c,
 * conn_io.c, transport_plain.c, transport_tls.c): a socketpair, one side handed
 * to conn_accept(), the other played by the test, the event loop pumped by hand.
 * Covers pipelining order, STARTTLS with plaintext injected after it in the same
 * write (CVE-2011-0411: never answered), the TLS session after the handshake,
 * over-long lines (past the line limit and past the input buffer), bare LF, NUL,
 * QUIT with more input behind it, EOF in mid-line, backpressure with a client
 * that does not read, the idle timeout, max_connections and graceful shutdown;
 * the batch of connections read in one loop round (conn_batch.c): each gets its
 * own answers, one closed or shut down while parked is skipped (ASan: no use
 * after free) and never answered twice. park() parks a connection by calling
 * its read callback outside the loop, so the batch holds it until the next round.
 *
 * No test depends on the machine's speed: the fixture's idle timeout (300 s) is
 * far off every path but test_idle_timeout's, and the deadlines below only stop
 * a hung test; they are multiplied by time_scale (SC_TEST_TIME_SCALE, set by
 * scripts/valgrind-suite, or 20 when run under valgrind) so a slow run still
 * reaches the assertions that decide the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <cmocka.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "test_d_fixture.h"
#include "cert_job.h"
#include "conn.h"
#include "log.h"

static struct dfix fix;
static struct event_base *base;
/* factor for every deadline (see the header comment) */
static double time_scale = 1;
/* the server's end of the last connect_buf() (conn_of() finds its struct conn) */
static int last_srv_fd = -1;

static void time_scale_init(void)
{
	const char *s = getenv("SC_TEST_TIME_SCALE");
	char *end;
	double v;

	time_scale = RUNNING_ON_VALGRIND ? 20 : 1;
	if (s && *s) {
		errno = 0;
		v = strtod(s, &end);
		if (errno == 0 && *end == '\0' && v >= 1 && v <= 1000)
			time_scale = v;
	}
}

static int setup(void **state)
{
	log_init(LOG_SINK_STDERR, 0);
	/* as smtpcertd does (main.c): OpenSSL writes to the socket without MSG_NOSIGNAL */
	signal(SIGPIPE, SIG_IGN);
	time_scale_init();
	/* the idle timeout must not expire while a slow run (valgrind) works through
	 * the other tests; test_idle_timeout lowers it for its own connection */
	dfix_setup(&fix, "idle_timeout = 300\nmax_connections = 3\n", 1);
	base = event_base_new();
	assert_non_null(base);
	assert_int_equal(conn_module_init(base), SC_OK);
	return 0;
}

static int teardown(void **state)
{
	conn_module_fini();
	event_base_free(base);
	dfix_teardown(&fix);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* the monotonic time @p secs (scaled) from now */
static double deadline(double secs)
{
	return now_s() + secs * time_scale;
}

static void pump(void)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
}

/* A new connection; returns the test's end (non-blocking). @p sndbuf: the
 * server side's send buffer (0: the default). */
static int connect_buf(int sndbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(40000) };
	int sv[2];

	sin.sin_addr.s_addr = htonl(0x7f000001);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	if (sndbuf)
		assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
	last_srv_fd = sv[1];
	conn_accept(sv[1], (struct sockaddr *)&sin, sizeof sin);
	return sv[0];
}

static int connect_one(void)
{
	return connect_buf(0);
}

struct rx {
	char buf[512 * 1024];
	size_t len;
	int eof;
};

/* Pump and read until @p want appears (or EOF, or @p secs pass). */
static int rx_until(int fd, struct rx *r, const char *want, double secs)
{
	double end = deadline(secs);

	while (now_s() < end) {
		ssize_t n;

		pump();
		n = read(fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
		if (n > 0) {
			r->len += (size_t)n;
			r->buf[r->len] = '\0';
		} else if (n == 0) {
			r->eof = 1;
		} else if (errno != EAGAIN) {
			r->eof = 1;
		}
		if (want && strstr(r->buf, want))
			return 1;
		if (r->eof)
			return 0;
		if (n <= 0)
			usleep(1000);
	}
	return 0;
}

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	double end = deadline(5);

	while (len > 0 && now_s() < end) {
		ssize_t n = write(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
		pump();
	}
	assert_int_equal(len, 0);
}

#define SEND(fd, s) send_all(fd, s, sizeof(s) - 1)

static void close_and_drain(int fd)
{
	double end = deadline(5);

	close(fd);
	while (conn_count() > 0 && now_s() < end)
		pump();
	assert_int_equal(conn_count(), 0);
}

static void banner(int fd, struct rx *r)
{
	memset(r, 0, sizeof *r);
	assert_true(rx_until(fd, r, "\r\n", 5));
	assert_string_equal(r->buf, "220 mx.test ESMTP smtpcertd\r\n");
	r->len = 0;
	r->buf[0] = '\0';
}

static void test_pipelining_in_order(void **state)
{
	static struct rx r;
	int fd = connect_one();
	char *p;

	banner(fd, &r);
	SEND(fd, "EHLO x\r\nNOOP\r\nCERT nobody@example.test\r\nCERT alice@example.test\r\n"
		 "RSET\r\nCERT x@other.test\r\n");
	assert_true(rx_until(fd, &r, "5.7.1", 5));
	p = strstr(r.buf, "250 HELP\r\n250 2.0.0 OK\r\n550 5.1.1 Certificate Not Found\r\n"
			  "250------BEGIN CERTIFICATE-----\r\n");
	assert_non_null(p);
	p = strstr(p, "250------END CERTIFICATE-----\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n550 5.7.1 ");
	assert_non_null(p);
	close_and_drain(fd);
}

static void test_bad_input(void **state)
{
	static struct rx r;
	static char big[10000];
	int fd = connect_one();

	banner(fd, &r);
	/* RFC 5321 4.5.3.1.4: one 500 per over-long line, then back in step */
	memset(big, 'A', 600);
	send_all(fd, big, 600);
	SEND(fd, "\r\nNOOP\r\n");
	assert_true(rx_until(fd, &r, "250 2.0.0 OK\r\n", 5));
	assert_string_equal(r.buf, "500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n");
	/* longer than the whole input buffer, arriving in pieces */
	r.len = 0;
	r.buf[0] = '\0';
	memset(big, 'B', sizeof big);
	send_all(fd, big, sizeof big);
	send_all(fd, big, sizeof big);
	SEND(fd, "\r\nNOOP\r\n");
	assert_true(rx_until(fd, &r, "250 2.0.0 OK\r\n", 5));
	assert_string_equal(r.buf, "500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n");
	/* bare LF ends a line; NUL is a syntax error; junk is unrecognized */
	r.len = 0;
	r.buf[0] = '\0';
	SEND(fd, "NOOP\nNO\0OP\r\n\x80\xff\x01\r\nNOOP\r\n");
	assert_true(rx_until(fd, &r, "unrecognized\r\n250 2.0.0 OK\r\n", 5));
	assert_string_equal(r.buf, "250 2.0.0 OK\r\n500 5.5.2 Syntax error\r\n"
				   "500 5.5.1 Command unrecognized\r\n250 2.0.0 OK\r\n");
	close_and_drain(fd);
}

static void test_quit_discards_rest(void **state)
{
	static struct rx r;
	int fd = connect_one();

	banner(fd, &r);
	SEND(fd, "QUIT\r\nNOOP\r\nNOOP\r\n");
	rx_until(fd, &r, NULL, 5); /* until EOF */
	assert_true(r.eof);
	assert_string_equal(r.buf, "221 2.0.0 mx.test closing connection\r\n");
	close_and_drain(fd);
}

static void test_eof_mid_line(void **state)
{
	static struct rx r;
	int fd = connect_one();

	banner(fd, &r);
	SEND(fd, "NOOP\r\nNOO");
	shutdown(fd, SHUT_WR);
	rx_until(fd, &r, NULL, 5);
	assert_true(r.eof);
	assert_string_equal(r.buf, "250 2.0.0 OK\r\n");
	close_and_drain(fd);
}

/* client side TLS handshake, pumping the server in between */
static sc_tls *client_tls(int fd)
{
	sc_tls_ctx *ctx;
	sc_tls *t;
	char err[256];
	sc_status rc;
	double end = deadline(10);

	assert_int_equal(sc_tls_client_ctx_new(NULL, 1, &ctx, err, sizeof err), SC_OK);
	assert_int_equal(sc_tls_new(ctx, fd, NULL, &t), SC_OK);
	sc_tls_ctx_unref(ctx);
	do {
		pump();
		rc = sc_tls_handshake(t);
	} while ((rc == SC_WANT_READ || rc == SC_WANT_WRITE) && now_s() < end);
	assert_int_equal(rc, SC_OK);
	return t;
}

static int tls_rx_until(sc_tls *t, struct rx *r, const char *want, double secs)
{
	double end = deadline(secs);

	while (now_s() < end) {
		size_t n = 0;
		sc_status rc;

		pump();
		rc = sc_tls_read(t, r->buf + r->len, sizeof r->buf - 1 - r->len, &n);
		if (rc == SC_OK) {
			r->len += n;
			r->buf[r->len] = '\0';
		} else if (rc != SC_WANT_READ && rc != SC_WANT_WRITE) {
			r->eof = 1;
			return 0;
		} else {
			usleep(1000);
		}
		if (want && strstr(r->buf, want))
			return 1;
	}
	return 0;
}

static void tls_send(sc_tls *t, const char *s)
{
	size_t len = strlen(s), n;
	double end = deadline(5);

	while (len > 0 && now_s() < end) {
		sc_status rc = sc_tls_write(t, s, len, &n);

		if (rc == SC_OK) {
			s += n;
			len -= n;
		}
		pump();
	}
	assert_int_equal(len, 0);
}

static void test_starttls_injection(void **state)
{
	static struct rx r;
	int fd = connect_one();
	sc_tls *t;

	banner(fd, &r);
	SEND(fd, "EHLO x\r\n");
	assert_true(rx_until(fd, &r, "250 HELP\r\n", 5));
	assert_non_null(strstr(r.buf, "250-STARTTLS\r\n"));
	r.len = 0;
	r.buf[0] = '\0';
	/* CVE-2011-0411: the CERT rides in the same write as STARTTLS */
	SEND(fd, "STARTTLS\r\nCERT alice@example.test\r\n");
	assert_true(rx_until(fd, &r, "220 2.0.0 Ready to start TLS\r\n", 5));
	assert_string_equal(r.buf, "220 2.0.0 Ready to start TLS\r\n");
	t = client_tls(fd);
	/* nothing arrives: the injected command was discarded, not executed (had it
	 * run, its reply would also precede the 503 below and fail that check) */
	memset(&r, 0, sizeof r);
	assert_false(tls_rx_until(t, &r, "\r\n", 0.3));
	assert_int_equal(r.len, 0);
	/* RFC 3207 4.2: greeting again is required, and STARTTLS is gone */
	tls_send(t, "CERT alice@example.test\r\n");
	assert_true(tls_rx_until(t, &r, "\r\n", 5));
	assert_string_equal(r.buf, "503 5.5.1 Send HELO/EHLO first\r\n");
	memset(&r, 0, sizeof r);
	tls_send(t, "EHLO x\r\nCERT alice@example.test\r\nSTARTTLS\r\n");
	assert_true(tls_rx_until(t, &r, "TLS already active\r\n", 5));
	assert_null(strstr(r.buf, "STARTTLS"));
	assert_non_null(strstr(r.buf, "250------END CERTIFICATE-----\r\n250 2.0.0 OK\r\n"
				      "503 5.5.1 TLS already active\r\n"));
	sc_tls_free(t);
	close_and_drain(fd);
}

static void test_backpressure(void **state)
{
	static struct rx r;
	static const char line[] = "CERT alice@example.test\r\n";
	int fd = connect_one();
	size_t sent = 0, got;
	double end = deadline(10);
	int blocked = 0;

	banner(fd, &r);
	SEND(fd, "EHLO x\r\n");
	assert_true(rx_until(fd, &r, "250 HELP\r\n", 5));
	/* pipeline CERTs and never read, until the server stops taking input */
	while (!blocked && now_s() < end) {
		for (int i = 0; i < 50; i++) {
			if (write(fd, line, sizeof line - 1) != (ssize_t)(sizeof line - 1)) {
				blocked = 1;
				break;
			}
			sent++;
		}
		pump();
	}
	assert_true(blocked);
	/* then read everything: every command answered, none lost */
	memset(&r, 0, sizeof r);
	end = deadline(20);
	got = 0;
	while (got < sent && now_s() < end) {
		char *p = r.buf;

		rx_until(fd, &r, NULL, 0.01);
		while ((p = strstr(p, "250 2.0.0 OK\r\n")) != NULL) {
			got++;
			p += 14;
		}
		/* keep only a possible partial line */
		if (r.len > 64) {
			memmove(r.buf, r.buf + r.len - 64, 64);
			r.len = 64;
			r.buf[64] = '\0';
			if (strstr(r.buf, "250 2.0.0 OK\r\n"))
				got--; /* counted above already */
		}
	}
	assert_true(got >= sent);
	close_and_drain(fd);
}

/* More replies than SESSION_OUT_HIGH from one write: the lines left in the input
 * buffer when processing paused must be answered once the output drains, without
 * the client sending anything else. */
static void test_backpressure_resumes_buffered(void **state)
{
	static struct rx r;
	static char many[60 * 25 + 12];
	/* a send buffer that takes all queued replies at once */
	int fd = connect_buf(4 * 1024 * 1024);
	int got = 0;
	char *p;

	banner(fd, &r);
	SEND(fd, "EHLO x\r\n");
	assert_true(rx_until(fd, &r, "250 HELP\r\n", 5));
	memset(&r, 0, sizeof r);
	for (int i = 0; i < 60; i++)
		memcpy(many + i * 25, "CERT alice@example.test\r\n", 25);
	memcpy(many + 60 * 25, "NOOP last\r\n", 11);
	send_all(fd, many, 60 * 25 + 11); /* one write */
	/* the NOOP's reply follows the 60 certificates */
	assert_true(rx_until(fd, &r, "250 2.0.0 OK\r\n250 2.0.0 OK\r\n", 10));
	for (p = r.buf; (p = strstr(p, "-----END CERTIFICATE-----\r\n250 2.0.0 OK\r\n")); p++)
		got++;
	assert_int_equal(got, 60);
	close_and_drain(fd);
}

/* `cat commands | nc`: many pipelined commands, then FIN at once; every one is
 * answered although the output had to drain in between. */
static void test_eof_after_pipeline(void **state)
{
	static struct rx r;
	static char many[60 * 25 + 20];
	int fd = connect_buf(4 * 1024 * 1024);
	int got = 0;
	char *p;

	banner(fd, &r);
	memcpy(many, "HELO x\r\n", 8);
	for (int i = 0; i < 60; i++)
		memcpy(many + 8 + i * 25, "CERT alice@example.test\r\n", 25);
	memcpy(many + 8 + 60 * 25, "QUIT\r\n", 6);
	send_all(fd, many, 8 + 60 * 25 + 6);
	shutdown(fd, SHUT_WR);
	rx_until(fd, &r, NULL, 10);
	assert_true(r.eof);
	for (p = r.buf; (p = strstr(p, "-----END CERTIFICATE-----\r\n250 2.0.0 OK\r\n")); p++)
		got++;
	assert_int_equal(got, 60);
	assert_non_null(strstr(r.buf, "\r\n221 2.0.0 mx.test closing connection\r\n"));
	close_and_drain(fd);
}

static void test_max_connections(void **state)
{
	static struct rx r;
	int fds[3], extra;

	for (int i = 0; i < 3; i++) {
		fds[i] = connect_one();
		banner(fds[i], &r);
	}
	assert_int_equal(conn_count(), 3);
	extra = connect_one();
	memset(&r, 0, sizeof r);
	rx_until(extra, &r, NULL, 5);
	assert_true(r.eof);
	assert_string_equal(r.buf, "421 4.7.0 mx.test Too many connections, try later\r\n");
	close(extra);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close_and_drain(-1);
}

static void test_idle_timeout(void **state)
{
	static struct rx r;
	long saved = fix.rt->idle_timeout;
	int fd;

	/* conn_arm_timer() reads the session's runtime at every re-arm */
	fix.rt->idle_timeout = 1;
	fd = connect_one();
	banner(fd, &r);
	rx_until(fd, &r, NULL, 5);
	fix.rt->idle_timeout = saved;
	assert_true(r.eof);
	assert_string_equal(r.buf, "421 4.4.2 mx.test Idle timeout, closing connection\r\n");
	close_and_drain(fd);
}


/* ---- the batch of connections read in one round (conn_batch.c) ------------ */

/* The live connection on server socket @p srv. */
static struct conn *conn_of(int srv)
{
	for (struct conn *c = conn_first(); c; c = c->next)
		if (c->tr.fd == srv)
			return c;
	fail_msg("no connection on fd %d", srv);
	return NULL;
}

/* A connection past EHLO with nothing left to read; *@p c its struct conn. */
static int connect_ready(struct rx *r, struct conn **c)
{
	int fd = connect_one();

	*c = conn_of(last_srv_fd);
	banner(fd, r);
	SEND(fd, "EHLO x\r\n");
	assert_true(rx_until(fd, r, "250 HELP\r\n", 5));
	memset(r, 0, sizeof *r);
	assert_int_equal((*c)->s.state, SESSION_READY);
	return fd;
}

/* Read what is there without running the loop. */
static void rx_now(int fd, struct rx *r)
{
	for (;;) {
		ssize_t n = read(fd, r->buf + r->len, sizeof r->buf - 1 - r->len);

		if (n > 0) {
			r->len += (size_t)n;
			r->buf[r->len] = '\0';
			continue;
		}
		if (n == 0 || errno != EAGAIN)
			r->eof = 1;
		return;
	}
}

/* One write of @p s (complete in one go: a socketpair takes it whole). */
static void write_now(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Park @p c: its client wrote @p line, and its read event runs (called as
 * libevent would, but outside the loop so that the batch cannot run yet). */
static void park(int fd, struct conn *c, const char *line)
{
	write_now(fd, line);
	conn_event_cb(c->tr.fd, EV_READ, c);
	assert_false(c->closed);
	assert_true(c->batched);
}

static void loop_once(void)
{
	assert_true(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK) >= 0);
}

static const char alice_reply_end[] = "-----END CERTIFICATE-----\r\n250 2.0.0 OK\r\n";
static const char not_found[] = "550 5.1.1 Certificate Not Found\r\n";

/* @p r holds exactly one answer to CERT alice@example.test */
static void is_alice(const struct rx *r)
{
	const char *end = strstr(r->buf, alice_reply_end);

	assert_true(strncmp(r->buf, "250------BEGIN CERTIFICATE-----\r\n", 33) == 0);
	assert_non_null(end);
	assert_int_equal(end + strlen(alice_reply_end) - r->buf, (long)r->len);
	assert_null(strstr(r->buf, "550 "));
}

/* Connections read in the same loop round each get their own answer: one
 * event_base_loop() round with two readable connections, then the two parked
 * by hand so that the batch provably holds both before it runs. */
static void test_batch_two_connections(void **state)
{
	static struct rx ra, rb;
	struct conn *ca, *cb;
	int a = connect_ready(&ra, &ca), b = connect_ready(&rb, &cb);

	/* both readable before the round: one round reads and answers both */
	write_now(a, "CERT alice@example.test\r\n");
	write_now(b, "CERT nobody@example.test\r\n");
	loop_once();
	assert_false(ca->batched || cb->batched);
	rx_now(a, &ra);
	rx_now(b, &rb);
	is_alice(&ra);
	assert_string_equal(rb.buf, not_found);
	/* the other way round, and the batch observed: after both read callbacks
	 * nothing is answered (both wait in the batch), after the batch event
	 * each has its own answer */
	memset(&ra, 0, sizeof ra);
	memset(&rb, 0, sizeof rb);
	park(a, ca, "CERT nobody@example.test\r\n");
	park(b, cb, "CERT alice@example.test\r\n");
	rx_now(a, &ra);
	rx_now(b, &rb);
	assert_int_equal(ra.len + rb.len, 0);
	/* each holds its own line, read and not yet processed */
	assert_non_null(ca->in);
	assert_non_null(cb->in);
	assert_int_equal(sc_buf_len(ca->in), 26);
	assert_memory_equal(sc_buf_data(ca->in), "CERT nobody@example.test\r\n", 26);
	assert_int_equal(sc_buf_len(cb->in), 25);
	assert_memory_equal(sc_buf_data(cb->in), "CERT alice@example.test\r\n", 25);
	loop_once();
	assert_false(ca->batched || cb->batched);
	rx_now(a, &ra);
	rx_now(b, &rb);
	assert_string_equal(ra.buf, not_found);
	is_alice(&rb);
	/* pipelined lines in a parked connection are all answered, in order */
	memset(&ra, 0, sizeof ra);
	memset(&rb, 0, sizeof rb);
	park(a, ca, "CERS nobody@example.test\r\nNOOP\r\nCERT alice@example.test\r\n");
	park(b, cb, "CERT carol@example.test\r\n");
	loop_once();
	rx_now(a, &ra);
	rx_now(b, &rb);
	assert_true(strncmp(ra.buf, "550 5.1.1 Certificate Not Found\r\n250 2.0.0 OK\r\n"
				    "250------BEGIN CERTIFICATE-----\r\n", 80) == 0);
	assert_non_null(strstr(ra.buf, alice_reply_end));
	assert_string_equal(rb.buf, not_found); /* revoked: same answer as unknown */
	close(a);
	close_and_drain(b);
}

/* A parked connection closed before the batch runs, and freed (the reaper
 * runs first in that round: it was made active before the batch): the batch
 * must skip it (conn_batch_forget()), and the other one is still answered.
 * Without the forget, ASan reports the batch reading the freed connection. */
static void test_batch_closed_while_parked(void **state)
{
	static struct rx rx, ra, rb;
	struct conn *cx, *ca, *cb;
	int x = connect_ready(&rx, &cx), a = connect_ready(&ra, &ca),
	    b = connect_ready(&rb, &cb);

	conn_close(cx, "test"); /* the reaper is active now */
	park(a, ca, "CERT alice@example.test\r\n");
	park(b, cb, "CERT alice@example.test\r\n");
	conn_close(ca, "test");
	assert_false(ca->batched);
	assert_true(cb->batched);
	assert_int_equal(conn_count(), 1);
	loop_once(); /* reaper (frees x and a), then the batch */
	rx_now(a, &ra);
	rx_now(b, &rb);
	assert_true(ra.eof);
	assert_int_equal(ra.len, 0);
	is_alice(&rb);
	assert_false(cb->batched);
	/* the batch works again afterwards */
	memset(&rb, 0, sizeof rb);
	park(b, cb, "CERT nobody@example.test\r\n");
	loop_once();
	rx_now(b, &rb);
	assert_string_equal(rb.buf, not_found);
	/* every parked connection closed (conn_close_all()): the batch runs empty */
	park(b, cb, "CERT alice@example.test\r\n");
	conn_close_all();
	assert_int_equal(conn_count(), 0);
	loop_once();
	memset(&rb, 0, sizeof rb);
	rx_now(b, &rb);
	assert_true(rb.eof);
	/* conn_goodbye() said why; the CERT was not answered */
	assert_string_equal(rb.buf, "421 4.3.2 mx.test Service shutting down\r\n");
	close(x);
	close(a);
	close_and_drain(b);
}

/* A full batch: the connection after CONN_BATCH_MAX (conn_batch.c: as many as
 * SC_REPO_PREFETCH_MAX) has the full batch answered at once, in the order its
 * connections were read, before it; it then waits in the next batch. Two
 * CERTs each, so the prefetch's argument list fills halfway through the
 * batch. Every one of them gets its own two answers, in order. */
static void test_batch_full(void **state)
{
	enum { NC = SC_REPO_PREFETCH_MAX + 1 };
	static const char two[] = "CERT alice@example.test\r\nCERT nobody@example.test\r\n";
	static struct rx r;
	static int fds[NC];
	static struct conn *cs[NC];
	long saved = fix.rt->max_connections;

	fix.rt->max_connections = NC;
	for (int i = 0; i < NC; i++)
		fds[i] = connect_ready(&r, &cs[i]);
	fix.rt->max_connections = saved;
	for (int i = 0; i < NC - 1; i++)
		park(fds[i], cs[i], two);
	/* nothing is answered while the batch fills */
	memset(&r, 0, sizeof r);
	rx_now(fds[0], &r);
	assert_int_equal(r.len, 0);
	park(fds[NC - 1], cs[NC - 1], two);
	for (int i = 0; i < NC; i++) {
		memset(&r, 0, sizeof r);
		rx_now(fds[i], &r);
		if (i == NC - 1) {
			assert_int_equal(r.len, 0); /* the next batch's */
			continue;
		}
		assert_false(cs[i]->batched);
		assert_true(strncmp(r.buf, "250------BEGIN CERTIFICATE-----\r\n", 33) == 0);
		assert_non_null(strstr(r.buf, alice_reply_end));
		assert_string_equal(strstr(r.buf, alice_reply_end) + strlen(alice_reply_end),
				    not_found);
	}
	loop_once();
	assert_false(cs[NC - 1]->batched);
	memset(&r, 0, sizeof r);
	rx_now(fds[NC - 1], &r);
	assert_true(strncmp(r.buf, "250------BEGIN CERTIFICATE-----\r\n", 33) == 0);
	assert_non_null(strstr(r.buf, alice_reply_end));
	assert_string_equal(strstr(r.buf, alice_reply_end) + strlen(alice_reply_end), not_found);
	for (int i = 0; i < NC; i++)
		close(fds[i]);
	close_and_drain(-1);
}

/* No batch where nothing can overlap: repository_index = no, or lookups that
 * run as jobs. The read callback answers at once, nothing is parked. */
static void test_batch_off(void **state)
{
	static struct rx ra;
	struct conn *ca;
	int a = connect_ready(&ra, &ca);

	for (int mode = 0; mode < 3; mode++) {
		fix.rt->repository_index = mode != 1;
		cert_job_force_async(mode == 2);
		write_now(a, "CERT alice@example.test\r\nCERT nobody@example.test\r\n");
		conn_event_cb(ca->tr.fd, EV_READ, ca);
		cert_job_force_async(0);
		fix.rt->repository_index = 1;
		memset(&ra, 0, sizeof ra);
		rx_now(a, &ra);
		if (mode == 0) {
			/* the control: parked, nothing answered yet */
			assert_true(ca->batched);
			assert_int_equal(ra.len, 0);
			loop_once();
			rx_now(a, &ra);
		} else {
			assert_false(ca->batched);
		}
		assert_non_null(strstr(ra.buf, alice_reply_end));
		assert_string_equal(strstr(ra.buf, alice_reply_end) + strlen(alice_reply_end),
				    not_found);
	}
	close_and_drain(a);
}

/* conn_shutdown_all() with connections parked (test_shutdown): each gets the
 * 421 instead of an answer (a stopping daemon processes no more commands,
 * conn_process()), once. */
static void shutdown_parked_check(const struct rx *r)
{
	static const char bye[] = "421 4.3.2 mx.test Service shutting down\r\n";

	assert_int_equal(r->len, strlen(bye));
	assert_memory_equal(r->buf, bye, strlen(bye));
}

static int done_called;

static void done(void)
{
	done_called++;
}

static void test_shutdown(void **state)
{
	static struct rx r1, r2, r3, r4;
	long saved = fix.rt->max_connections;
	int a = connect_one(), b = connect_one(), c, d;
	struct conn *cc, *cd;

	banner(a, &r1);
	banner(b, &r2);
	SEND(b, "EHLO x\r\n");
	assert_true(rx_until(b, &r2, "250 HELP\r\n", 5));
	memset(&r2, 0, sizeof r2);
	/* two more, parked in the batch with a CERT each (read at accept) */
	fix.rt->max_connections = 4;
	c = connect_ready(&r3, &cc);
	d = connect_ready(&r4, &cd);
	fix.rt->max_connections = saved;
	park(c, cc, "CERT alice@example.test\r\n");
	park(d, cd, "CERT nobody@example.test\r\n");
	conn_shutdown_all(done);
	rx_until(a, &r1, NULL, 5);
	rx_until(b, &r2, NULL, 5);
	rx_until(c, &r3, NULL, 5);
	rx_until(d, &r4, NULL, 5);
	assert_string_equal(r1.buf, "421 4.3.2 mx.test Service shutting down\r\n");
	assert_string_equal(r2.buf, "421 4.3.2 mx.test Service shutting down\r\n");
	assert_true(r1.eof && r2.eof);
	assert_true(r3.eof && r4.eof);
	shutdown_parked_check(&r3);
	shutdown_parked_check(&r4);
	assert_null(strstr(r3.buf, "550 "));
	assert_null(strstr(r4.buf, "250"));
	close(a);
	close(c);
	close(d);
	close_and_drain(b);
	assert_int_equal(done_called, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelining_in_order),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_quit_discards_rest),
		cmocka_unit_test(test_eof_mid_line),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_backpressure_resumes_buffered),
		cmocka_unit_test(test_eof_after_pipeline),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_batch_two_connections),
		cmocka_unit_test(test_batch_closed_while_parked),
		cmocka_unit_test(test_batch_off),
		cmocka_unit_test(test_batch_full),
		cmocka_unit_test(test_shutdown), /* last: the module refuses new connections after it */
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
