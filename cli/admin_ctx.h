/*
 * admin_ctx.h - what the `smtpcert admin` verbs share (cmd_admin.c dispatches;
 * admin_import.c, admin_list.c, admin_remove.c implement one verb each; the
 * review queue verbs live in admin_queue.c and admin_decide.c). Runs in
 * the administrator's process, beside a running daemon.
 */
#ifndef SMTPCERT_ADMIN_CTX_H
#define SMTPCERT_ADMIN_CTX_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"

struct admin_ctx {
	const char *config_path;
	sc_config *cfg;
	sc_crlset *crls; /* the configured crl_file entries (never NULL once loaded) */
	time_t now;
	size_t json_count; /* list --json: objects printed so far, over all stores */
};

/* "smtpcert: admin VERB: ..." on stderr. */
void admin_err(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sc_repo_set_warn() callback: warnings of a store go to stderr. */
void admin_repo_warn(void *arg, const char *msg);

/* ISO 8601 UTC ("2026-11-28T19:00:00Z") of seconds since the epoch. */
void admin_iso_time(int64_t t, char *buf, size_t size);

/* "valid", "expired", "not-yet-valid" or "revoked" for sc_repo_entry_usable(). */
const char *admin_status_word(sc_status usable);

/* @return non-zero for specs this tool can open (lmdb:, dir:); says why not on
 * stderr otherwise, naming @p verb. */
int admin_repo_local(const char *verb, const char *spec);

/* Review queue (admin_queue.c, admin_decide.c). */

/* Open the queue under state_dir, warnings to stderr. @return a CLI exit code. */
int admin_queue_open(struct admin_ctx *ctx, const char *verb, sc_queue **q);

/* sc_queue_get() with the messages an administrator needs. @return a CLI exit code. */
int admin_queue_get(const char *verb, sc_queue *q, const char *id, struct sc_submission *s,
		    sc_cert **cert);

/* The acceptance policy's verdict on @p s now (sc_policy_check); *@p addr receives
 * the parsed address. SC_ERR_SYNTAX when the stored address does not parse. */
sc_status admin_policy_verdict(struct admin_ctx *ctx, const struct sc_submission *s,
			       const sc_cert *c, struct sc_addr *addr, char *reason, size_t size);

/* @p s with control characters replaced by '?'. */
void admin_put_text(FILE *f, const char *s);

int admin_pending(struct admin_ctx *ctx, int argc, char **argv);
int admin_show(struct admin_ctx *ctx, int argc, char **argv);
int admin_accept(struct admin_ctx *ctx, int argc, char **argv);
int admin_reject(struct admin_ctx *ctx, int argc, char **argv);
void admin_pending_usage(FILE *f);
void admin_show_usage(FILE *f);
void admin_accept_usage(FILE *f);
void admin_reject_usage(FILE *f);

int admin_import(struct admin_ctx *ctx, int argc, char **argv);
int admin_list(struct admin_ctx *ctx, int argc, char **argv);
int admin_remove(struct admin_ctx *ctx, int argc, char **argv);

void admin_import_usage(FILE *f);
void admin_list_usage(FILE *f);
void admin_remove_usage(FILE *f);

/* admin_export.c: the files cert_url points at. */
int admin_export(struct admin_ctx *ctx, int argc, char **argv);
void admin_export_usage(FILE *f);

#endif
