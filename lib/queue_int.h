/*
 * queue_int.h - internals of the review queue, in libsmtpcert: the backend vtable
 * behind include/smtpcert/queue.h (lib/queue.c is the common front, lib/queue_dir.c
 * the directories under state_dir, lib/queue_pgsql.c the PostgreSQL tables), and
 * the on-disk form of one directory entry (lib/queue_entry.c; the fuzz target
 * fuzz/queue_fuzz.c drives its decoder).
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

/** @return non-zero when the @p n bytes at @p s are lower-case hex digits. */
int sc_queue_lower_hex(const char *s, size_t n);

/** Keep @p c (parsed from an entry's or a row's certificate) only when its
 *  SHA-256 is @p s->fingerprint: *@p out = @p c, else @p c is freed and the
 *  result is SC_ERR_MISMATCH. Takes @p c either way. */
SC_MUST_CHECK sc_status sc_queue_cert_match(const struct sc_submission *s, sc_cert *c,
					    sc_cert **out);

/** Append one audit line to the O_APPEND descriptor @p fd and fsync it
 *  (lib/queue_audit.c; sc_queue_audit() passes the queue's audit.log). */
SC_MUST_CHECK sc_status sc_queue_audit_fd(int fd, const char *actor, const char *action,
					  const char *id, const char *address,
					  const char *detail);

/* ---- backends (lib/queue.c dispatches; every call has valid arguments) ---- */

/**
 * One backend. The front (lib/queue.c) validates ids and arguments, builds the
 * metadata of a new submission (cleaned text, fingerprint, subject) and leaves
 * to the backend only what differs: where entries live, how a decision is
 * claimed, where audit records go. Each backend writes its own audit records
 * for add and decide (the PostgreSQL one in the same transaction).
 */
struct sc_queue_ops {
	/** Store @p s (every field but id set, state pending) durably under a new id
	 *  from sc_queue_new_id() written into s->id; audit "submit". */
	sc_status (*add)(sc_queue *q, struct sc_submission *s, const sc_cert *c);
	sc_status (*get)(sc_queue *q, const char *id, struct sc_submission *out,
			 sc_cert **cert);
	sc_status (*list)(sc_queue *q, enum sc_submission_state state, sc_queue_fn fn,
			  void *arg);
	/** Claim and record; SC_ERR_EXISTS when decided already, audit on SC_OK. */
	sc_status (*decide)(sc_queue *q, const char *id, int accept, const char *reason,
			    const char *actor);
	sc_status (*audit)(sc_queue *q, const char *actor, const char *action, const char *id,
			   const char *address, const char *detail);
	void (*close)(sc_queue *q);
};

/** The common part, first member of every backend's handle. */
struct sc_queue {
	const struct sc_queue_ops *ops;
	sc_queue_warn_fn warn;
	void *warn_arg;
	char node[256];   /* sc_queue_set_node(), for the shared audit table */
};

/** A new random id (128 bits from getrandom, hex). @return SC_OK, SC_ERR_INTERNAL. */
SC_MUST_CHECK sc_status sc_queue_new_id(char id[SC_QUEUE_ID_LEN + 1]);

/** Report through the queue's warn callback, if any. */
void sc_queue_warnf(sc_queue *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** The directory backend (lib/queue_dir.c): arguments as sc_queue_open(). */
SC_MUST_CHECK sc_status sc_queue_dir_open(const char *state_dir, sc_queue **out, char *err,
					  size_t errlen);

/** The PostgreSQL backend (lib/queue_pgsql.c); @p conninfo follows "pgsql:";
 *  @p lazy as sc_queue_open_lazy(). */
SC_MUST_CHECK sc_status sc_queue_pg_open(const char *conninfo, int lazy, sc_queue **out,
					 char *err, size_t errlen);

#endif
