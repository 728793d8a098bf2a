/*
 * loadgen.c - SMTP CERT load generator for bench/run (not part of the daemon).
 * One thread, epoll, N loopback connections; each reads the banner, sends EHLO,
 * then keeps P CERT commands in flight (RFC 2920 pipelining when P > 1) until the
 * duration or request bound is reached. The latency of a request runs from the
 * write that carried it to the final line of its reply ("NNN " rather than
 * "NNN-", RFC 5321 4.2.1); latencies go into a log-linear histogram (~3% buckets).
 *
 * Modes:
 *   load (default)  prints one line: conns, depth, requests, errors, req/s, p50,
 *                   p99, max (microseconds)
 *   -I              idle: open the connections, finish EHLO, print "ready N",
 *                   hold them for the duration, then exit
 *   -W              wait: connect every 2 ms until a banner arrives (at most the
 *                   duration), then send EHLO and one CERT (pipelined) and wait
 *                   for the CERT's final reply line; print the CLOCK_REALTIME of
 *                   that moment in ns (startup = exec to first CERT answered)
 *   -L BASE         LDAP instead of SMTP (for the slapd comparison): each request
 *                   is an RFC 4511 4.5.1 SearchRequest, subtree under BASE, filter
 *                   (mail=ADDRESS), attribute userCertificate;binary; it succeeds
 *                   when one entry and a success SearchResultDone come back.
 *                   Pipelined by message ID (RFC 4511 4.1.1.1); the first search
 *                   of a connection stands for the SMTP banner and EHLO
 * Everything is bounded: the duration (default 5 s) caps every mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define DEPTH_MAX 256
#define RBUF 8192
#define HIST_N 2048

enum cstate { C_BANNER, C_EHLO, C_READY, C_RUN, C_DEAD };

struct conn {
	int fd;
	enum cstate st;
	size_t rlen;
	unsigned inflight;
	unsigned head;                /* ring of send times, oldest first */
	uint64_t sent_at[DEPTH_MAX];  /* LDAP: by message ID % DEPTH_MAX */
	unsigned msgid;               /* LDAP: last message ID sent */
	unsigned char got[DEPTH_MAX]; /* LDAP: entries seen per message ID */
	char rbuf[RBUF];
};

static struct {
	const char *host, *pattern, *ldap_base;
	int port, conns, depth, duration, mode;
	long range, limit;
} opt = { "127.0.0.1", "user%d@example.test", NULL, 0, 1, 1, 5, 0, 1000000, 0 };

static uint64_t hist[HIST_N];
static uint64_t done_n, err_n, sent_n, lost_n;
static unsigned long rng = 88172645463325252UL;
static int stopping;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Buckets: exact below 64 ns, then 32 per power of two. */
static unsigned hist_idx(uint64_t v)
{
	int msb, shift;

	if (v < 64)
		return (unsigned)v;
	msb = 63 - __builtin_clzll(v);
	shift = msb - 5;
	return (unsigned)((shift + 1) * 32 + (int)((v >> shift) & 31));
}

static uint64_t hist_val(unsigned i)
{
	if (i < 64)
		return i;
	return (uint64_t)(32 + i % 32) << (i / 32 - 1);
}

static uint64_t hist_pct(double p)
{
	uint64_t total = 0, acc = 0, want;

	for (unsigned i = 0; i < HIST_N; i++)
		total += hist[i];
	if (!total)
		return 0;
	want = (uint64_t)(p * (double)total);
	if (want >= total)
		want = total - 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		acc += hist[i];
		if (acc > want)
			return hist_val(i);
	}
	return 0;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The pattern is used as a format string: only %d conversions, at most one. */
static int pattern_ok(const char *p)
{
	int n = bench_pattern_count(p);

	return n >= 0 && n <= 1;
}

