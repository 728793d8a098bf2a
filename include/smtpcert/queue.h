/*
 * smtpcert/queue.h - the durable review queue of CERC submissions under state_dir,
 * shared by the daemon (adds) and `smtpcert admin` (lists, accepts, rejects) while
 * both run; or, when `repository` holds a pgsql: database, in that database's
 * submissions and audit tables, shared by every node (sc_queue_open_ex(); the
 * same calls and statuses, docs/scaling.md). What follows describes the
 * directory form.
 *
 * Layout: STATE/submissions/{pending,accepted,rejected}/<id>; each entry is written
 * to a temporary file, fsync'ed, renamed into place and the directory fsync'ed, so a
 * 250 reply means the submission survives kill -9 and power loss. A decision is a
 * rename between directories (atomic). Every action is appended to STATE/audit.log
 * (one line: ISO time, actor, action, id, address, detail). IDs are 128-bit random
 * hex (getrandom), unique and unguessable.
 */
#ifndef SMTPCERT_QUEUE_H
#define SMTPCERT_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "addr.h"
#include "cert.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SC_QUEUE_ID_LEN 32
/** Most entries sc_queue_list() delivers (SC_ERR_TOO_MANY after them). */
#define SC_QUEUE_LIST_MAX 10000

enum sc_submission_state { SC_SUB_PENDING, SC_SUB_ACCEPTED, SC_SUB_REJECTED };

/** Metadata of a submission (plain value; the certificate is read separately). */
struct sc_submission {
	char id[SC_QUEUE_ID_LEN + 1];
	enum sc_submission_state state;
	char address[SC_ADDR_KEY_MAX];  /**< lookup key of the submitted address */
	char auth_user[SC_ADDR_KEY_MAX];/**< authenticated identity that submitted */
	char client[64];                /**< client address:port */
	int64_t received;               /**< epoch seconds */
	int64_t decided;                /**< 0 while pending */
	char fingerprint[65];           /**< SHA-256 hex of the leaf */
	char subject[256];
	char issuer[256];
	int64_t not_before, not_after;
	char reason[256];               /**< rejection reason, or "" */
};

typedef struct sc_queue sc_queue;

/** @return non-zero when @p id is exactly SC_QUEUE_ID_LEN lower-case hex digits (the
 *  only ids the queue creates or accepts; checked before any path is built). */
int sc_queue_id_valid(const char *id);

/** Open (creating the directories, mode 0700) the queue under @p state_dir. */
SC_MUST_CHECK sc_status sc_queue_open(const char *state_dir, sc_queue **out, char *err,
				      size_t errlen);

/**
 * Open the queue where the configuration puts it: with @p db_spec NULL, the
 * directories under @p state_dir (sc_queue_open()); with a "pgsql:CONNINFO"
 * spec, the submissions and audit tables of that PostgreSQL database
 * (lib/pgsql_db.h), so that every daemon and admin sharing the database shares
 * one queue: a submission taken by one node can be decided on any other. The
 * same calls, ids, states and audit actions work on both; sc_queue_add() is
 * durable when it returns SC_OK in both (a committed transaction).
 * @return as sc_queue_open(); SC_ERR_TEMP when the database cannot be reached;
 *         SC_ERR_CONFIG for a spec that is not "pgsql:...".
 */
SC_MUST_CHECK sc_status sc_queue_open_ex(const char *state_dir, const char *db_spec,
					 sc_queue **out, char *err, size_t errlen);

/**
 * sc_queue_open_ex() for a long-running process (the daemon): a pgsql: database
 * that does not answer yet is not an error. The handle connects at its first
 * call, which returns SC_ERR_TEMP until the database answers (CERC meanwhile
 * answers 451 4.3.0), as the pgsql: repository does at start-up. A bad conninfo
 * still fails here; a refused login or a newer schema fails at once when the
 * server answers, else at the first call (SC_ERR_CONFIG).
 */
