/*
 * auth_dovecot.c - the dovecot: credential source: Dovecot's authentication
 * protocol v1.1 (doc.dovecot.org, "Dovecot Authentication Protocol") over the
 * auth-client UNIX socket, mechanism PLAIN with the initial response.
 *
 *   C: VERSION 1 1 / CPID <pid>
 *   S: VERSION 1 x / MECH ... / SPID / CUID / COOKIE / DONE
 *   C: AUTH <id> PLAIN service=smtp secured no-penalty rip=<ip> resp=<base64>
 *   S: OK <id> [user=...] | FAIL <id> [temp] [reason=...] | CONT <id> <data>
 *
 * One connection per verification: nothing shared between worker threads but
 * the request id counter. Every read is bounded (a line of at most
 * DOVECOT_LINE_MAX bytes) and the whole exchange by the caller's timeout
 * (poll). Runs in smtpcertd's worker threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth_int.h"

/* The protocol document: lines are "expected to fit into 16384 bytes". */
#define DOVECOT_LINE_MAX 16384
/* The handshake is a handful of lines; more is a server we do not understand. */
#define DOVECOT_HANDSHAKE_LINES_MAX 64

struct dovecot_state {
	struct sockaddr_un sa;
};

struct dovecot_conn {
	int fd;
	struct timespec deadline;
	char buf[DOVECOT_LINE_MAX + 1];
	size_t len;    /* bytes buffered */
	size_t taken;  /* length of the last line handed out, consumed on the next read */
};

static atomic_uint dovecot_next_id = 1;

static int dovecot_ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000L + (deadline->tv_nsec - now.tv_nsec) / 1000000L;
	return ms > 0 ? (int)ms : 0;
}

static sc_status dovecot_wait(struct dovecot_conn *c, short events)
{
	struct pollfd p = { .fd = c->fd, .events = events };

	for (;;) {
		int left = dovecot_ms_left(&c->deadline), r;

		if (left == 0)
			return SC_ERR_TIMEOUT;
		r = poll(&p, 1, left);
		if (r > 0)
			return SC_OK;
		if (r == 0)
			return SC_ERR_TIMEOUT;
		if (errno != EINTR)
			return SC_ERR_IO;
	}
}

static sc_status dovecot_send(struct dovecot_conn *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			SC_TRY(dovecot_wait(c, POLLOUT));
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return SC_ERR_IO;
	}
	return SC_OK;
}

/* Next line without its LF, NUL-terminated in c->buf; valid until the next call. */
static sc_status dovecot_line(struct dovecot_conn *c, char **line)
{
	if (c->taken) {
		memmove(c->buf, c->buf + c->taken, c->len - c->taken);
		c->len -= c->taken;
		c->taken = 0;
	}
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (nl) {
			*nl = '\0';
			c->taken = (size_t)(nl - c->buf) + 1;
			if (memchr(c->buf, '\0', (size_t)(nl - c->buf)))
				return SC_ERR_PROTOCOL;
			*line = c->buf;
			return SC_OK;
		}
		if (c->len >= DOVECOT_LINE_MAX)
			return SC_ERR_TOO_LONG;
		n = recv(c->fd, c->buf + c->len, DOVECOT_LINE_MAX - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return SC_EOF;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			SC_TRY(dovecot_wait(c, POLLIN));
			continue;
		}
		if (errno != EINTR)
			return SC_ERR_IO;
	}
}

/* @return the field after @p n tabs (0 = the command), or NULL; fields end at a
 * tab or the end of the line. */
static const char *dovecot_field(const char *line, unsigned n, size_t *len)
{
	while (n-- > 0) {
		line = strchr(line, '\t');
		if (!line)
			return NULL;
		line++;
	}
	*len = strcspn(line, "\t");
	return line;
}

static int dovecot_is(const char *line, const char *cmd)
{
	size_t n = strlen(cmd);

	return !strncmp(line, cmd, n) && (line[n] == '\t' || line[n] == '\0');
}

