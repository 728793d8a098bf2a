/*
 * cmd_auth.h - the AUTH command (RFC 4954) and its dialogue: the session-side
 * state of one authentication, from "AUTH mech" to 235/535/454.
 */
#ifndef SMTPCERTD_CMD_AUTH_H
#define SMTPCERTD_CMD_AUTH_H

#include <stddef.h>

struct session;
struct request;

/* RFC 4954 4: a response line may be 12288 octets, plus CRLF. */
#define CMD_AUTH_LINE_MAX (12288 + 2)
/* Bound on one verification (Dovecot round trip or a slow hash). */
#define CMD_AUTH_TIMEOUT_MS 10000

/** Handler of the AUTH row of the command table. */
void cmd_auth(struct session *s, struct request *rq);

/** In SESSION_AUTH: one response line of the dialogue (without CRLF). */
void cmd_auth_line(struct session *s, const char *line, size_t len);

/** In SESSION_AUTH: the response line exceeded CMD_AUTH_LINE_MAX. */
void cmd_auth_line_too_long(struct session *s);

/** Session end: cancel a verification in flight (its result is dropped) and
 *  a pending failure delay. */
void cmd_auth_free(struct session *s);

#endif
