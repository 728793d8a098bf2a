/*
 * proxy.h - proxy mode (`delivery = proxy:HOST:PORT`): smtpcertd on port 25
 * in front of an existing MTA. CERT, CERS, CERC, STARTTLS, AUTH, NOOP, HELP
 * and QUIT are answered here; HELO/EHLO are answered here after the backend
 * was greeted (the EHLO reply merges the backend's mail keywords with ours);
 * every other command (MAIL, RCPT, DATA, BDAT, RSET, VRFY, EXPN, unknown
 * verbs) goes to the backend one at a time, in order, and its reply comes
 * back (the session waits in SESSION_PROXY_WAIT). Message data streams to the
 * backend as it arrives (SESSION_PROXY_DATA), never buffered whole, with
 * backpressure. The backend learns the real client through XCLIENT or the
 * PROXY v2 header (`proxy_protocol`). docs/design.md "Proxy mode" has the
 * replies. Daemon process, event loop.
 *
 * When the backend connection opens: at the first relayed command (MAIL,
 * usually), greeted with the client's HELO/EHLO; then it stays open for the
 * session and is opened again when it went away between transactions (an idle
 * timeout of the backend). The EHLO reply needs the backend's keywords: they
 * come from the last backend EHLO of any session (cached PROXY_CAPS_TTL
 * seconds), and only when none is known does the client's EHLO open the
 * connection. So a client that only asks for certificates costs the backend
 * nothing, which matters with process-per-connection MTAs such as Postfix.
 */
#ifndef SMTPCERTD_PROXY_H
#define SMTPCERTD_PROXY_H

#include <stddef.h>

struct session;
struct request;
struct command;

/** @return non-zero when the session's runtime is in proxy mode. */
int proxy_mode(const struct session *s);

/**
 * Whether command_dispatch() hands the command to proxy_command() instead of
 * the table's handler: proxy mode, no CERC pending, and a verb (@p verb,
 * @p vlen; @p cmd its table row or NULL) that is not one of ours.
 */
int proxy_takes(const struct session *s, const struct command *cmd, const char *verb,
		size_t vlen);

/**
 * Relay the command @p line (without CRLF) or, for HELO/EHLO, greet the
 * backend and answer. Called after the table's flag checks when @p rq->cmd is
 * set. Either answers at once (a local refusal) or enters SESSION_PROXY_WAIT
 * and answers, logs and wakes the connection when the backend replied.
 * @return 1 when the reply is pending (proxy.c logs the request), 0 when it
 *         was given now (the dispatcher logs it).
 */
int proxy_command(struct session *s, struct request *rq, const char *verb, size_t vlen,
		  const char *line, size_t len);

/** Session end: close the backend connection (a message in flight is never
 *  completed: the backend discards it). */
void proxy_free(struct session *s);

#endif
