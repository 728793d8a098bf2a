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
#include <stdint.h>
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
 * reject. @p config_path is put into those commands (-c). Lines end in CRLF;
 * values that reach a header are reduced to printable ASCII (no CR/LF injection
 * from a certificate subject or an AUTH identity) and non-ASCII Subject text is
 * sent as RFC 2047 encoded-words. Date and Message-ID derive from s->received
 * (s->decided for an automatic acceptance), so formatting again gives the same
 * message. *@p out is NUL-terminated.
 * @return SC_OK, SC_ERR_TOO_LONG when @p size is too small.
 */
SC_MUST_CHECK sc_status sc_notice_format(const struct sc_submission *s, const char *hostname,
					 const char *postmaster, const char *config_path,
					 char *out, size_t size, size_t *len);

/**
 * Format the decision notice to the submitter (notify_submitter = yes) for @p s,
 * which must be accepted or rejected: To: the submitted address, Reply-To: @p
 * postmaster, Subject "Your certificate for ADDRESS was accepted|rejected", body
 * with id, fingerprint, subject, times and the rejection reason. Header values are
 * sanitised as in sc_notice_format().
 * @return SC_OK, SC_ERR_ARG (still pending), SC_ERR_TOO_LONG when @p size is too
 *         small.
 */
SC_MUST_CHECK sc_status sc_notice_format_decision(const struct sc_submission *s,
						  const char *hostname, const char *postmaster,
						  char *out, size_t size, size_t *len);

/**
 * Deliver @p msg to @p rcpt through a maildir template ("maildir:/base/%d/%n"):
 * %u is the lookup key (user@domain), %n its local part, %d its domain, %% a '%'.
 * An expanded value that is empty, contains '/' or starts with '.' is refused (no
 * path traversal). The Maildir and its parents are created (mode 0700) on demand;
 * the message is stored with LF line ends (CRLF in @p msg becomes LF), the local
 * format Maildir readers expect. @p err (optional) receives a message.
 * @return SC_OK once on disk (file and new/ fsync'ed), SC_ERR_CONFIG (not a
 *         maildir:/absolute template, unknown %-variable), SC_ERR_SYNTAX (unsafe
 *         expansion), SC_ERR_TOO_LONG (path), SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sc_maildir_deliver(const char *delivery, const struct sc_addr *rcpt,
					   const char *msg, size_t len, char *err, size_t errlen);

/**
 * sc_maildir_deliver() for a message in a file: @p size octets read from @p fd
 * with pread() from offset 0 (the file position is neither used nor moved, so
 * one descriptor serves many recipients), streamed (memory does not grow with
 * @p size), CRLF stored as LF. Statuses as sc_maildir_deliver(); a file shorter
 * than @p size is SC_ERR_IO (nothing is delivered).
 */
SC_MUST_CHECK sc_status sc_maildir_deliver_fd(const char *delivery, const struct sc_addr *rcpt,
					      int fd, uint64_t size, char *err, size_t errlen);

/**
 * Writes a message's content to @p out_fd (the new tmp/ file, positioned at 0),
 * in the form it is to be stored (LF line ends). @return SC_OK, or a status
 * (with a message in @p err) that makes the delivery fail.
 */
typedef sc_status (*sc_maildir_writer)(int out_fd, void *arg, char *err, size_t errlen);

/**
 * The general form: as sc_maildir_deliver(), with the content produced by
 * @p writer (called once per attempt with @p arg), e.g. an S/MIME encryption
 * streaming into the Maildir. When @p writer fails, its tmp/ file is removed and
 * its status returned: nothing reaches new/.
 */
SC_MUST_CHECK sc_status sc_maildir_deliver_with(const char *delivery, const struct sc_addr *rcpt,
						sc_maildir_writer writer, void *arg, char *err,
						size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
