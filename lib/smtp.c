/*
 * smtp.c - blocking SMTP client for the CLI: connect (every address of the host,
 * in turn), banner, EHLO (HELO fallback), STARTTLS (RFC 3207) with server
 * authentication, commands one at a time, CERT/CERS certificate retrieval. Owns
 * the socket, the TLS session and a bounded input buffer. Runs in the CLI.
 *
 * "Blocking" to the caller: the socket is non-blocking and every wait is a poll()
 * with the remaining time of one deadline per reply, so a server that sends one
 * byte a minute cannot hold the client past timeout_ms.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtpcert/smtpcert.h"

/* RFC 5321 4.5.3.1.5 allows 512 octets per reply line; be lenient with servers. */
#define SMTP_LINE_MAX 2048
#define SMTP_INPUT_MAX (64 * 1024)
#define SMTP_EXT_MAX 64
#define SMTP_EXT_LEN 32
#define SMTP_DEFAULT_TIMEOUT 30000
#define SMTP_QUIT_TIMEOUT 2000

struct sc_smtp {
	int fd;
	int timeout_ms;
	int broken;              /* I/O or protocol failure: no QUIT on close */
	sc_tls_ctx *tctx;
	sc_tls *tls;
	sc_buf *in;
	sc_reply *reply;         /* for the session's own commands */
	char host[SC_DOMAIN_MAX + 1];
	char ext[SMTP_EXT_MAX][SMTP_EXT_LEN];
	size_t next;
	char *err;
	size_t errlen;
};

static void seterr(sc_smtp *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void seterr(sc_smtp *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->err || !s->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(s->err, s->errlen, fmt, ap);
	va_end(ap);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for @p events until @p deadline. @return SC_OK, SC_ERR_TIMEOUT, SC_ERR_NETWORK. */
static sc_status wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		long long left = deadline - now_ms();
		int r;

		if (left <= 0)
			return SC_ERR_TIMEOUT;
		r = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
		if (r > 0)
			return SC_OK;
		if (r == 0)
			return SC_ERR_TIMEOUT;
		if (errno != EINTR)
			return SC_ERR_NETWORK;
	}
}

/* Server text for a message: printable ASCII only, bounded. */
static void clean(char *out, size_t size, const char *in)
{
	size_t i = 0;

	for (; *in && i + 1 < size; in++)
		out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[i] = '\0';
}

/* After an I/O or protocol failure the session is out of step: no more commands.
 * A refused argument never reached the wire, so it leaves the session usable. */
static sc_status fail(sc_smtp *s, sc_status st)
{
	if (st != SC_OK && st != SC_ERR_ARG)
		s->broken = 1;
	return st;
}

/* Read more input into the buffer. */
static sc_status fill(sc_smtp *s, long long deadline)
{
	char *p;
	size_t room, n;
	sc_status st;

	if (sc_buf_reserve(s->in, &p, &room) != SC_OK) {
		seterr(s, "%s: reply too long", s->host);
		return SC_ERR_PROTOCOL;
	}
	for (;;) {
		if (s->tls) {
			st = sc_tls_read(s->tls, p, room, &n);
			if (st == SC_OK) {
				sc_buf_commit(s->in, n);
				return SC_OK;
			}
			if (st == SC_EOF) {
				seterr(s, "%s: connection closed by the server", s->host);
				return SC_ERR_NETWORK;
			}
			if (st != SC_WANT_READ && st != SC_WANT_WRITE) {
				seterr(s, "%s: TLS: %s", s->host, sc_tls_error(s->tls));
				return st;
			}
			st = wait_fd(s->fd, st == SC_WANT_READ ? POLLIN : POLLOUT, deadline);
		} else {
			ssize_t r = recv(s->fd, p, room, 0);

			if (r > 0) {
				sc_buf_commit(s->in, (size_t)r);
				return SC_OK;
			}
			if (r == 0) {
				seterr(s, "%s: connection closed by the server", s->host);
				return SC_ERR_NETWORK;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				seterr(s, "%s: read: %s", s->host, strerror(errno));
				return SC_ERR_NETWORK;
			}
			st = wait_fd(s->fd, POLLIN, deadline);
		}
		if (st == SC_ERR_TIMEOUT)
			seterr(s, "%s: timed out waiting for the server", s->host);
		else if (st != SC_OK)
			seterr(s, "%s: poll: %s", s->host, strerror(errno));
		if (st != SC_OK)
			return st;
	}
}