static int connect_one(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		die("socket");
	if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
		fprintf(stderr, "loadgen: not an IPv4 address: %s\n", opt.host);
		exit(2);
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void send_all(struct conn *c, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(c->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Requests are tiny: a full socket buffer means the server stopped
			 * reading, which counts as a failed connection. */
			c->st = C_DEAD;
			err_n++;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Append @p k CERT commands to one write and stamp their send time. */
static void send_certs(struct conn *c, unsigned k)
{
	char out[DEPTH_MAX * 80];
	size_t o = 0;
	uint64_t t;

	for (unsigned i = 0; i < k; i++) {
		char addr[300];
		int n;

		if (opt.limit && (long)sent_n >= opt.limit)
			break;
		n = bench_next_addr(&rng, opt.pattern, opt.range, addr, sizeof addr);
		if (n < 0)
			n = 0;
		n = snprintf(out + o, sizeof out - o, "CERT %.*s\r\n", n, addr);
		if (n < 0 || (size_t)n >= sizeof out - o)
			break;
		o += (size_t)n;
		sent_n++;
		c->inflight++;
	}
	if (!o)
		return;
	t = now_ns();
	/* Stamp the requests just added: they occupy the last slots of the ring. */
	{
		unsigned added = 0;

		for (size_t p = 0; p < o; p++)
			if (out[p] == '\n')
				added++;
		for (unsigned i = c->inflight - added; i < c->inflight; i++)
			c->sent_at[(c->head + i) % DEPTH_MAX] = t;
	}
	send_all(c, out, o);
}

/* BER (X.690) definite length of @p n octets at @p p; @return bytes written. */
static size_t ber_len(uint8_t *p, size_t n)
{
	if (n < 0x80) {
		p[0] = (uint8_t)n;
		return 1;
	}
	p[0] = 0x82;
	p[1] = (uint8_t)(n >> 8);
	p[2] = (uint8_t)n;
	return 3;
}

/* tag, length, @p n octets of @p v */
static size_t ber_tlv(uint8_t *p, uint8_t tag, const void *v, size_t n)
{
	size_t o = 1;

	p[0] = tag;
	o += ber_len(p + 1, n);
	memcpy(p + o, v, n);
	return o + n;
}

/* One LDAPMessage with a SearchRequest for @p addr (RFC 4511 4.5.1). */
static size_t ldap_search(uint8_t *out, unsigned msgid, const char *addr, size_t alen)
{
	static const uint8_t fixed[] = {
		0x0a, 1, 2,    /* scope wholeSubtree */
		0x0a, 1, 0,    /* derefAliases neverDerefAliases */
		0x02, 1, 0,    /* sizeLimit 0 */
		0x02, 1, 0,    /* timeLimit 0 */
		0x01, 1, 0     /* typesOnly FALSE */
	};
	static const char attr[] = "userCertificate;binary";
	uint8_t req[600], flt[400], attrs[64], id[4];
	size_t r = 0, f = 0, a, o;

	r += ber_tlv(req + r, 0x04, opt.ldap_base, strlen(opt.ldap_base));
	memcpy(req + r, fixed, sizeof fixed);
	r += sizeof fixed;
	f += ber_tlv(flt + f, 0x04, "mail", 4);
	f += ber_tlv(flt + f, 0x04, addr, alen);
	r += ber_tlv(req + r, 0xa3, flt, f); /* equalityMatch */
	a = ber_tlv(attrs, 0x04, attr, sizeof attr - 1);
	r += ber_tlv(req + r, 0x30, attrs, a);
	id[0] = (uint8_t)(msgid >> 16 & 0x7f);
	id[1] = (uint8_t)(msgid >> 8);
	id[2] = (uint8_t)msgid;
	o = 0;
	{
		uint8_t body[700];
		size_t b = 0;

		b += ber_tlv(body + b, 0x02, id, 3);
		b += ber_tlv(body + b, 0x63, req, r); /* [APPLICATION 3] */
		o = ber_tlv(out, 0x30, body, b);
	}
	return o;
}

/* Append @p k LDAP searches to one write and stamp their send time. */
static void send_ldap(struct conn *c, unsigned k)
{
	static uint8_t out[DEPTH_MAX * 720];
	size_t o = 0;
	uint64_t t = now_ns();

	for (unsigned i = 0; i < k; i++) {
		char addr[300];
		int n;

		if (opt.limit && (long)sent_n >= opt.limit)
			break;
		n = bench_next_addr(&rng, opt.pattern, opt.range, addr, sizeof addr);
		if (n < 0)
			n = 0;
		c->msgid = c->msgid % 0x3fffff + 1;
		o += ldap_search(out + o, c->msgid, addr, (size_t)n);
		c->sent_at[c->msgid % DEPTH_MAX] = t;
		c->got[c->msgid % DEPTH_MAX] = 0;
		sent_n++;
		c->inflight++;
	}
	if (o)
		send_all(c, (const char *)out, o);
}

/* Length of the BER element at @p p (*@p hdr: its header); 0 when incomplete,
 * (size_t)-1 when not a definite length we take. */
static size_t ber_elem(const uint8_t *p, size_t avail, size_t *hdr)
{
	size_t n, h = 2;

	if (avail < 2)
		return 0;
	n = p[1];
	if (n & 0x80) {
		size_t k = n & 0x7f;

		if (k == 0 || k > 3)
			return (size_t)-1;
		if (avail < 2 + k)
			return 0;
		n = 0;
		for (size_t i = 0; i < k; i++)
			n = n << 8 | p[2 + i];
		h += k;
	}
	*hdr = h;
	return h + n;
}

/* One complete LDAPMessage; returns 1 when it ended a request. */
static int on_ldap_message(struct conn *c, const uint8_t *m, size_t len)
{
	size_t h, idlen, oplen, oh;
	unsigned msgid = 0, slot;
	const uint8_t *op;

	/* SEQUENCE { messageID INTEGER, protocolOp, ... } */
	if (m[0] != 0x30 || ber_elem(m, len, &h) != len || len < h + 3 || m[h] != 0x02)
		goto bad;
	idlen = m[h + 1];
	if (idlen < 1 || idlen > 4 || h + 2 + idlen >= len)
		goto bad;
	for (size_t i = 0; i < idlen; i++)
		msgid = msgid << 8 | m[h + 2 + i];
	op = m + h + 2 + idlen;
	oplen = ber_elem(op, len - (size_t)(op - m), &oh);
	if (oplen == 0 || oplen == (size_t)-1)
		goto bad;
	slot = msgid % DEPTH_MAX;
	if (op[0] == 0x64) { /* SearchResultEntry */
		c->got[slot]++;
		return 0;
	}
	if (op[0] != 0x65 || oplen < oh + 3 || op[oh] != 0x0a) /* SearchResultDone */
		goto bad;
	if (!c->inflight)
		goto bad;
	if (c->st == C_BANNER) {
		c->st = C_READY;
	} else if (c->st == C_RUN && !stopping) {
		uint64_t lat = now_ns() - c->sent_at[slot];

		hist[hist_idx(lat)]++;
		done_n++;
		/* resultCode success (0) and exactly the one entry */
		if (op[oh + 2] != 0 || c->got[slot] != 1)
			err_n++;
	}
	c->inflight--;
	return 1;
bad:
	fprintf(stderr, "loadgen: unexpected LDAP message (%zu bytes)\n", len);
	c->st = C_DEAD;
	err_n++;
	return 0;
}

/* Complete LDAP messages in the read buffer; returns the requests ended and
 * the bytes used in *@p used. */
static unsigned on_ldap_bytes(struct conn *c, size_t *used)
{
	unsigned finals = 0;
	size_t off = 0;

	while (c->st != C_DEAD) {
		size_t h, n = ber_elem((const uint8_t *)c->rbuf + off, c->rlen - off, &h);

		if (n == (size_t)-1 || n > RBUF) {
			fprintf(stderr, "loadgen: LDAP message too long or malformed\n");
			c->st = C_DEAD;
			err_n++;
			break;
		}
		if (n == 0 || n > c->rlen - off)
			break;
		finals += (unsigned)on_ldap_message(c, (const uint8_t *)c->rbuf + off, n);
		off += n;
	}
	*used = off;
	return finals;
}

/* One complete reply line; returns 1 when it was a final line. */
static int on_line(struct conn *c, const char *l, size_t n)
{
	int code;

	if (n < 4 || l[0] < '0' || l[0] > '9' || (l[3] != ' ' && l[3] != '-')) {
		c->st = C_DEAD;
		err_n++;
		return 0;
	}
	if (l[3] == '-')
		return 0;
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	switch (c->st) {
	case C_BANNER:
		if (code != 220)
			goto bad;
		send_all(c, "EHLO loadgen.test\r\n", 19);
		if (c->st != C_DEAD)
			c->st = C_EHLO;
		return 1;
	case C_EHLO:
		if (code != 250)
			goto bad;
		c->st = C_READY;
		return 1;
	case C_RUN:
		if (!c->inflight)
			goto bad;
		if (!stopping) {
			uint64_t lat = now_ns() - c->sent_at[c->head];

			hist[hist_idx(lat)]++;
			done_n++;
			if (code != 250)
				err_n++;
		}
		c->head = (c->head + 1) % DEPTH_MAX;
		c->inflight--;
		return 1;
	default:
		return 1;
	}
bad:
	fprintf(stderr, "loadgen: unexpected reply: %.*s\n", (int)n, l);
	c->st = C_DEAD;
	err_n++;
	return 0;
}

/* Read what is there, handle complete lines; returns the number of final lines. */
static unsigned on_readable(struct conn *c)
{
	unsigned finals = 0;

	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
		size_t start = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return finals;
		if (n <= 0) {
			if (c->st != C_DEAD && !stopping)
				err_n++;
			c->st = C_DEAD;
			return finals;
		}
		c->rlen += (size_t)n;
		if (opt.ldap_base) {
			finals += on_ldap_bytes(c, &start);
			if (c->st == C_DEAD)
				return finals;
			memmove(c->rbuf, c->rbuf + start, c->rlen - start);
			c->rlen -= start;
			continue;
		}
		for (size_t i = 0; i < c->rlen && c->st != C_DEAD; i++) {
			if (c->rbuf[i] != '\n')
				continue;
			size_t len = i + 1 - start;

			if (len >= 2 && c->rbuf[i - 1] == '\r')
				len--;
			finals += (unsigned)on_line(c, c->rbuf + start, len - 1);
			start = i + 1;
		}
		if (c->st == C_DEAD)
			return finals;
		if (start == 0 && c->rlen == RBUF) {
			fprintf(stderr, "loadgen: reply line over %d bytes\n", RBUF);
			c->st = C_DEAD;
			err_n++;
			return finals;
		}
		memmove(c->rbuf, c->rbuf + start, c->rlen - start);
		c->rlen -= start;
	}
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Blocking: EHLO and one CERT, then read until their two final reply lines.
 * @return 1 when the CERT was answered 250. */
static int wait_cert(int fd)
{
	char cmd[400], b[8192];
	size_t len = 0, start = 0;
	int n, finals = 0;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = snprintf(cmd, sizeof cmd, "EHLO loadgen.test\r\nCERT ");
	n += snprintf(cmd + n, sizeof cmd - (size_t)n, opt.pattern, 0);
#pragma GCC diagnostic pop
	n += snprintf(cmd + n, sizeof cmd - (size_t)n, "\r\n");
	if (n <= 0 || (size_t)n >= sizeof cmd || write(fd, cmd, (size_t)n) != n)
		return 0;
	while (len < sizeof b) {
		ssize_t r = read(fd, b + len, sizeof b - len);

		if (r <= 0)
			return 0;
		len += (size_t)r;
		for (size_t i = start; i < len; i++) {
			if (b[i] != '\n')
				continue;
			if (i - start >= 4 && b[start + 3] == ' ' && ++finals == 2)
				return !memcmp(b + start, "250", 3);
			start = i + 1;
		}
	}
	return 0;
}

static int wait_mode(void)
{
	uint64_t end = now_ns() + (uint64_t)opt.duration * 1000000000u;
	struct timespec pause = { 0, 2000000 }, ts;

	while (now_ns() < end) {
		int fd = connect_one();
		char b[512];

		if (fd >= 0 && opt.ldap_base) {
			/* LDAP servers send nothing first: a connection is the sign */
			clock_gettime(CLOCK_REALTIME, &ts);
			close(fd);
			printf("%llu\n", (unsigned long long)ts.tv_sec * 1000000000ull +
						 (unsigned long long)ts.tv_nsec);
			return 0;
		}
		if (fd >= 0) {
			ssize_t n = read(fd, b, sizeof b); /* blocking: the banner */
			int ok = n >= 4 && !memcmp(b, "220", 3) && wait_cert(fd);

			clock_gettime(CLOCK_REALTIME, &ts);
			close(fd);
			if (ok) {
				printf("%llu\n", (unsigned long long)ts.tv_sec * 1000000000ull +
							 (unsigned long long)ts.tv_nsec);
				return 0;
			}
		}
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "loadgen: no CERT answered within %d s\n", opt.duration);
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen -p PORT [-h IPV4] [-c CONNS] [-P DEPTH] [-d SECONDS]\n"
			"               [-n REQUESTS] [-a PATTERN] [-r RANGE] [-L BASE] [-I | -W]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct conn *cs;
	struct epoll_event ev, *evs;
	uint64_t t0, end, t1;
	int ep, o, ready = 0, alive;

	while ((o = getopt(argc, argv, "h:p:c:P:d:n:a:r:L:IW")) != -1) {
		switch (o) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = (int)bench_arg_long("loadgen", optarg, 1, 65535, "port"); break;
		case 'c': opt.conns = (int)bench_arg_long("loadgen", optarg, 1, 100000, "connections"); break;
		case 'P': opt.depth = (int)bench_arg_long("loadgen", optarg, 1, DEPTH_MAX, "depth"); break;
		case 'd': opt.duration = (int)bench_arg_long("loadgen", optarg, 1, 600, "duration"); break;
		case 'n': opt.limit = bench_arg_long("loadgen", optarg, 1, 1000000000L, "requests"); break;
		case 'a': opt.pattern = optarg; break;
		case 'r': opt.range = bench_arg_long("loadgen", optarg, 1, 1000000000L, "range"); break;
		case 'L':
			/* a search request is built in a fixed 600-octet buffer */
			if (strlen(optarg) > 200)
				usage();
			opt.ldap_base = optarg;
			break;
		case 'I': opt.mode = 'I'; break;
		case 'W': opt.mode = 'W'; break;
		default: usage();
		}
	}
	if (!opt.port || !pattern_ok(opt.pattern))
		usage();
	if (opt.mode == 'W')
		return wait_mode();
	raise_nofile();
	cs = calloc((size_t)opt.conns, sizeof *cs);
	evs = calloc((size_t)opt.conns, sizeof *evs);
	ep = epoll_create1(0);
	if (!cs || !evs || ep < 0)
		die("setup");
	end = now_ns() + (uint64_t)opt.duration * 1000000000u;
	for (int i = 0; i < opt.conns; i++) {
		cs[i].fd = connect_one();
		if (cs[i].fd < 0)
			die("connect");
		if (fcntl(cs[i].fd, F_SETFL, O_NONBLOCK) != 0)
			die("fcntl");
		ev.events = EPOLLIN;
		ev.data.ptr = &cs[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
			die("epoll_ctl");
		if (opt.ldap_base)
			send_ldap(&cs[i], 1); /* answered like a banner + EHLO */
	}
	/* Handshakes first, so the measured window holds CERT traffic only. */
	alive = opt.conns;
	while (ready < alive && now_ns() < end) {
		int n = epoll_wait(ep, evs, opt.conns, 100);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			on_readable(c);
			if (c->st == C_READY) {
				c->st = C_RUN;
				ready++;
			} else if (c->st == C_DEAD) {
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				alive--;
			}
		}
	}
	if (ready < opt.conns)
		fprintf(stderr, "loadgen: %d of %d connections ready\n", ready, opt.conns);
	if (opt.mode == 'I') {
		struct timespec rest = { 0, 100000000 };

		printf("ready %d\n", ready);
		fflush(stdout);
		while (now_ns() < end)
			nanosleep(&rest, NULL);
		for (int i = 0; i < opt.conns; i++)
			close(cs[i].fd);
		free(cs);
		free(evs);
		return ready == opt.conns ? 0 : 1;
	}
	t0 = now_ns();
	end = t0 + (uint64_t)opt.duration * 1000000000u;
	for (int i = 0; i < opt.conns; i++)
		if (cs[i].st == C_RUN)
			(opt.ldap_base ? send_ldap : send_certs)(&cs[i], (unsigned)opt.depth);
	for (;;) {
		int n;

		t1 = now_ns();
		if (t1 >= end || (opt.limit && (long)done_n >= opt.limit))
			break;
		n = epoll_wait(ep, evs, opt.conns, 50);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			unsigned f = on_readable(c);

			if (c->st == C_DEAD) {
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				lost_n += c->inflight;
				c->inflight = 0;
				continue;
			}
			if (f)
				(opt.ldap_base ? send_ldap : send_certs)(c, f);
		}
	}
	t1 = now_ns();
	stopping = 1;
	printf("conns=%d depth=%d requests=%llu errors=%llu rps=%.0f p50_us=%.1f p99_us=%.1f "
	       "max_us=%.1f\n", opt.conns, opt.depth, (unsigned long long)done_n,
	       (unsigned long long)(err_n + lost_n),
	       (double)done_n / ((double)(t1 - t0) / 1e9), (double)hist_pct(0.50) / 1e3,
	       (double)hist_pct(0.99) / 1e3, (double)hist_pct(1.0) / 1e3);
	for (int i = 0; i < opt.conns; i++)
		close(cs[i].fd);
	free(cs);
	free(evs);
	return 0;
}