/* Read the server's handshake up to DONE; check version 1 and PLAIN. */
static sc_status dovecot_handshake(struct dovecot_conn *c)
{
	int version = 0, plain = 0;

	for (int i = 0; i < DOVECOT_HANDSHAKE_LINES_MAX; i++) {
		const char *f;
		size_t flen;
		char *line;

		SC_TRY(dovecot_line(c, &line));
		if (dovecot_is(line, "VERSION")) {
			/* auth protocol: the same major version, minor may differ */
			f = dovecot_field(line, 1, &flen);
			if (!f || flen != 1 || f[0] != '1')
				return SC_ERR_PROTOCOL;
			version = 1;
		} else if (dovecot_is(line, "MECH")) {
			f = dovecot_field(line, 1, &flen);
			if (f && flen == 5 && !memcmp(f, "PLAIN", 5))
				plain = 1;
		} else if (dovecot_is(line, "DONE")) {
			return version && plain ? SC_OK : SC_ERR_PROTOCOL;
		}
		/* SPID, CUID, COOKIE and unknown lines: not needed by a client */
	}
	return SC_ERR_PROTOCOL;
}

/* "\0user\0password" (RFC 4616 2, empty authzid) in base64 into @p out. */
static sc_status dovecot_resp(const char *user, const char *password, char *out, size_t size)
{
	size_t ul = strlen(user), pl = strlen(password), n = ul + pl + 2;
	unsigned char raw[SC_AUTH_USER_MAX + SC_AUTH_PASS_MAX + 2];
	int w;

	if (n > sizeof raw || 4 * ((n + 2) / 3) + 1 > size)
		return SC_ERR_TOO_LONG;
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, password, pl);
	w = EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
	OPENSSL_cleanse(raw, sizeof raw);
	return w > 0 ? SC_OK : SC_ERR_CRYPTO;
}

/* Undo Dovecot's tab-escaping (\001 + 0/1/t/r/n/l) into @p out.
 * @return 0, or -1 when it does not fit (an identity is never truncated). */
static int dovecot_unescape(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == '\001' && i + 1 < len) {
			switch (in[++i]) {
			case '0': ch = '?'; break; /* a NUL never goes into a C string */
			case '1': ch = '\001'; break;
			case 't': ch = '\t'; break;
			case 'r': ch = '\r'; break;
			case 'n': case 'l': ch = '\n'; break;
			default: ch = in[i]; break;
			}
		}
		if (o + 1 >= size)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

/* Interpret the answer to request @p id. */
static sc_status dovecot_result(char *line, unsigned id, const char *user, char *canon,
				size_t canonlen)
{
	char idbuf[16];
	const char *f;
	size_t flen;
	int ok = dovecot_is(line, "OK"), fail = dovecot_is(line, "FAIL");

	if (!ok && !fail)
		return SC_ERR_PROTOCOL; /* CONT: PLAIN with an initial response needs none */
	snprintf(idbuf, sizeof idbuf, "%u", id);
	f = dovecot_field(line, 1, &flen);
	if (!f || flen != strlen(idbuf) || memcmp(f, idbuf, flen) != 0)
		return SC_ERR_PROTOCOL;
	if (fail) {
		/* "temp": the passdb failed, not the credentials */
		for (unsigned i = 2; (f = dovecot_field(line, i, &flen)) != NULL; i++)
			if (flen == 4 && !memcmp(f, "temp", 4))
				return SC_ERR_TEMP;
		return SC_ERR_REJECTED;
	}
	if (canon && canonlen) {
		snprintf(canon, canonlen, "%s", user);
		for (unsigned i = 2; (f = dovecot_field(line, i, &flen)) != NULL; i++)
			if (flen > 5 && !memcmp(f, "user=", 5) &&
			    dovecot_unescape(f + 5, flen - 5, canon, canonlen) != 0) {
				canon[0] = '\0';
				return SC_ERR_TOO_LONG;
			}
	}
	return SC_OK;
}

/* Bytes that would break the AUTH line (the IP comes from getnameinfo). */
static int dovecot_safe(const char *s)
{
	return s && strlen(s) < 64 && !strpbrk(s, "\t\r\n\001");
}