/* Read one complete reply into @p r (reset first). */
static sc_status read_reply(sc_smtp *s, sc_reply *r)
{
	long long deadline = now_ms() + s->timeout_ms;

	sc_reply_reset(r);
	for (;;) {
		const char *line;
		size_t len, used;
		int bare_lf;
		sc_status st = sc_buf_line(s->in, SMTP_LINE_MAX, &line, &len, &used, &bare_lf);

		if (st == SC_AGAIN) {
			SC_TRY(fill(s, deadline));
			continue;
		}
		if (st != SC_OK) {
			seterr(s, "%s: reply line longer than %d octets", s->host, SMTP_LINE_MAX);
			return SC_ERR_PROTOCOL;
		}
		st = sc_reply_feed(r, line, len);
		if (st == SC_ERR_PROTOCOL) {
			char text[80];

			snprintf(text, sizeof text, "%.*s", (int)(len > 60 ? 60 : len), line);
			clean(text, sizeof text, text);
			seterr(s, "%s: malformed reply line \"%s\"", s->host, text);
		} else if (st == SC_ERR_TOO_LONG || st == SC_ERR_TOO_MANY) {
			seterr(s, "%s: reply too long", s->host);
		}
		sc_buf_consume(s->in, used);
		if (st == SC_OK)
			return SC_OK;
		if (st != SC_AGAIN)
			return st == SC_ERR_PROTOCOL ? st : SC_ERR_PROTOCOL;
	}
}

static sc_status write_all(sc_smtp *s, const char *data, size_t len)
{
	long long deadline = now_ms() + s->timeout_ms;
	sc_status st;

	while (len) {
		size_t n = 0;

		if (s->tls) {
			st = sc_tls_write(s->tls, data, len, &n);
			if (st == SC_WANT_READ || st == SC_WANT_WRITE) {
				st = wait_fd(s->fd, st == SC_WANT_READ ? POLLIN : POLLOUT, deadline);
			} else if (st != SC_OK) {
				seterr(s, "%s: TLS: %s", s->host, sc_tls_error(s->tls));
				return st;
			}
		} else {
			ssize_t r = send(s->fd, data, len, MSG_NOSIGNAL);

			st = SC_OK;
			if (r >= 0) {
				n = (size_t)r;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				st = wait_fd(s->fd, POLLOUT, deadline);
			} else {
				seterr(s, "%s: write: %s", s->host, strerror(errno));
				return SC_ERR_NETWORK;
			}
		}
		if (st == SC_ERR_TIMEOUT)
			seterr(s, "%s: timed out writing to the server", s->host);
		if (st != SC_OK)
			return st;
		data += n;
		len -= n;
	}
	return SC_OK;
}

static sc_status do_command(sc_smtp *s, const char *line, sc_reply *r)
{
	char buf[SMTP_LINE_MAX + 2];
	size_t len = strlen(line);

	/* One command per call: CR, LF or NUL inside would smuggle more. */
	if (len > SMTP_LINE_MAX - 2 || strpbrk(line, "\r\n"))
		return SC_ERR_ARG;
	memcpy(buf, line, len);
	memcpy(buf + len, "\r\n", 2);
	SC_TRY(write_all(s, buf, len + 2));
	return read_reply(s, r);
}

sc_status sc_smtp_command(sc_smtp *s, const char *line, sc_reply *reply)
{
	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(line);
	SC_ENSURE_ARG(reply);
	SC_ENSURE(!s->broken, SC_ERR_NETWORK);
	return fail(s, do_command(s, line, reply));
}

/* "CODE ENH text" of the session's last reply, for messages. */
static void reply_text(const sc_reply *r, char *out, size_t size)
{
	char msg[200];

	clean(msg, sizeof msg, sc_reply_message(r));
	snprintf(out, size, "%d%s%s %s", sc_reply_code(r), sc_reply_enhanced(r)[0] ? " " : "",
		 sc_reply_enhanced(r), msg);
}

static sc_status rejected(sc_smtp *s, const char *what)
{
	char text[256];

	reply_text(s->reply, text, sizeof text);
	seterr(s, "%s: %s: %s", s->host, what, text);
	return sc_reply_code(s->reply) / 100 == 4 ? SC_ERR_TEMP : SC_ERR_REJECTED;
}

