/*
 * process.h - process-level set-up of smtpcertd: file descriptor limit,
 * daemonizing, dropping root privileges. Daemon process, before the event loop.
 */
#ifndef SMTPCERTD_PROCESS_H
#define SMTPCERTD_PROCESS_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

/** Raise the RLIMIT_NOFILE soft limit to the hard limit. @return the new soft
 *  limit (or the old one when it could not be raised). */
long process_raise_nofile(void);

/** fork, setsid, chdir /, stdio to /dev/null; the parent exits 0.
 *  @return SC_OK in the child, SC_ERR_IO with errno set otherwise. */
SC_MUST_CHECK sc_status process_daemonize(void);

/**
 * When running as root, become @p user (initgroups, setgid, setuid) and verify
 * that root cannot be regained. Not root: nothing happens (*@p dropped = 0).
 * @return SC_OK; SC_ERR_CONFIG (unknown user) or SC_ERR_PERM with a message.
 */
SC_MUST_CHECK sc_status process_drop_privileges(const char *user, int *dropped, char *err,
						size_t errlen);

#endif
