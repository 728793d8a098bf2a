/*
 * smtpcert/queue.h - the durable review queue of CERC submissions under state_dir,
 * shared by the daemon (adds) and `smtpcert admin` (lists, accepts, rejects) while
 * both run.
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

#ifdef __cplusplus
extern "C" {
#endif

#define SC_QUEUE_ID_LEN 32

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

/** Open (creating the directories, mode 0700) the queue under @p state_dir. */
SC_MUST_CHECK sc_status sc_queue_open(const char *state_dir, sc_queue **out, char *err,
				      size_t errlen);
void sc_queue_close(sc_queue *q);

/**
 * Durably add a pending submission (leaf + chain as given). On SC_OK *@p out holds
 * the new entry's metadata (its id among them) and the data is on disk.
 */
SC_MUST_CHECK sc_status sc_queue_add(sc_queue *q, const sc_cert *c, const struct sc_addr *addr,
				     const char *auth_user, const char *client,
				     struct sc_submission *out);

/** Read one submission; *@p cert (optional) receives the certificate (caller frees). */
SC_MUST_CHECK sc_status sc_queue_get(sc_queue *q, const char *id, struct sc_submission *out,
				     sc_cert **cert);

typedef sc_status (*sc_queue_fn)(void *arg, const struct sc_submission *s);

/** Every submission in @p state, oldest first. */
SC_MUST_CHECK sc_status sc_queue_list(sc_queue *q, enum sc_submission_state state,
				      sc_queue_fn fn, void *arg);

/**
 * Record a decision on a pending submission (atomic rename + audit line).
 * @param actor who decided ("admin:root", "auto")
 * @return SC_OK, SC_ERR_NOT_FOUND (unknown id), SC_ERR_EXISTS (already decided).
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
