/*
 * session.h - the SMTP session: one explicit state machine per connection,
 * independent of sockets and of libevent, so that tests and the fuzz target can
 * drive it with plain byte strings.
 *
 * The connection (conn.c) feeds complete command lines in and transmits what the
 * session queued in `out`; after each line it looks at the state to learn whether
 * to stop reading (STARTTLS, CLOSING) or to discard the rest of the input.
 * The mail transaction (MAIL/RCPT/DATA) lives in its own struct, separate from
 * the session (STYLE.md), NULL outside a transaction.
 */
#ifndef SMTPCERTD_SESSION_H
#define SMTPCERTD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <smtpcert/smtpcert.h>

struct runtime;

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF. */
#define SESSION_LINE_MAX 512
/* Replies waiting to be sent: new commands are not read while more than
 * SESSION_OUT_HIGH bytes are queued (backpressure), and one reply may add at most
 * SESSION_OUT_MAX - SESSION_OUT_HIGH (CERS: up to SC_CHAIN_MAX PEM certificates). */
#define SESSION_OUT_HIGH (32 * 1024)
#define SESSION_OUT_MAX (512 * 1024)

enum session_state {
	SESSION_CONNECTED, /**< banner sent; HELO/EHLO expected (also after STARTTLS) */
	SESSION_READY,     /**< greeted: CERT/CERS/CERC accepted */
	SESSION_STARTTLS,  /**< "220 Ready to start TLS" queued: no more plaintext input */
	SESSION_AUTH,      /**< AUTH "334" sent: the next line is a response (cmd_auth.c) */
	SESSION_AUTH_WAIT, /**< AUTH credentials being verified / failure delay: no input */
	SESSION_CLOSING,   /**< 221/421 queued: close once it is sent */
	SESSION_UPLOAD,    /**< CERC "354" sent: reading the certificate (upload.c) */
	SESSION_SUBMIT,    /**< upload complete, its worker job runs: no input is read */
	SESSION_DATA,      /**< mail DATA "354" sent (or BDAT chunk): reading the message */
	SESSION_DELIVER,   /**< message complete, its delivery job runs: no input is read */
	SESSION_PROXY_WAIT,/**< proxy mode: a command went to the backend, its reply is
			    *  awaited: no input is read (pipelining order kept) */
	SESSION_PROXY_DATA,/**< proxy mode: message data streams to the backend */
	SESSION_CERT_WAIT, /**< CERT/CERS answer delayed (harvest.c): no input is read */
	SESSION_LOOKUP     /**< CERT/CERS walk runs on a worker (remote store,
			    *  cert_job.h): no input is read (pipelining order) */
};

/** The mail transaction, reset by RSET/HELO/EHLO (RFC 5321 4.1.1.5). */
struct transaction;
/** A CERC submission in progress (cmd_cerc.c). */
struct cerc;
/** The backend connection in proxy mode (proxy.c). */
struct proxy;
/** A CERT/CERS answer waiting for its harvest delay (harvest.c). */
struct harvest;
/** A CERT/CERS lookup running on a worker thread (cert_job.c). */
struct cert_job;

