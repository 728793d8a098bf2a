/*
 * queue_int.h - the on-disk form of one review-queue entry (lib/queue_entry.c),
 * internal to libsmtpcert; lib/queue.c moves those files around, the fuzz target
 * fuzz/queue_fuzz.c drives the decoder.
 *
 * An entry file is text an administrator can read with cat:
 *
 *	smtpcert-submission: 1
 *	id: 0123456789abcdef0123456789abcdef
 *	address: alice@example.test
 *	auth-user: alice@example.test
 *	client: 192.0.2.1:40000
 *	received: 2026-11-28T19:00:00Z
 *	fingerprint: <64 hex>
 *	subject: CN=Alice
 *	issuer: CN=Test CA
 *	not-before: 2026-11-28T18:00:00Z
 *	not-after: 2026-12-28T18:00:00Z
 *	decided: 2026-11-28T20:00:00Z       (only once decided)
 *	reason: not our CA                   (only when given)
 *	<empty line>
 *	-----BEGIN CERTIFICATE-----          (leaf, then the chain, RFC 7468)
 *
 * Values are UTF-8; '\' and control octets are written as "\\" and "\xHH" (and only
 * those: any other escape is refused, so each entry has one encoding). Lines end
 * in LF. Every key appears at most once; unknown keys are refused.
 */
#ifndef SC_QUEUE_INT_H
#define SC_QUEUE_INT_H

#include <stddef.h>
#include "smtpcert/smtpcert.h"

/** Longest header (everything before the empty line). */
#define SC_QUEUE_HEADER_MAX (8 * 1024)
/** Longest entry file: header + PEM of at most SC_CERT_INPUT_MAX octets of DER. */
#define SC_QUEUE_ENTRY_MAX (SC_QUEUE_HEADER_MAX + 2 * SC_CERT_INPUT_MAX)

/**
 * Encode @p s (id, metadata, decided/reason when set) and the certificates of @p c
 * (leaf first) into a new malloc'ed buffer *@p out of *@p len octets.
 * @return SC_OK, SC_ERR_NOMEM, SC_ERR_TOO_LONG, SC_ERR_ARG (invalid id).
 */
SC_MUST_CHECK sc_status sc_queue_entry_encode(const struct sc_submission *s, const sc_cert *c,
					      char **out, size_t *len);

/**
 * Encode only the header of @p s, the empty line included, into @p buf (at most
 * SC_QUEUE_HEADER_MAX octets are used; not NUL-terminated). A decision rewrites
 * the header and keeps the body as it is.
 * @return SC_OK, SC_ERR_TOO_LONG, SC_ERR_ENCODING (a field is not UTF-8),
 *         SC_ERR_ARG (invalid id or fingerprint).
 */
SC_MUST_CHECK sc_status sc_queue_entry_header(const struct sc_submission *s, char *buf,
					      size_t size, size_t *len);

/**
 * Decode the header of an entry. @p data need not be NUL-terminated; with
 * @p header_only the body may be missing or cut (list reads only a prefix).
 * s->state is left as SC_SUB_PENDING (the directory says the state).
 * *@p body_off (optional) receives the offset of the PEM text.
 * @return SC_OK, SC_ERR_SYNTAX, SC_ERR_TOO_LONG, SC_ERR_ENCODING.
 */
SC_MUST_CHECK sc_status sc_queue_entry_decode(const char *data, size_t len, int header_only,
					      struct sc_submission *s, size_t *body_off);

/**
 * Parse the PEM body into certificates and check that the leaf's SHA-256 equals
 * @p s->fingerprint (an entry is never served with another certificate than the
 * one its header names).
 * @return SC_OK, SC_ERR_SYNTAX / SC_ERR_ENCODING / SC_ERR_NOT_FOUND (bad body),
 *         SC_ERR_MISMATCH (fingerprint differs), SC_ERR_TOO_LONG, SC_ERR_TOO_MANY.
 */
SC_MUST_CHECK sc_status sc_queue_entry_cert(const struct sc_submission *s, const char *body,
					    size_t len, sc_cert **out);

/**
 * Copy text a peer or an administrator gave into a field of @p size bytes: bytes
 * that are not UTF-8 become '?', truncation never splits a character, the result
 * is NUL-terminated (so the entry always encodes).
 */
void sc_queue_copy_text(char *dst, size_t size, const char *src);

/** Append one audit line to the O_APPEND descriptor @p fd and fsync it
 *  (lib/queue_audit.c; sc_queue_audit() passes the queue's audit.log). */
SC_MUST_CHECK sc_status sc_queue_audit_fd(int fd, const char *actor, const char *action,
					  const char *id, const char *address,
					  const char *detail);

#endif
