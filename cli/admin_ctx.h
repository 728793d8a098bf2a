/*
 * admin_ctx.h - what the `smtpcert admin` verbs share (cmd_admin.c dispatches;
 * admin_import.c, admin_list.c, admin_remove.c implement one verb each). Runs in
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

int admin_import(struct admin_ctx *ctx, int argc, char **argv);
int admin_list(struct admin_ctx *ctx, int argc, char **argv);
int admin_remove(struct admin_ctx *ctx, int argc, char **argv);

void admin_import_usage(FILE *f);
void admin_list_usage(FILE *f);
void admin_remove_usage(FILE *f);

#endif
