/*
 * errmsg.h - private to lib/: sc_fail() and sc_errf(), the one way a lib/ module writes a
 * failure message into a caller's (err, errlen) buffer and returns the status in
 * the same statement. Not installed.
 */
#ifndef SC_ERRMSG_H
#define SC_ERRMSG_H

#include <stddef.h>

#include "smtpcert/status.h"

/**
 * Write the printf-style message into @p err (truncated to @p errlen, always
 * NUL-terminated; nothing is written when @p err is NULL or @p errlen is 0).
 * @return @p st, so that `return sc_fail(err, errlen, SC_ERR_DATA, "...")` reads
 * as one step.
 */
sc_status sc_fail(char *err, size_t errlen, sc_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** The message alone, for callers that decide the status elsewhere. */
void sc_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/**
 * sc_fail(), then drop OpenSSL's queued errors: for modules whose message already
 * says what went wrong, so that no stale entry is reported by a later caller.
 */
sc_status sc_fail_ossl(char *err, size_t errlen, sc_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
