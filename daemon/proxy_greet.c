/*
 * proxy_greet.c - proxy mode's backend greeting (see proxy.h, proxy_int.h):
 * connecting (with the PROXY v2 header first when configured), the banner,
 * EHLO, XCLIENT (Postfix XCLIENT_README: after our EHLO, and again after AUTH
 * for LOGIN), the client's own HELO/EHLO, and our HELO/EHLO reply with the
 * merged keywords. Owns the process-wide cache of the backend's keywords.
 * Daemon process, event loop only.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "proxy_int.h"
#include "reply.h"
#include "runtime.h"

/* The backend's EHLO keywords as the last session learnt them: every EHLO
 * reply is made from here, and a client that only wants certificates opens no
 * backend connection (and takes no smtpd process of the backend). One event
 * loop: no lock. */
static struct {
	char key[300];              /* host:port:protocol they came from */
	struct timespec when;
	char caps[PROXY_CAPS_MAX];  /* nkw NUL-terminated keywords */
	size_t nkw;
} proxy_cache;

static void proxy_cache_key(const struct runtime *rt, char *out, size_t size)
{
	snprintf(out, size, "%s:%s:%d", rt->backend_host, rt->backend_port,
		 (int)rt->proxy_protocol);
}

/* Keep the keywords of the backend's EHLO reply @p r (minus its first line). */
static void proxy_caps_store(struct proxy *p, const struct proxy_reply *r)
{
	size_t used = 0;

	proxy_cache.nkw = 0;
	for (size_t i = 1; i < r->nlines && proxy_cache.nkw < PROXY_CAPS_KW; i++) {
		const char *l = r->text + r->off[i] + 4;
		const char *nl = memchr(l - 4, '\n', r->len - r->off[i]);
		size_t len = nl && nl >= l ? (size_t)(nl - l) : 0;

		if (len == 0 || used + len + 1 > sizeof proxy_cache.caps)
			continue;
		memcpy(proxy_cache.caps + used, l, len);
		proxy_cache.caps[used + len] = '\0';
		proxy_cache.nkw++;
		used += len + 1;
	}
	proxy_cache_key(p->s->rt, proxy_cache.key, sizeof proxy_cache.key);
	clock_gettime(CLOCK_MONOTONIC, &proxy_cache.when);
}

int proxy_caps_cached(const struct proxy *p)
{
	char key[sizeof proxy_cache.key];
	struct timespec now;

	proxy_cache_key(p->s->rt, key, sizeof key);
	clock_gettime(CLOCK_MONOTONIC, &now);
	return proxy_cache.nkw > 0 && strcmp(key, proxy_cache.key) == 0 &&
	       now.tv_sec - proxy_cache.when.tv_sec < PROXY_CAPS_TTL;
}

/* Pointers to the cached keywords (valid until the next store). */
static size_t proxy_caps_get(const char **kw, size_t max)
{
	size_t off = 0, n;

	for (n = 0; n < proxy_cache.nkw && n < max; n++) {
		kw[n] = proxy_cache.caps + off;
		off += strlen(proxy_cache.caps + off) + 1;
	}
	return n;
}

