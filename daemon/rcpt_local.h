/*
 * rcpt_local.h - the local recipients that are not implied by a rule: the
 * addresses of the `recipients` file and the users of a `passwd:` auth file,
 * as sorted sets of lookup keys (sc_addr_key) loaded with the runtime and
 * replaced whole by a reload (SIGHUP); the passwd: users are also re-read
 * when that file changes (rcpt_local_refresh()), as the auth source re-reads
 * it, so a user receives mail as soon as it can log in. postmaster and abuse of every served
 * domain are accepted by cmd_mail.c without being listed (RFC 5321 4.5.1,
 * RFC 2142).
 *
 * A `dovecot:` auth source answers passwords only over its auth-client socket;
 * a userdb lookup needs the auth-master socket, which `auth` does not name, so
 * with Dovecot the `recipients` file lists who receives mail (smtpcertd.conf(5)).
 *
 * Daemon process: loaded on the event loop by runtime.c (files opened through
 * the runtime's file hook), read-only afterwards.
 */
#ifndef SMTPCERTD_RCPT_LOCAL_H
#define SMTPCERTD_RCPT_LOCAL_H

#include <stddef.h>
#include <time.h>
#include <smtpcert/smtpcert.h>

/* Bounds on what is read: a larger file is an administrator's mistake. */
#define RCPT_LOCAL_FILE_MAX (64L * 1024 * 1024)
#define RCPT_LOCAL_LINE_MAX 1024

struct rcpt_local;

/**
 * Build the set from the `recipients` file @p recipients (lines: an address,
 * blank lines and '#' comments ignored; every address must be in `domains`)
 * and from the user names of the passwd: file @p passwd ("user@domain:hash";
 * users outside @p cfg's domains are ignored). Either path may be NULL.
 * @p rname / @p pname are the names for messages (the configured paths, when
 * @p recipients / @p passwd are descriptors' /proc paths).
 * @return SC_OK with the set in *@p out (NULL when both paths are NULL);
 *         SC_ERR_IO, SC_ERR_SYNTAX, SC_ERR_TOO_LONG, SC_ERR_NOMEM with
 *         "FILE:LINE: reason" in @p err.
 */
SC_MUST_CHECK sc_status rcpt_local_load(const sc_config *cfg, const char *recipients,
					const char *rname, const char *passwd,
					const char *pname, struct rcpt_local **out,
					char *err, size_t errlen);

void rcpt_local_free(struct rcpt_local *r);

/** @return non-zero when @p key (an sc_addr_key) is in the set; NULL set = none. */
int rcpt_local_has(const struct rcpt_local *r, const char *key);

/** Addresses in the set (a listed user with a password counts twice). */
size_t rcpt_local_count(const struct rcpt_local *r);

/**
 * Re-read the passwd: users when the file changed (inode, size or mtime),
 * looking at most once per second of @p now. Event loop (a small file).
 * @return SC_OK (also when nothing changed or there is no passwd: file);
 *         otherwise the users read before stay and @p err says why.
 */
SC_MUST_CHECK sc_status rcpt_local_refresh(struct rcpt_local *r, time_t now, char *err,
					   size_t errlen);

#endif
