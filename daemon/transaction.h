/*
 * transaction.h - the mail transaction (RFC 5321 3.3): reverse path, MAIL
 * parameters, recipients, and the data phase's spool file and reader. It is
 * separate from the session (STYLE.md): s->tx is NULL outside a transaction,
 * created by MAIL, freed by RSET, HELO, EHLO, STARTTLS (RFC 5321 4.1.1.5,
 * 4.1.4; RFC 3207 4.2) and at the end of each message.
 *
 * The modules of mail reception, all daemon process, event loop:
 *   cmd_mail.c     MAIL and RCPT (parameters, local recipients, relay denial)
 *   mail_data.c    DATA (the non-CERC one), the spool and Received field, the
 *                  end-of-message checks shared with BDAT
 *   bdat.c         BDAT (RFC 3030 CHUNKING)
 *   data.c         the byte-level reader (dot-unstuffing, smuggling defence)
 *   received.c     the Received field
 *   deliver_job.c  the certificate lookups (encryption at rest) and the
 *                  worker job that calls delivery_run() (delivery.h), then the reply
 *   rcpt_local.c   the `recipients` file and passwd: users
 * Proxy mode (proxy.c) replaces MAIL/RCPT/DATA/BDAT and uses none of these.
 */
#ifndef SMTPCERTD_TRANSACTION_H
#define SMTPCERTD_TRANSACTION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <smtpcert/smtpcert.h>

#include "data.h"

struct session;
struct deliver_job;

/** One accepted RCPT TO. */
struct tx_rcpt {
	struct sc_addr addr;           /**< canonical form (parsed back from key) */
	char key[SC_ADDR_KEY_MAX];     /**< lookup key: repository, logs, dedup */
	/* For encryption at rest the recipient's certificate is looked up when
	 * the message is complete (deliver_job.c), so a certificate revoked
	 * while the data arrived is never used; the job owns that copy. */
};

struct transaction {
	struct sc_addr from;           /**< reverse-path; unset when null_sender */
	char from_key[SC_ADDR_KEY_MAX];/**< "" for the null reverse-path "<>" */
	struct tx_rcpt *rcpt;
	size_t nrcpt, cap;
	uint64_t size_param;           /**< MAIL ... SIZE= (RFC 1870), 0 = not given */
	unsigned null_sender : 1;
	unsigned body_8bit : 1;        /**< BODY=8BITMIME (RFC 6152) */
	unsigned smtputf8 : 1;         /**< SMTPUTF8 (RFC 6531) */
	unsigned bdat : 1;             /**< BDAT used: DATA refused (RFC 3030 3) */
	/* data phase */
	int spool_fd;                  /**< -1 until DATA/the first BDAT */
	struct data_reader *data;      /**< heap: its write buffer is 16 KiB */
	uint64_t chunk_left;           /**< BDAT: octets of this chunk still to come */
	unsigned chunk_last : 1;       /**< BDAT ... LAST */
	char id[40];                   /**< message id: session id "." number */
	struct timespec t0;            /**< MAIL, for the message's us= */
	struct deliver_job *job;       /**< in flight (SESSION_DELIVER) */
};

/** MAIL: a new transaction in s->tx (none may exist). @return SC_OK, SC_ERR_NOMEM. */
SC_MUST_CHECK sc_status transaction_begin(struct session *s);

/** RSET, HELO, EHLO, STARTTLS, end of message: forget the transaction. */
void transaction_reset(struct session *s);

/** Session end: a delivery in flight finishes without the session. */
void transaction_free(struct session *s);

/**
 * Add a recipient (its lookup key @p key, already checked).
 * @return SC_OK; SC_ERR_EXISTS (already there: accepted once, RFC 5321 3.3
 *         lets a server ignore duplicates); SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status transaction_add_rcpt(struct transaction *tx, const char *key);

/* cmd_mail.c */
/** Is mail received here (delivery maildir: or lmtp:)? Replies 502 when not. */
int mail_enabled(struct session *s);

/* mail_data.c */
/** DATA for mail (commands.c routes a DATA without pending CERC here). */
void mail_data_cmd(struct session *s);
/** Open the spool and write the Received field. @return 0 when a reply was given. */
int mail_data_open(struct session *s, enum data_mode mode);
/** The message is complete (end marker, BDAT LAST): refuse or deliver. */
void mail_data_end(struct session *s);
/** Log a message that ended without delivery: one line, grep-able. */
void mail_log_message(const struct session *s, int code, const char *status,
		      const char *outcome, const char *why);

#endif