struct session {
	enum session_state state;
	struct runtime *rt;        /**< referenced: the runtime the session started with */
	sc_buf *out;               /**< queued replies; NULL while empty (lazy) */
	struct transaction *tx;    /**< the mail transaction; NULL outside one */
	struct auth_dialog *auth;  /**< AUTH dialogue or verification running (cmd_auth.c) */
	/** RFC 4954: the authenticated identity as the source spells it ("" = none);
	 *  kept across RSET/EHLO, gone with the connection */
	char auth_user[SC_ADDR_KEY_MAX];
	struct cerc *cerc;         /**< CERC accepted (250) until its end; NULL otherwise */
	/** set by the connection: a worker job finished, process input again */
	void (*wake)(struct session *s);
	/** set by whoever enters UPLOAD, DATA or PROXY_DATA: takes the raw input
	 *  bytes of that state (session_upload_input()) */
	void (*bulk_input)(struct session *s, sc_buf *in);
	/** proxy mode (proxy.c): the backend connection, NULL otherwise */
	struct proxy *proxy;
	unsigned errors;           /**< failed commands (RFC 5321 4.2 5yz replies) */
	unsigned long commands;
	unsigned tls_active : 1;
	unsigned discard_input : 1; /**< set by a command that ends a pipeline group */
	unsigned out_failed : 1;    /**< a reply did not fit or no memory: close */
	const char *close_reason;   /**< why CLOSING was entered, for the disconnect line */
	/* result of the current command, for the log line */
	int last_code;
	char last_status[12];
	char id[24];               /**< session=ID in every log line */
	char peer[64];             /**< client=ADDR:PORT */
	unsigned peer_loopback : 1; /**< peer is 127/8 or ::1 (parsed once, for the limits) */
	/** the client socket, for its addresses (proxy.c: XCLIENT, PROXY v2);
	 *  -1 when there is none (tests) */
	int fd;
	/* mail reception (cmd_mail.c, received.c, bdat.c): what the Received
	 * field (RFC 5321 4.4) says about the client, kept across RSET */
	char helo[128];            /**< HELO/EHLO argument, printable ASCII ("" = none) */
	char tls_version[16];      /**< "TLSv1.3" once TLS is up (set by conn_io.c) */
	char tls_cipher[64];       /**< "TLS_AES_256_GCM_SHA384" */
	unsigned ehlo : 1;         /**< greeted with EHLO (not HELO) */
	unsigned long messages;    /**< messages begun in this session (ids) */
	/** octets of a refused BDAT chunk still to read and drop (RFC 3030 3:
	 *  the chunk follows its command whatever the reply) */
	uint64_t bdat_discard;
	/* harvest protection (harvest.c): not-found CERT/CERS answers so far, and
	 * the delayed answer pending in SESSION_CERT_WAIT (NULL otherwise) */
	unsigned cert_misses;
	struct harvest *harvest;
	/** the lookup in flight in SESSION_LOOKUP (cert_job.c), NULL otherwise */
	struct cert_job *lookup;
};

/** Set up @p s (zeroed by the caller) with a reference to @p rt. */
void session_init(struct session *s, struct runtime *rt, const char *peer, const char *id);
/** Release the runtime and the output buffer. */
void session_fini(struct session *s);

/** Queue the banner (RFC 5321 4.2: 220 greeting). */
void session_greet(struct session *s);

/** Change state, logging "old -> new" at debug level. */
void session_enter(struct session *s, enum session_state next);
const char *session_state_name(enum session_state st);

/** Handle one command line (without its CRLF; may contain any byte). */
void session_line(struct session *s, const char *line, size_t len);

/** The line being read exceeded SESSION_LINE_MAX (RFC 5321 4.5.3.1.4). */
void session_line_too_long(struct session *s);

/** Idle timeout (RFC 5321 4.5.3.2.7): queue 421 4.4.2 and enter CLOSING. */
void session_timeout(struct session *s);

/** Server shutdown: queue 421 4.3.2 and enter CLOSING. */
void session_shutdown(struct session *s);

/** The TLS handshake finished: forget everything learnt before (RFC 3207 4.2). */
void session_tls_done(struct session *s);

/** Count a failed command; at max_errors queue 421 4.7.0 and enter CLOSING. */
void session_count_error(struct session *s);

/** @return bytes queued for the client. */
size_t session_out_len(const struct session *s);

/** Longest input line (CRLF included) the session takes in its state:
 *  SESSION_LINE_MAX, or CMD_AUTH_LINE_MAX inside an AUTH dialogue (RFC 4954 4). */
size_t session_line_max(const struct session *s);

/** @return non-zero in a state that reads raw bytes, not command lines
 *  (UPLOAD, DATA, PROXY_DATA). */
int session_takes_bulk(const struct session *s);

/** @return non-zero while the server, not the client, owes the next step: a
 *  worker job (AUTH_WAIT, SUBMIT, DELIVER, LOOKUP), a harvest delay (CERT_WAIT)
 *  or the proxy's backend (PROXY_WAIT). The idle timeout does not apply then
 *  (RFC 5321 4.5.3.2.7 times out a client that sends nothing); each of these
 *  waits has its own bound, and session_timeout bounds them all. */
int session_awaits_server(const struct session *s);

/**
 * In a bulk state: hand @p in to s->bulk_input (CERC certificate text,
 * cmd_cerc.c; mail data; proxied data). When the data ends the handler replies
 * or enters the next state (SUBMIT, DELIVER, ...).
 */
void session_upload_input(struct session *s, sc_buf *in);

#endif
