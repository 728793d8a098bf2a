/*
 * proxy_conn.h - the backend connection of proxy mode: one non-blocking TCP
 * connection to `delivery = proxy:HOST:PORT` per client session, on the
 * daemon's libevent loop (a bufferevent). It resolves the host (a numeric
 * address at once; a name on a worker thread, never blocking the loop),
 * connects (to each of its addresses in turn until one answers), sends a preamble (the PROXY v2 header) first, writes command
 * lines and message data, and parses the backend's replies (RFC 5321 4.2)
 * into whole multi-line replies, bounded in size. Every step is under
 * proxy_timeout: a backend that does not answer, or does not read, is an
 * error, never a hang. Daemon process, event loop only.
 */
#ifndef SMTPCERTD_PROXY_CONN_H
#define SMTPCERTD_PROXY_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <netdb.h>
#include <event2/event.h>
#include <smtpcert/smtpcert.h>

/* One backend reply: at most this many octets of lines (CRLF-separated) and
 * this many lines (an EHLO reply has a dozen). Longer is a protocol error. */
#define PROXY_REPLY_MAX 8192
#define PROXY_REPLY_LINES 64
/* A backend reply line longer than this is a protocol error (RFC 5321
 * 4.5.3.1.5 says 512; be lenient). */
#define PROXY_LINE_MAX 2048
/* Message data queued for the backend: the client is not read above HIGH
 * and resumes below LOW (backpressure). */
#define PROXY_OUT_HIGH (256 * 1024)
#define PROXY_OUT_LOW (64 * 1024)

struct proxy_reply {
	int code;
	size_t nlines;
	size_t len;                      /**< octets in text */
	char text[PROXY_REPLY_MAX];      /**< the lines, each ending in "\n" */
	uint16_t off[PROXY_REPLY_LINES]; /**< start of each line in text */
};

struct proxy_conn;

struct proxy_conn_ops {
	/** A complete reply arrived while one was expected. */
	void (*reply)(void *arg, const struct proxy_reply *r);
	/** The connection failed: SC_ERR_TIMEOUT, SC_ERR_TEMP (refused,
	 *  unreachable, resolution failed), SC_EOF (closed), SC_ERR_PROTOCOL.
	 *  The connection is closed already. */
	void (*error)(void *arg, sc_status why, const char *detail);
	/** Queued output fell to PROXY_OUT_LOW. */
	void (*drained)(void *arg);
};

struct proxy_conn {
	struct bufferevent *bev;
	struct proxy_resolve *job;   /**< name resolution in flight */
	const struct proxy_conn_ops *ops;
	void *arg;
	struct event_base *base;
	long timeout;                /**< seconds */
	uint8_t pre[64];             /**< preamble sent before anything else */
	size_t prelen;
	struct addrinfo *addrs;      /**< the backend's addresses (owned while open) */
	const struct addrinfo *next; /**< tried when connecting to the current one fails */
	struct proxy_reply *cur;     /**< the reply being read; allocated while open
				      *  (an idle session keeps no 8 KiB buffer) */
	unsigned expecting : 1;      /**< a reply is due */
	unsigned open : 1;           /**< resolving, connecting or connected */
	unsigned connected : 1;      /**< the TCP connection is up */
};

/**
 * Start connecting @p pc to @p host : @p port; @p pre (may be NULL) is sent
 * first. The backend's greeting is the first expected reply.
 * @return SC_OK (the outcome comes through ops); SC_ERR_ARG; SC_ERR_NOMEM;
 *         SC_ERR_TEMP (no event loop or worker pool).
 */
SC_MUST_CHECK sc_status proxy_conn_open(struct proxy_conn *pc, const char *host, const char *port,
					long timeout, const uint8_t *pre, size_t prelen,
					const struct proxy_conn_ops *ops, void *arg);

/** Queue @p len octets for the backend. @return SC_OK; SC_ERR_NOMEM; SC_ERR_IO
 *  (not open). */
SC_MUST_CHECK sc_status proxy_conn_write(struct proxy_conn *pc, const void *data, size_t len);

/** Queue one command line (CRLF added) and expect its reply. */
SC_MUST_CHECK sc_status proxy_conn_command(struct proxy_conn *pc, const char *line, size_t len);

/** A reply is due (after a command or the data's final "."): arm the timeout. */
void proxy_conn_expect(struct proxy_conn *pc);

/** Octets queued for the backend. */
size_t proxy_conn_pending(const struct proxy_conn *pc);

/** Best effort "QUIT" then close; never calls ops. Safe on a closed one. */
void proxy_conn_close(struct proxy_conn *pc, int say_quit);

/** The event base and worker pool the connections use (worker_default()). */
struct event_base *proxy_conn_base(void);

#endif