/* EHLO, falling back to HELO on 5xx (RFC 5321 3.2); records the keywords. */
static sc_status greet(sc_smtp *s, const char *helo)
{
	char cmd[SC_DOMAIN_MAX + 8];

	s->next = 0;
	snprintf(cmd, sizeof cmd, "EHLO %s", helo);
	SC_TRY(do_command(s, cmd, s->reply));
	if (sc_reply_code(s->reply) / 100 == 5) {
		snprintf(cmd, sizeof cmd, "HELO %s", helo);
		SC_TRY(do_command(s, cmd, s->reply));
		if (sc_reply_code(s->reply) != 250)
			return rejected(s, "HELO refused");
		return SC_OK;
	}
	if (sc_reply_code(s->reply) != 250)
		return rejected(s, "EHLO refused");
	/* RFC 5321 4.1.1.1: the first line greets, each further line is
	 * ehlo-keyword [params]. */
	for (size_t i = 1; i < sc_reply_count(s->reply) && s->next < SMTP_EXT_MAX; i++) {
		const char *t = sc_reply_text(s->reply, i, NULL);
		size_t k = strcspn(t, " ");

		if (k == 0 || k >= SMTP_EXT_LEN)
			continue;
		memcpy(s->ext[s->next], t, k);
		s->ext[s->next++][k] = '\0';
	}
	return SC_OK;
}

static sc_status start_tls(sc_smtp *s, const struct sc_smtp_opts *o, const char *host)
{
	long long deadline;
	char err[256] = "";
	sc_status st;

	SC_TRY(do_command(s, "STARTTLS", s->reply));
	if (sc_reply_code(s->reply) != 220) {
		if (o->tls == SC_SMTP_TLS_IF_OFFERED && sc_reply_code(s->reply) / 100 != 2)
			return SC_AGAIN; /* go on in plaintext */
		return rejected(s, "STARTTLS refused");
	}
	/* RFC 3207 4.2 / CVE-2011-0411: nothing may follow the 220 in plaintext; bytes
	 * already buffered would be taken as replies inside TLS (response injection). */
	if (sc_buf_len(s->in)) {
		seterr(s, "%s: server sent data after its STARTTLS reply (response injection?)",
		       s->host);
		return SC_ERR_PROTOCOL;
	}
	st = sc_tls_client_ctx_new(o->ca_file, o->insecure, &s->tctx, err, sizeof err);
	if (st != SC_OK) {
		seterr(s, "%s", err);
		return st;
	}
	st = sc_tls_new(s->tctx, s->fd, o->tls_name ? o->tls_name : host, &s->tls);
	if (st != SC_OK) {
		seterr(s, "%s: cannot start TLS", s->host);
		return st;
	}
	deadline = now_ms() + s->timeout_ms;
	for (;;) {
		st = sc_tls_handshake(s->tls);
		if (st == SC_OK)
			return SC_OK;
		if (st == SC_WANT_READ || st == SC_WANT_WRITE) {
			st = wait_fd(s->fd, st == SC_WANT_READ ? POLLIN : POLLOUT, deadline);
			if (st == SC_OK)
				continue;
			seterr(s, "%s: TLS handshake timed out", s->host);
			return st;
		}
		seterr(s, "%s: TLS handshake failed: %s", s->host, sc_tls_error(s->tls));
		return st;
	}
}

/* Try each address of @p host; @return the connected socket or -1. */
static sc_status connect_any(sc_smtp *s, const char *host, const char *port)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	sc_status st = SC_ERR_NETWORK;
	int r;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		seterr(s, "%s: cannot resolve: %s", s->host, gai_strerror(r));
		return r == EAI_AGAIN ? SC_ERR_TEMP : SC_ERR_NETWORK;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		char addr[NI_MAXHOST] = "?";
		long long deadline = now_ms() + s->timeout_ms;
		int fd, soerr = 0;
		socklen_t sl = sizeof soerr;

		getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			seterr(s, "%s[%s]:%s: socket: %s", s->host, addr, port, strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS &&
		     (st = wait_fd(fd, POLLOUT, deadline)) == SC_OK &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)) {
			s->fd = fd;
			freeaddrinfo(res);
			return SC_OK;
		}
		if (st == SC_ERR_TIMEOUT)
			seterr(s, "%s[%s]:%s: connect timed out", s->host, addr, port);
		else
			seterr(s, "%s[%s]:%s: connect: %s", s->host, addr, port,
			       strerror(soerr ? soerr : errno));
		if (st != SC_ERR_TIMEOUT)
			st = SC_ERR_NETWORK;
		close(fd);
	}
	freeaddrinfo(res);
	return st;
}

