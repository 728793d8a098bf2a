/*
 * errmsg.c - sc_fail() and sc_fail_ossl() (lib/errmsg.h): fill a caller's error
 * buffer and pass the status through. Used by the lib/ modules that report
 * failures as text.
 */
#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

#include "errmsg.h"

static void errmsg_vformat(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
}

void sc_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_vformat(err, errlen, fmt, ap);
	va_end(ap);
}

sc_status sc_fail(char *err, size_t errlen, sc_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_vformat(err, errlen, fmt, ap);
	va_end(ap);
	return st;
}

sc_status sc_fail_ossl(char *err, size_t errlen, sc_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_vformat(err, errlen, fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return st;
}