SC_MUST_CHECK sc_status sc_queue_open_lazy(const char *state_dir, const char *db_spec,
					   sc_queue **out, char *err, size_t errlen);

/** The first "pgsql:" entry of @p cfg's `repository` list, or NULL: where the
 *  queue and audit log live when several nodes share one database. */
const char *sc_queue_db_spec(const sc_config *cfg);
void sc_queue_close(sc_queue *q);

/**
 * Name this node in the audit records of a shared (pgsql:) queue, so that a
 * submission taken by one MX node and decided on another says which did what
 * (the daemon passes its `hostname`). Default: gethostname(). Cut to 255 bytes;
 * the directory form ignores it (its audit.log belongs to one node).
 */
void sc_queue_set_node(sc_queue *q, const char *node);

/** Message callback: @p msg is NUL-terminated and valid only during the call. */
typedef void (*sc_queue_warn_fn)(void *arg, const char *msg);

/**
 * Report problems that do not fail the operation: an entry file that does not
 * decode (skipped by sc_queue_list), a file that is not a submission, an audit
 * line that could not be written. Without a callback they are skipped silently.
 */
void sc_queue_set_warn(sc_queue *q, sc_queue_warn_fn fn, void *arg);

/**
 * Durably add a pending submission (leaf + chain as given). On SC_OK *@p out holds
 * the new entry's metadata (its id among them) and the data is on disk.
 * @p auth_user and @p client (like a decision's reason) are stored as UTF-8 text:
 * invalid bytes become '?', values too long for their field are cut at a character
 * boundary. Appends a "submit" audit line (actor = @p auth_user).
 */
SC_MUST_CHECK sc_status sc_queue_add(sc_queue *q, const sc_cert *c, const struct sc_addr *addr,
				     const char *auth_user, const char *client,
				     struct sc_submission *out);

/**
 * Read one submission (pending, accepted or rejected); *@p cert (optional) receives
 * the certificate (caller frees).
 * @return SC_OK, SC_ERR_SYNTAX (@p id is not 32 lower-case hex digits),
 *         SC_ERR_NOT_FOUND, or the decoder's status for a damaged entry file
 *         (SC_ERR_SYNTAX, SC_ERR_ENCODING, SC_ERR_TOO_LONG, SC_ERR_MISMATCH).
 */
SC_MUST_CHECK sc_status sc_queue_get(sc_queue *q, const char *id, struct sc_submission *out,
				     sc_cert **cert);

typedef sc_status (*sc_queue_fn)(void *arg, const struct sc_submission *s);

/**
 * Every submission in @p state, oldest first (by received time). Entries that do not
 * decode are skipped and reported through the warn callback.
 * @return SC_OK; SC_ERR_TOO_MANY when the directory holds more than
 *         SC_QUEUE_LIST_MAX files, after delivering the entries among the first
 *         SC_QUEUE_LIST_MAX found (the scan stops there so the work is bounded;
 *         they are sorted but not necessarily the oldest);
 *         or the callback's status (which stops the walk).
 */
SC_MUST_CHECK sc_status sc_queue_list(sc_queue *q, enum sc_submission_state state,
				      sc_queue_fn fn, void *arg);

/**
 * Record a decision on a pending submission (atomic rename + audit line).
 * @param actor who decided ("admin:root", "auto")
 * @return SC_OK, SC_ERR_NOT_FOUND (unknown id), SC_ERR_EXISTS (already decided),
 *         SC_ERR_SYNTAX (@p id is not 32 lower-case hex digits), SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sc_queue_decide(sc_queue *q, const char *id, int accept,
					const char *reason, const char *actor);

/** Append one line to the audit log (fsync'ed). */
SC_MUST_CHECK sc_status sc_queue_audit(sc_queue *q, const char *actor, const char *action,
				       const char *id, const char *address, const char *detail);

#ifdef __cplusplus
}
#endif
#endif