/* The client's address (@p peer) or ours (!@p peer) as numeric text. */
static int proxy_sockname(int fd, int peer, struct sockaddr_storage *ss, char *host,
			  size_t hsize, unsigned *port)
{
	socklen_t sl = sizeof *ss;
	char serv[8];

	if (fd < 0 || (peer ? getpeername(fd, (struct sockaddr *)ss, &sl) :
			      getsockname(fd, (struct sockaddr *)ss, &sl)) != 0)
		return 0;
	if (getnameinfo((struct sockaddr *)ss, sl, host, (socklen_t)hsize, serv, sizeof serv,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return 0;
	/* an IPv4 client on a dual-stack socket is an IPv4 client */
	if (!strncasecmp(host, "::ffff:", 7) && strchr(host + 7, '.'))
		memmove(host, host + 7, strlen(host + 7) + 1);
	*port = (unsigned)strtoul(serv, NULL, 10);
	return 1;
}

void proxy_send(struct proxy *p, const char *line, size_t len, enum proxy_phase next)
{
	p->phase = next;
	if (proxy_conn_command(&p->pc, line, len) != SC_OK) {
		proxy_conn_close(&p->pc, 0);
		proxy_fail(p, SC_ERR_NOMEM, "out of memory");
	}
}

/* The client's own HELO/EHLO, so the backend's Received field names it. */
static void proxy_send_hello(struct proxy *p)
{
	char line[SESSION_LINE_MAX + 8];
	int n = snprintf(line, sizeof line, "%s %.*s", p->esmtp ? "EHLO" : "HELO",
			 (int)p->helolen, p->helo);

	proxy_send(p, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, PX_HELLO);
}

/* The XCLIENT lines for p's client (proxy_hdr.c). The same every time during
 * one greeting (no command is read meanwhile), so they are made again for each
 * step instead of being kept. @return the number of lines. */
static size_t proxy_xclient_build(struct proxy *p, char *out, size_t size)
{
	struct session *s = p->s;
	struct sockaddr_storage ss;
	char addr[64], dest[64];
	unsigned port = 0, dport = 0;
	struct proxy_xclient x = { 0 };
	size_t n = 0;

	if (proxy_sockname(s->fd, 1, &ss, addr, sizeof addr, &port))
		x.addr = addr;
	if (proxy_sockname(s->fd, 0, &ss, dest, sizeof dest, &dport))
		x.destaddr = dest;
	x.port = port;
	x.destport = dport;
	x.proto = p->esmtp ? "ESMTP" : "SMTP";
	x.helo = p->helo;
	x.helo_len = p->helolen;
	x.login = s->auth_user[0] ? s->auth_user : NULL;
	if (proxy_xclient_lines(&x, p->xoffered, out, size, &n) != SC_OK)
		return 0;
	return n;
}

/* XCLIENT line number p->xstep, or the client's HELO/EHLO after the last. */
static void proxy_send_xclient_next(struct proxy *p)
{
	char lines[PROXY_XCLIENT_BUF_MAX];
	size_t n = proxy_xclient_build(p, lines, sizeof lines);
	const char *l = lines, *end = NULL;

	for (size_t i = 0; i < n; i++) {
		end = strstr(l, "\r\n");
		if (!end)
			break;
		if (i == p->xstep) {
			p->xstep++;
			proxy_send(p, l, (size_t)(end - l), PX_XCLIENT);
			return;
		}
		l = end + 2;
	}
	proxy_send_hello(p);
}

/* Postfix XCLIENT_README: tell the backend who the client is, then greet it
 * again (XCLIENT resets the backend's session and answers 220). */
void proxy_send_xclient(struct proxy *p)
{
	p->xstep = 0;
	snprintf(p->login_sent, sizeof p->login_sent, "%s", p->s->auth_user);
	proxy_send_xclient_next(p);
}

/* After the banner or for a new HELO/EHLO on an open connection. */
void proxy_hello_step(struct proxy *p)
{
	if (p->s->rt->proxy_protocol == RUNTIME_PROXY_XCLIENT && p->xoffered)
		proxy_send_xclient(p);
	else
		proxy_send_hello(p);
}

void proxy_open(struct proxy *p)
{
	struct session *s = p->s;
	const struct runtime *rt = s->rt;
	struct sockaddr_storage src, dst;
	uint8_t hdr[PROXY_V2_MAX];
	size_t hlen = 0;
	char host[64];
	unsigned port;
	sc_status rc;

	p->xoffered = 0;
	p->in_tx = 0;
	if (rt->proxy_protocol == RUNTIME_PROXY_V2) {
		int ok = proxy_sockname(s->fd, 1, &src, host, sizeof host, &port) &&
			 proxy_sockname(s->fd, 0, &dst, host, sizeof host, &port);

		/* proxy-protocol.txt 2.2: the header goes first, before the banner */
		if (proxy_v2_header(ok ? (struct sockaddr *)&src : NULL,
				    ok ? (struct sockaddr *)&dst : NULL, hdr, sizeof hdr,
				    &hlen) != SC_OK)
			hlen = 0;
	}
	p->phase = PX_BANNER;
	rc = proxy_conn_open(&p->pc, rt->backend_host, rt->backend_port, rt->proxy_timeout, hdr,
			     hlen, &proxy_ops, p);
	if (rc != SC_OK)
		proxy_fail(p, rc, "cannot connect");
}

/* Our HELO/EHLO reply: the greeting, then (EHLO) the merged keywords. */
void proxy_answer_greet(struct proxy *p, int backend)
{
	struct session *s = p->s;
	const struct runtime *rt = s->rt;
	const char *out[PROXY_CAPS_KW + 12], *kw[PROXY_CAPS_KW];
	size_t nkw;
	char who[128];
	unsigned ours = 0;
	size_t n = 0, i;

	for (i = 0; i < p->helolen && n + 1 < sizeof who; i++) {
		unsigned char ch = (unsigned char)p->helo[i];

		who[n++] = ch >= 0x21 && ch < 0x7f ? (char)ch : '?';
	}
	who[n] = '\0';
	if (!p->esmtp) {
		/* RFC 5321 4.1.1.1 */
		reply(s, "250 %s greets %s", rt->hostname, who);
		proxy_done(p, SESSION_READY);
		return;
	}
	if (rt->tls && !s->tls_active)
		ours |= PROXY_OURS_STARTTLS;
	if (rt->auth && s->tls_active)
		ours |= PROXY_OURS_AUTH;
	if (rt->submissions != RUNTIME_SUBMIT_OFF)
		ours |= PROXY_OURS_CERC;
	nkw = backend ? proxy_caps_get(kw, PROXY_CAPS_KW) : 0;
	n = proxy_ehlo_merge(kw, nkw, ours, out, sizeof out / sizeof out[0]);
	reply(s, "250-%s greets %s", rt->hostname, who);
	for (i = 0; i + 1 < n; i++)
		reply(s, "250-%s", out[i]);
	reply(s, "250 %s", out[n - 1]);
	reply_note(s, 250, "-");
	proxy_done(p, SESSION_READY);
}

static unsigned proxy_find_xclient(const struct proxy_reply *r)
{
	for (size_t i = 1; i < r->nlines; i++) {
		const char *l = r->text + r->off[i] + 4;
		const char *nl = memchr(l - 4, '\n', r->len - r->off[i]);

		if (nl && nl >= l + 7 && !strncasecmp(l, "XCLIENT", 7) &&
		    (nl == l + 7 || l[7] == ' '))
			return proxy_xclient_offered(l + 7, (size_t)(nl - l - 7));
	}
	return 0;
}

/* The backend greeted (@p ok: it accepted the client's EHLO and its keywords
 * are cached): answer the client's HELO/EHLO or send the waiting command. */
static void proxy_greeted(struct proxy *p, int ok)
{
	p->phase = PX_IDLE;
	if (p->goal == PG_GREET)
		proxy_answer_greet(p, ok);
	else
		proxy_send_cmd(p);
}

static void proxy_warn(struct proxy *p, const char *what, const struct proxy_reply *r)
{
	char text[160];
	const char *nl = r->len ? memchr(r->text, '\n', r->len) : NULL;

	log_escape(r->text, nl ? (size_t)(nl - r->text) : 0, text, sizeof text);
	log_msg(LOG_WARNING, "client=%s session=%s backend=%s:%s %s: %s", p->s->peer, p->s->id,
		p->s->rt->backend_host, p->s->rt->backend_port, what, text);
}

/* A reply to the handshake. */
void proxy_handshake_reply(struct proxy *p, const struct proxy_reply *r)
{
	struct session *s = p->s;

	switch (p->phase) {
	case PX_BANNER:
		if (r->code != 220) {
			/* RFC 5321 3.1: 554 or 421 instead of 220: no service */
			proxy_warn(p, "refused the connection", r);
			proxy_conn_close(&p->pc, 1);
			proxy_fail(p, SC_ERR_TEMP, "backend refused the connection");
			return;
		}
		if (s->rt->proxy_protocol == RUNTIME_PROXY_XCLIENT) {
			/* our own name first: XCLIENT is offered in the EHLO reply */
			char line[300];
			int n = snprintf(line, sizeof line, "EHLO %s", s->rt->hostname);

			proxy_send(p, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1,
				   PX_EHLO1);
		} else {
			proxy_send_hello(p);
		}
		return;
	case PX_EHLO1:
		if (r->code == 250)
			p->xoffered = proxy_find_xclient(r);
		if (!p->xoffered)
			proxy_warn(p, "does not offer XCLIENT to us (smtpd_authorized_xclient_hosts)",
				   r);
		proxy_hello_step(p);
		return;
	case PX_XCLIENT:
		if (r->code != 220)
			proxy_warn(p, "refused XCLIENT", r);
		proxy_send_xclient_next(p);
		return;
	default: /* PX_HELLO */
		if (r->code == 250 && p->esmtp)
			proxy_caps_store(p, r);
		else if (r->code >= 300)
			proxy_warn(p, "refused the client's HELO/EHLO", r);
		proxy_greeted(p, r->code == 250);
		return;
	}
}
