/*
 * conn.h - one client connection: socket, transport (plain or TLS), bounded
 * input buffer, libevent registrations, idle timer, and the session it carries.
 *
 * conn.c owns the lifecycle (accept, list of live connections, close, deferred
 * free, shutdown); conn_io.c moves bytes (read, process lines, flush, TLS
 * handshake) in one step function called by every event.
 *
 * Memory per idle plaintext connection (64-bit, libevent 2.1): struct conn 984
 * bytes including the session (sizeof, x86-64, git c8813f5: the abuse limits
 * added 32; pages of its char arrays that are never written may stay
 * unresident), three struct event of ~0.13 KiB each, and no
 * buffers: the input buffer exists only while it holds a partial line and the
 * output buffer only while replies are queued. So roughly 0.8 KiB plus the
 * kernel's socket buffers (measured: 3000 idle sessions after EHLO + CERT add
 * about 2.1 MiB of RSS, ~0.7 KiB each); an idle TLS session measured ~6 KiB
 * (OpenSSL's per-session state).
 */
#ifndef SMTPCERTD_CONN_H
#define SMTPCERTD_CONN_H

#include <stddef.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <smtpcert/smtpcert.h>

#include "input.h"
#include "session.h"
#include "transport.h"

struct runtime;

/* After the last reply (221, 421) the socket is half-closed and input is read and
 * dropped for up to this long before close(): closing a socket with unread input
 * makes the kernel send RST, which can destroy the reply before the client reads it. */
#define CONN_LINGER_SECONDS 2

/* Unprocessed input held per connection: a few pipelined command lines.
 * (Before authentication; AUTH may raise it in a later issue.) */
#define CONN_IN_MAX 4096

struct conn {
	struct transport tr;
	struct session s;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_timer;
	sc_buf *in;                 /**< NULL while empty (lazy) */
	struct input_state inp;     /**< line reader state (input.c) */
	struct conn *prev, *next;   /**< live list, or the free list once closed */
	const char *close_reason;
	sc_status read_want;        /**< what the last read waits for (TLS may want write) */
	sc_status write_want;       /**< what the last write waits for */
	sc_status hs_want;          /**< handshake: SC_WANT_READ or SC_WANT_WRITE */
	size_t out_peak;            /**< largest output backlog since the buffer was made */
	unsigned closed : 1;        /**< closed; freed by the reaper after this event */
	unsigned handshaking : 1;
	unsigned eof : 1;           /**< the peer closed its side */
	unsigned stopping : 1;      /**< server shutdown: 421 once the current reply is out */
	unsigned lingering : 1;     /**< final reply sent, FIN sent, discarding input */
	unsigned anvil_counted : 1; /**< counted by anvil_connect(): uncount at close */
	unsigned batched : 1;       /**< read, waiting in conn_batch.c for its answers */
	unsigned drained : 1;       /**< the batched read emptied the socket (conn_step) */
	/* conn_limits.c (monotonic seconds): session start, and when the first
	 * byte of the command line still incomplete arrived (0 = none) */
	long started;
	long line_start;
};

/** Set up the connection layer on @p base. */
SC_MUST_CHECK sc_status conn_module_init(struct event_base *base);
void conn_module_fini(void);

/** Take over an accepted, non-blocking socket. */
void conn_accept(int fd, const struct sockaddr *sa, socklen_t salen);

/** Connections open now. */
size_t conn_count(void);

/** SIGTERM: idle sessions get 421 4.3.2 and close at once, busy ones after their
 *  current reply; @p done runs when the last connection is gone. */
void conn_shutdown_all(void (*done)(void));

/** Close every connection now (the shutdown deadline passed). */
void conn_close_all(void);
/** At the end of the drain: queue "421 4.3.2" (session_shutdown) and try one
 *  non-blocking write of what is queued, so a client still waiting (a lookup in
 *  flight, a slow reader) learns why the connection ends. */
void conn_goodbye(struct conn *c);

/* internal to conn.c / conn_io.c */
void conn_close(struct conn *c, const char *reason);
void conn_linger(struct conn *c, const char *reason);
void conn_linger_event(struct conn *c, short what);
void conn_update_events(struct conn *c);
void conn_arm_timer(struct conn *c);
void conn_step(struct conn *c);
/* conn_step() after a read that emptied the socket (@p drained): no second read */
void conn_step_read(struct conn *c, int drained);
void conn_event_cb(evutil_socket_t fd, short what, void *arg);
/* conn_batch.c: the commands of all connections that became readable together
 * are read first and answered after, so that their lookups' memory misses
 * overlap (sc_repo_prefetch()) */
SC_MUST_CHECK sc_status conn_batch_init(struct event_base *base);
void conn_batch_fini(void);
/* @return 1 when @p c (just read, with complete lines) waits in the batch */
int conn_batch_add(struct conn *c, int drained);
/* @p c closes: out of the batch */
void conn_batch_forget(struct conn *c);
/* conn_limits.c: per-IP admission, command and session timeouts */
struct conn *conn_first(void);
SC_MUST_CHECK sc_status conn_limits_init(struct event_base *base);
void conn_limits_fini(void);
long conn_limits_now(void);
/** Per-IP limits (anvil.c) for a new connection from @p peer. @return 0 when it
 *  may not connect now (why in *@p why), 1 when admitted, 2 when admitted and
 *  counted (anvil_disconnect() at close: conn->anvil_counted). */
int conn_limits_admit(const struct runtime *rt, const char *peer, const char **why);

#endif
