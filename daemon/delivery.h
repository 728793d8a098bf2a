/*
 * delivery.h - hand an accepted message to where it is stored: a Maildir per
 * recipient (`delivery = maildir:/path/%d/%n`), an LMTP server (`lmtp:HOST:PORT`,
 * per-recipient replies relayed, RFC 2033), or, for the daemon's own messages
 * (postmaster notices) in proxy mode, the backend MTA over SMTP (`proxy:HOST:PORT`).
 * Encryption at rest (`encrypt_at_rest = yes`) happens here: a recipient that
 * comes with a certificate gets its own copy encrypted to it, unless the
 * message is already encrypted (sc_mime_header_kind()), which is stored as it came.
 *
 * Blocking, with timeouts: runs on a worker thread (worker.h), never on the
 * event loop. Touches no session and no runtime: everything it needs is in its
 * arguments, so a session may go away while a delivery runs.
 */
#ifndef SMTPCERTD_DELIVERY_H
#define SMTPCERTD_DELIVERY_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <smtpcert/smtpcert.h>

/** Reply text kept per recipient (the LMTP server's text, or ours). */
#define DELIVERY_TEXT_MAX 200

struct delivery_rcpt {
	struct sc_addr addr;       /**< the recipient as given in RCPT TO */
	sc_cert *cert;             /**< encrypt this recipient's copy to it; NULL = store
				    *  as received. Owned by the caller. */
	/* results, filled by delivery_run() */
	int code;                  /**< 250 delivered; 4xx try later; 5xx failed */
	char enhanced[12];         /**< RFC 3463 status, e.g. "2.0.0" */
	char text[DELIVERY_TEXT_MAX]; /**< for the reply: no paths, no internals */
	char detail[DELIVERY_TEXT_MAX]; /**< for the log only: why (path, errno, the
					 *  backend's words); "" when delivered */
	unsigned encrypted : 1;    /**< the stored copy was encrypted here */
};

struct delivery_msg {
	int fd;                    /**< the message as received (dot-unstuffed, CRLF line
				    *  ends, our Received field first); read with pread()
				    *  from offset 0, so one fd serves every recipient
				    *  (an encryption rewinds and reads it to its end:
				    *  the file position is not kept). Owned by the
				    *  caller. */
	uint64_t size;             /**< octets in fd */
	char from[SC_ADDR_KEY_MAX];/**< reverse-path (lookup-key form), "" = null sender */
	struct delivery_rcpt *rcpt;
	size_t nrcpt;
	unsigned body_8bit : 1;    /**< MAIL ... BODY=8BITMIME (RFC 6152) */
	unsigned smtputf8 : 1;     /**< MAIL ... SMTPUTF8 (RFC 6531) */
};

/** Settings copied from the runtime when the job is made (the runtime may be
 *  replaced by a reload while the job runs). */
struct delivery_cfg {
	char spec[PATH_MAX];       /**< the `delivery` value */
	char hostname[256];        /**< our name: LHLO/EHLO */
	int timeout_ms;            /**< per network step (LMTP/SMTP); 0 = 60000 */
	char tmp_dir[PATH_MAX];    /**< where encrypted copies for LMTP and notices for
				    *  SMTP are staged (unlinked files); "" = $TMPDIR
				    *  or /tmp */
	unsigned encrypt_at_rest : 1;
};

/**
 * Deliver @p m to each recipient; fills each rcpt's code/enhanced/text.
 * Maildir: per recipient, tmp/ -> fsync -> rename into new/ -> fsync new/
 * (sc_maildir_deliver()'s guarantees) before 250. LMTP: one transaction, the
 * server's per-recipient replies after DATA (RFC 2033 4.2); recipients with a
 * certificate get transactions of their own (their copies differ).
 * @return SC_OK when every recipient has a result (some may be 4xx/5xx);
 *         SC_ERR_CONFIG (unusable spec: every recipient gets 451 4.3.5);
 *         SC_ERR_ARG.
 */
SC_MUST_CHECK sc_status delivery_run(const struct delivery_cfg *cfg, struct delivery_msg *m);

/**
 * Deliver @p len octets at @p msg (a complete RFC 5322 message, CRLF or LF) to
 * one recipient: the daemon's own mail (postmaster notices, notify.c).
 * @return SC_OK (delivered); SC_ERR_TEMP (4xx: try again later); SC_ERR_REJECTED
 *         (5xx); SC_ERR_CONFIG; SC_ERR_IO. A message goes to @p err.
 */
SC_MUST_CHECK sc_status delivery_send_buffer(const struct delivery_cfg *cfg, const char *from,
					     const struct sc_addr *rcpt, const char *msg,
					     size_t len, char *err, size_t errlen);

#endif
