/*
 * status.c - sc_strerror() and status categories; the library version.
 * Pure functions, no state: used by every process.
 */
#include "smtpcert/smtpcert.h"

const char *smtpcert_version(void)
{
	return SMTPCERT_VERSION_STRING;
}

unsigned smtpcert_version_number(void)
{
	return SMTPCERT_VERSION_NUMBER;
}

static const char unknown_status[] = "unknown status";

const char *sc_strerror(int status)
{
	switch (status) {
	case SC_OK: return "success";
	case SC_AGAIN: return "more input needed";
	case SC_WANT_READ: return "waiting to read";
	case SC_WANT_WRITE: return "waiting to write";
	case SC_EOF: return "end of stream";
	case SC_ERR_SYNTAX: return "syntax error";
	case SC_ERR_TOO_LONG: return "input too long";
	case SC_ERR_TOO_MANY: return "too many items";
	case SC_ERR_UNSUPPORTED: return "not supported";
	case SC_ERR_ENCODING: return "invalid encoding";
	case SC_ERR_NOT_FOUND: return "not found";
	case SC_ERR_EXISTS: return "already exists";
	case SC_ERR_EXPIRED: return "certificate expired";
	case SC_ERR_NOT_YET_VALID: return "certificate not yet valid";
	case SC_ERR_REVOKED: return "certificate revoked";
	case SC_ERR_FOREIGN_DOMAIN: return "domain not served here";
	case SC_ERR_MISMATCH: return "does not match";
	case SC_ERR_POLICY: return "refused by policy";
	case SC_ERR_TEMP: return "temporarily unavailable";
	case SC_ERR_IO: return "input/output error";
	case SC_ERR_NETWORK: return "network error";
	case SC_ERR_TIMEOUT: return "timed out";
	case SC_ERR_NOMEM: return "out of memory";
	case SC_ERR_TLS: return "TLS error";
	case SC_ERR_VERIFY: return "peer certificate verification failed";
	case SC_ERR_CRYPTO: return "cryptographic operation failed";
	case SC_ERR_PERM: return "permission denied";
	case SC_ERR_AUTH: return "wrong or missing passphrase, PIN or credentials";
	case SC_ERR_CHANGED: return "certificate changed since it was last seen";
	case SC_ERR_PROTOCOL: return "protocol error";
	case SC_ERR_REJECTED: return "rejected by peer";
	case SC_ERR_CONFIG: return "configuration error";
	case SC_ERR_ARG: return "invalid argument";
	case SC_ERR_INTERNAL: return "internal error";
	}
	return unknown_status;
}

enum sc_status_category sc_status_category(int status)
{
	if (status == SC_OK)
		return SC_CAT_OK;
	if (sc_strerror(status) == unknown_status)
		return SC_CAT_UNKNOWN;
	switch (status / 100) {
	case 0: return SC_CAT_FLOW;
	case 1: return SC_CAT_INPUT;
	case 2: return SC_CAT_LOOKUP;
	case 3: return SC_CAT_TEMP;
	case 4: return SC_CAT_SECURITY;
	case 5: return SC_CAT_PROTOCOL;
	case 6: return SC_CAT_LOCAL;
	}
	return SC_CAT_UNKNOWN;
}

int sc_status_is_temporary(int status)
{
	return sc_status_category(status) == SC_CAT_TEMP;
}