static sc_status dovecot_exchange(struct dovecot_conn *c, const struct dovecot_state *ds,
				  const char *user, const char *password, const char *remote_ip,
				  char *canon, size_t canonlen)
{
	char req[64 + 128 + 4 * ((SC_AUTH_USER_MAX + SC_AUTH_PASS_MAX + 4) / 3) + 8];
	char resp[4 * ((SC_AUTH_USER_MAX + SC_AUTH_PASS_MAX + 4) / 3) + 8];
	unsigned id = atomic_fetch_add(&dovecot_next_id, 1);
	char *line;
	int n;
	sc_status rc;

	if (connect(c->fd, (const struct sockaddr *)&ds->sa, sizeof ds->sa) != 0) {
		if (errno != EAGAIN && errno != EINPROGRESS)
			return SC_ERR_TEMP; /* ENOENT, ECONNREFUSED: Dovecot is down */
		SC_TRY(dovecot_wait(c, POLLOUT));
	}
	n = snprintf(req, sizeof req, "VERSION\t1\t1\nCPID\t%ld\n", (long)getpid());
	SC_TRY(dovecot_send(c, req, (size_t)n));
	SC_TRY(dovecot_handshake(c));
	rc = dovecot_resp(user, password, resp, sizeof resp);
	if (rc != SC_OK)
		return rc;
	/* "secured": the client is behind TLS (AUTH is refused before STARTTLS);
	 * "no-penalty": smtpcertd applies its own delay and failure limits */
	n = snprintf(req, sizeof req, "AUTH\t%u\tPLAIN\tservice=smtp\tsecured\tno-penalty%s%s\tresp=%s\n",
		     id, dovecot_safe(remote_ip) ? "\trip=" : "",
		     dovecot_safe(remote_ip) ? remote_ip : "", resp);
	OPENSSL_cleanse(resp, sizeof resp);
	if (n < 0 || (size_t)n >= sizeof req)
		rc = SC_ERR_TOO_LONG;
	else
		rc = dovecot_send(c, req, (size_t)n);
	OPENSSL_cleanse(req, sizeof req);
	SC_TRY(rc);
	SC_TRY(dovecot_line(c, &line));
	return dovecot_result(line, id, user, canon, canonlen);
}

static sc_status dovecot_verify(void *state, const char *user, const char *password,
				const char *remote_ip, int timeout_ms, char *canon, size_t canonlen)
{
	const struct dovecot_state *ds = state;
	struct dovecot_conn *c = calloc(1, sizeof *c);
	sc_status rc;

	if (!c)
		return SC_ERR_NOMEM;
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += timeout_ms / 1000;
	c->deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (c->deadline.tv_nsec >= 1000000000L) {
		c->deadline.tv_sec++;
		c->deadline.tv_nsec -= 1000000000L;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		free(c);
		return SC_ERR_IO;
	}
	rc = dovecot_exchange(c, ds, user, password, remote_ip, canon, canonlen);
	close(c->fd);
	free(c);
	switch (rc) {
	case SC_OK:
	case SC_ERR_REJECTED:
	case SC_ERR_TEMP:
	case SC_ERR_TIMEOUT:
	case SC_ERR_IO:
	case SC_ERR_NOMEM:
		return rc;
	default:
		/* EOF, garbage, over-long lines: the backend is not usable now */
		return SC_ERR_TEMP;
	}
}

static sc_status dovecot_open(const char *arg, void **state, char *err, size_t errlen)
{
	struct dovecot_state *ds;

	/* the socket need not exist yet: Dovecot may start after smtpcertd */
	if (arg[0] != '/' || strlen(arg) >= sizeof ds->sa.sun_path) {
		snprintf(err, errlen, "dovecot:%s: need an absolute socket path shorter than %zu bytes",
			 arg, sizeof ds->sa.sun_path);
		return SC_ERR_CONFIG;
	}
	ds = calloc(1, sizeof *ds);
	if (!ds)
		return SC_ERR_NOMEM;
	ds->sa.sun_family = AF_UNIX;
	memcpy(ds->sa.sun_path, arg, strlen(arg) + 1);
	*state = ds;
	return SC_OK;
}

static void dovecot_close(void *state)
{
	free(state);
}

const struct sc_auth_source sc_auth_dovecot_source = {
	.scheme = "dovecot",
	.open = dovecot_open,
	.close = dovecot_close,
	.verify = dovecot_verify,
};