static sc_status session_start(sc_smtp *s, const char *host, const char *port,
			       const struct sc_smtp_opts *o)
{
	const char *helo = o->helo ? o->helo : "localhost";
	sc_status st;

	SC_TRY(connect_any(s, host, port));
	SC_TRY(read_reply(s, s->reply));
	/* RFC 5321 3.1: 554 instead of 220 means no service here. */
	if (sc_reply_code(s->reply) != 220)
		return rejected(s, "server refused the session");
	SC_TRY(greet(s, helo));
	if (o->tls == SC_SMTP_TLS_NEVER)
		return SC_OK;
	if (!sc_smtp_has_ext(s, "STARTTLS")) {
		if (o->tls == SC_SMTP_TLS_IF_OFFERED)
			return SC_OK;
		seterr(s, "%s: server does not offer STARTTLS", s->host);
		return SC_ERR_UNSUPPORTED;
	}
	st = start_tls(s, o, host);
	if (st == SC_AGAIN)
		return SC_OK;
	SC_TRY(st);
	/* RFC 3207 4.2: forget what the server said before TLS and ask again. */
	return greet(s, helo);
}

sc_status sc_smtp_connect(const char *host, const char *port, const struct sc_smtp_opts *opts,
			  sc_smtp **out, char *err, size_t errlen)
{
	static const struct sc_smtp_opts defaults = { 0 };
	const struct sc_smtp_opts *o = opts ? opts : &defaults;
	char name[SC_DOMAIN_MAX + 1];
	size_t hlen;
	sc_smtp *s;
	sc_status st;

	SC_ENSURE_ARG(host);
	SC_ENSURE_ARG(out);
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	/* "[::1]" is how an IPv6 literal is written next to a port; strip it. */
	hlen = strlen(host);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	SC_ENSURE(hlen > 0 && hlen < sizeof name, SC_ERR_ARG);
	memcpy(name, host, hlen);
	name[hlen] = '\0';
	s = calloc(1, sizeof *s);
	if (!s)
		return SC_ERR_NOMEM;
	s->fd = -1;
	s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : SMTP_DEFAULT_TIMEOUT;
	s->err = err;
	s->errlen = errlen;
	memcpy(s->host, name, hlen + 1);
	if (sc_buf_new(SMTP_INPUT_MAX, &s->in) != SC_OK ||
	    sc_reply_new(0, 0, &s->reply) != SC_OK) {
		s->broken = 1;
		sc_smtp_close(s);
		return SC_ERR_NOMEM;
	}
	st = session_start(s, name, port ? port : "25", o);
	if (st != SC_OK) {
		s->broken = 1;
		sc_smtp_close(s);
		return st;
	}
	/* Messages from later calls go to the buffers those calls pass. */
	s->err = NULL;
	s->errlen = 0;
	*out = s;
	return SC_OK;
}

void sc_smtp_close(sc_smtp *s)
{
	if (!s)
		return;
	if (!s->broken && s->fd >= 0) {
		/* Best effort: RFC 5321 4.1.1.10; do not wait long for the 221. */
		s->timeout_ms = SMTP_QUIT_TIMEOUT;
		s->err = NULL;
		if (do_command(s, "QUIT", s->reply) != SC_OK)
			s->broken = 1;
	}
	if (s->tls) {
		if (!s->broken)
			sc_tls_shutdown(s->tls);
		sc_tls_free(s->tls);
	}
	sc_tls_ctx_unref(s->tctx);
	if (s->fd >= 0)
		close(s->fd);
	sc_buf_free(s->in);
	sc_reply_free(s->reply);
	free(s);
}

int sc_smtp_has_ext(const sc_smtp *s, const char *keyword)
{
	if (!s || !keyword)
		return 0;
	for (size_t i = 0; i < s->next; i++)
		if (!strcasecmp(s->ext[i], keyword))
			return 1;
	return 0;
}

int sc_smtp_is_tls(const sc_smtp *s)
{
	return s && s->tls;
}

const char *sc_smtp_tls_version(const sc_smtp *s)
{
	return s && s->tls ? sc_tls_version(s->tls) : NULL;
}

