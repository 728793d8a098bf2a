/*
 * smtpcert/notice.h - the postmaster notice of a submission (RFC 5322 message) and
 * Maildir delivery (the `delivery = maildir:/path/%d/%n` key; Dovecot's variables
 * %u user@domain, %n local part, %d domain).
 *
 * Delivery follows the Maildir rules: write tmp/<unique>, fsync, link/rename into
 * new/, fsync the directory; the Maildir (cur/ new/ tmp/) is created on demand.
 */
#ifndef SMTPCERT_NOTICE_H
#define SMTPCERT_NOTICE_H

#include <stddef.h>
#include "status.h"
#include "addr.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Format the notice for @p s into @p out: headers (From: MAILER-DAEMON@hostname,
 * To: postmaster, Subject, Date, Message-ID, MIME-Version, Content-Type text/plain
 * UTF-8) and a body with address, fingerprint, subject, issuer, validity, client,
 * authenticated user, state, and the exact `smtpcert admin` commands to accept or
 * reject. @p config_path is put into those commands (-c).
 * @return SC_OK, SC_ERR_TOO_LONG when @p size is too small.
 */
SC_MUST_CHECK sc_status sc_notice_format(const struct sc_submission *s, const char *hostname,
					 const char *postmaster, const char *config_path,
					 char *out, size_t size, size_t *len);

/**
 * Deliver @p msg to @p rcpt through a maildir template ("maildir:/base/%d/%n").
 * @return SC_OK once on disk, SC_ERR_CONFIG (not a maildir: template), SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sc_maildir_deliver(const char *delivery, const struct sc_addr *rcpt,
					   const char *msg, size_t len, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
