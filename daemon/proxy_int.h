/*
 * proxy_int.h - what proxy.c (relaying, data, failures) and proxy_greet.c
 * (connecting and greeting the backend, the EHLO reply) share: the
 * session's struct proxy and the functions each calls in the other. Daemon
 * process, event loop only; not for other modules (they use proxy.h).
 */
#ifndef SMTPCERTD_PROXY_INT_H
#define SMTPCERTD_PROXY_INT_H

#include <stddef.h>
#include <time.h>
#include <smtpcert/smtpcert.h>

#include "commands.h"
#include "proxy_conn.h"
#include "proxy_data.h"
#include "proxy_hdr.h"
#include "session.h"

/* The backend's EHLO keywords we keep for the merge (Postfix sends ~200 octets). */
#define PROXY_CAPS_MAX 2048
#define PROXY_CAPS_KW 32
/* How long the backend's EHLO keywords learnt by one session answer the EHLO
 * of others without a backend connection (proxy.h: connect lazily). */
#define PROXY_CAPS_TTL 300

enum proxy_phase {
	PX_IDLE, PX_BANNER, PX_EHLO1, PX_XCLIENT, PX_HELLO,
	PX_CMD, PX_DATA_GO, PX_DATA, PX_DATA_END, PX_BDAT, PX_BDAT_END
};
enum proxy_goal { PG_GREET, PG_CMD };
enum proxy_kind { PK_OTHER, PK_MAIL, PK_RSET, PK_DATA, PK_BDAT };

struct proxy {
	struct session *s;
	struct proxy_conn pc;
	enum proxy_phase phase;
	enum proxy_goal goal;
	enum proxy_kind kind;
	char line[SESSION_LINE_MAX + 1];   /**< the command waiting or in flight */
	size_t linelen;
	char verb[4 * COMMAND_VERB_MAX + 8];
	struct timespec t0;
	char helo[SESSION_LINE_MAX];       /**< the client's HELO/EHLO argument */
	size_t helolen;
	char login_sent[SC_ADDR_KEY_MAX];  /**< LOGIN the backend was told */
	unsigned xoffered;                 /**< XCLIENT attributes the backend offers */
	size_t xstep;                      /**< the next XCLIENT line to send */
	struct proxy_dot dot;
	unsigned long long bdat_left;
	sc_status lost;                    /**< why the connection went away */
	unsigned esmtp : 1;                /**< the client said EHLO */
	unsigned in_tx : 1;                /**< the backend accepted MAIL */
	unsigned broken : 1;               /**< the backend failed during data */
	unsigned bdat_last : 1;
	unsigned drop : 1;                 /**< the BDAT chunk was refused here: read, drop */
};

/* the backend connection's callbacks (proxy.c) */
extern const struct proxy_conn_ops proxy_ops;

/* proxy.c */
/** The reply is queued: log the request, count a 5xx, enter @p next, wake. */
void proxy_done(struct proxy *p, enum session_state next);
/** The backend failed (its connection is closed): the reply the phase needs. */
void proxy_fail(struct proxy *p, sc_status why, const char *detail);
/** Send p->line, the command that waited for the greeting. */
void proxy_send_cmd(struct proxy *p);

/* proxy_greet.c */
/** Send one command line and expect its reply in phase @p next. */
void proxy_send(struct proxy *p, const char *line, size_t len, enum proxy_phase next);
/** Connect (and send the PROXY v2 header): phase BANNER. */
void proxy_open(struct proxy *p);
/** On an open connection: XCLIENT (when offered) then the client's HELO/EHLO. */
void proxy_hello_step(struct proxy *p);
/** XCLIENT with the current attributes (LOGIN after AUTH), then HELO/EHLO. */
void proxy_send_xclient(struct proxy *p);
/** Our HELO/EHLO reply, with the cached backend keywords when @p backend
 *  (proxy_caps_cached()), then proxy_done(). */
void proxy_answer_greet(struct proxy *p, int backend);
/** A backend reply in phases BANNER..HELLO. */
void proxy_handshake_reply(struct proxy *p, const struct proxy_reply *r);
/** @return non-zero when some session learnt the keywords of p's backend
 *  less than PROXY_CAPS_TTL ago. */
int proxy_caps_cached(const struct proxy *p);

#endif