/* Join the certificate lines of a 250 reply (all but the status line) with LF. */
static sc_status join_lines(const sc_reply *r, char **out, size_t *outlen)
{
	size_t n = sc_reply_count(r), total = 0, len;
	char *buf, *p;

	/* Lenient: a last line that is itself the PEM END line belongs to the PEM. */
	if (!strncmp(sc_reply_text(r, n - 1, NULL), "-----END ", 9))
		n++;
	for (size_t i = 0; i + 1 < n; i++) {
		sc_reply_text(r, i, &len);
		total += len + 1;
	}
	buf = p = malloc(total + 1);
	if (!buf)
		return SC_ERR_NOMEM;
	for (size_t i = 0; i + 1 < n; i++) {
		const char *t = sc_reply_text(r, i, &len);

		memcpy(p, t, len);
		p += len;
		*p++ = '\n';
	}
	*p = '\0';
	*out = buf;
	*outlen = total;
	return SC_OK;
}

static sc_status fetch(sc_smtp *s, const struct sc_addr *addr, int chain, sc_cert **out,
		       int *code)
{
	const char *verb = chain ? "CERS" : "CERT";
	char cmd[SC_ADDR_KEY_MAX + 16], a[SC_ADDR_KEY_MAX + 8], text[256], *pem;
	size_t len;
	sc_status st;

	if (!sc_smtp_has_ext(s, verb)) {
		seterr(s, "%s: server does not offer %s", s->host, verb);
		return SC_ERR_UNSUPPORTED;
	}
	if (sc_addr_format(addr, a, sizeof a) != SC_OK)
		return SC_ERR_ARG;
	/* The proposal's examples send the bare address; brackets are optional. */
	snprintf(cmd, sizeof cmd, "%s %s", verb, a);
	st = do_command(s, cmd, s->reply);
	if (st != SC_OK)
		return fail(s, st);
	*code = sc_reply_code(s->reply);
	reply_text(s->reply, text, sizeof text);
	/* 550 is "no such certificate" unless the enhanced code says policy
	 * (RFC 3463 X.7.X, e.g. 5.7.1 for a domain not served here). */
	if (*code == 550 && strncmp(sc_reply_enhanced(s->reply), "5.7.", 4)) {
		seterr(s, "%s: %s", s->host, text);
		return SC_ERR_NOT_FOUND;
	}
	if (*code / 100 == 4) {
		seterr(s, "%s: %s", s->host, text);
		return SC_ERR_TEMP;
	}
	if (*code / 100 == 5) {
		seterr(s, "%s: %s", s->host, text);
		return SC_ERR_REJECTED;
	}
	if (*code != 250) {
		seterr(s, "%s: unexpected reply to %s: %s", s->host, verb, text);
		return SC_ERR_PROTOCOL;
	}
	if (sc_reply_count(s->reply) >= 2) {
		const char *first = sc_reply_text(s->reply, 0, NULL);

		/* cert_url mode (INTERFACE.md): the server points at the certificate. */
		if (!strncasecmp(first, "https://", 8) || !strncasecmp(first, "http://", 7)) {
			clean(text, sizeof text, first);
			seterr(s, "%s: server answered with a URL: %s", s->host, text);
			return SC_ERR_UNSUPPORTED;
		}
	}
	SC_TRY(join_lines(s->reply, &pem, &len));
	st = len ? sc_cert_parse(pem, len, out) : SC_ERR_NOT_FOUND;
	free(pem);
	if (st == SC_ERR_NOMEM)
		return st;
	if (st != SC_OK) {
		seterr(s, "%s: 250 reply without a usable certificate (%s)", s->host,
		       sc_strerror(st));
		return SC_ERR_PROTOCOL;
	}
	return SC_OK;
}

sc_status sc_smtp_fetch_cert(sc_smtp *s, const struct sc_addr *addr, int chain, sc_cert **out,
			     int *code, char *err, size_t errlen)
{
	int dummy;
	sc_status st;

	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(addr);
	SC_ENSURE_ARG(out);
	*out = NULL;
	if (!code)
		code = &dummy;
	*code = 0;
	if (err && errlen)
		err[0] = '\0';
	SC_ENSURE(!s->broken, SC_ERR_NETWORK);
	s->err = err;
	s->errlen = errlen;
	st = fetch(s, addr, chain, out, code);
	s->err = NULL;
	s->errlen = 0;
	return st;
}
