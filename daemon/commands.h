/*
 * commands.h - the SMTP command table and its dispatcher.
 *
 * Protocol rules are data: each row is {verb, handler, flags, usage}; the
 * dispatcher applies the flags (greeting required, argument required or
 * forbidden, end of a pipeline group) before the handler runs, so handlers only
 * do their own work. Splitting and lookup are pure functions for the unit tests
 * and the fuzz target.
 */
#ifndef SMTPCERTD_COMMANDS_H
#define SMTPCERTD_COMMANDS_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

struct session;

enum command_flags {
	/* RFC 5321 4.1.4: a session opens with EHLO or HELO; CERT & co. need one
	 * (docs/design.md: answered 503 5.5.1 before it). */
	CMD_NEEDS_GREETING = 1u << 0,
	/* RFC 5321 4.1.1.1 (HELO/EHLO domain), proposal: CERT/CERS/CERC address. */
	CMD_TAKES_ARG = 1u << 1,
	/* RFC 5321 4.1.1.5 (RSET), 4.1.1.10 (QUIT), RFC 3207 4 (STARTTLS): no parameters. */
	CMD_NO_ARG = 1u << 2,
	/* RFC 2920 3.1: QUIT (and STARTTLS, RFC 3207 4.2) must be the last command of
	 * a pipelined group; whatever follows it in the input is discarded, so that
	 * plaintext sent after STARTTLS is never executed inside TLS (CVE-2011-0411). */
	CMD_ENDS_PIPELINE_GROUP = 1u << 3,
	/* the argument is an address: log its lookup key (addr=) */
	CMD_LOGS_ADDR = 1u << 4,
	/* allowed while a CERC waits for its DATA (docs/protocol.md): like a mail
	 * transaction (RFC 5321 4.1.4), only DATA, RSET, NOOP, HELP, QUIT and
	 * HELO/EHLO; anything else is 503 5.5.1 and the CERC stays pending */
	CMD_IN_CERC = 1u << 5,
	/* RFC 5321 4.1.1.5 / 4.1.4: RSET, HELO and EHLO cancel a pending CERC */
	CMD_ENDS_CERC = 1u << 6
};

/** A table row's verb and its length (struct command). */
#define COMMAND_VERB(v) v, sizeof(v) - 1

/** Longest verb we know; longer words are unknown commands. */
#define COMMAND_VERB_MAX 8

/** One parsed request, alive for the duration of the dispatch. */
struct request {
	const struct command *cmd;
	const char *arg;      /**< argument, trimmed, not NUL-terminated; NULL when none */
	size_t arglen;
	char logaddr[SC_ADDR_KEY_MAX]; /**< addr= field of the log line ("" = none) */
};

typedef void (*command_fn)(struct session *s, struct request *rq);

struct command {
	const char *verb;    /**< upper case, A-Z only (command_lookup()) */
	size_t verb_len;
	command_fn fn;
	unsigned flags;
	const char *usage; /**< for "501 5.5.4 Syntax: <usage>" */
};

/** A line split into verb and argument (views into the line). */
struct command_line {
	const char *verb;
	size_t verb_len;
	const char *arg; /**< NULL when absent or only blanks */
	size_t arg_len;
};

/**
 * Split @p line at the first space: verb, then the argument with surrounding
 * spaces and tabs removed.
 * @return SC_OK; SC_ERR_SYNTAX for an empty line or one containing NUL
 *         (docs/design.md: NUL makes the command a syntax error).
 */
SC_MUST_CHECK sc_status command_split(const char *line, size_t len, struct command_line *out);

/** Case-insensitive lookup (RFC 5321 2.4). @return the row or NULL. */
const struct command *command_lookup(const char *verb, size_t len);

/** Row @p i of the command table, NULL past its end (for the tests, which
 *  check that every verb is A-Z, as command_lookup() requires). */
const struct command *command_row(size_t i);

/** Parse, check flags, run the handler, count errors, log the request line. */
void command_dispatch(struct session *s, const char *line, size_t len);

/* handlers: cmd_basic.c */
void cmd_helo(struct session *s, struct request *rq);
void cmd_ehlo(struct session *s, struct request *rq);
void cmd_noop(struct session *s, struct request *rq);
void cmd_rset(struct session *s, struct request *rq);
void cmd_help(struct session *s, struct request *rq);
void cmd_quit(struct session *s, struct request *rq);
void cmd_starttls(struct session *s, struct request *rq);
void cmd_not_implemented(struct session *s, struct request *rq);
/* handlers: cmd_cert.c */
void cmd_cert(struct session *s, struct request *rq);
void cmd_cers(struct session *s, struct request *rq);
/** Parse a CERT/CERS/CERC argument and check its domain (cmd_cert.c).
 *  @return 0 when a reply was given. */
int cert_address(struct session *s, struct request *rq, struct sc_addr *a);
/* handlers: cmd_cerc.c */
void cmd_cerc(struct session *s, struct request *rq);
void cmd_data(struct session *s, struct request *rq);
/** Cancel a pending CERC (RSET, HELO, EHLO). */
void cerc_reset(struct session *s);
/** Session end: free the upload; a job in flight finishes without the session. */
void cerc_free(struct session *s);
/** SESSION_UPLOAD input (session_upload_input()). */
void cerc_upload_input(struct session *s, sc_buf *in);
/* handlers: mail reception (cmd_mail.c, mail_data.c, bdat.c; transaction.h) */
void cmd_mail(struct session *s, struct request *rq);
void cmd_rcpt(struct session *s, struct request *rq);
void cmd_bdat(struct session *s, struct request *rq);
/** DATA: the CERC upload when a CERC is pending (cmd_data), else mail. */
void cmd_data_route(struct session *s, struct request *rq);

#endif
