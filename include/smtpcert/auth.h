/*
 * smtpcert/auth.h - verifying SMTP AUTH credentials (RFC 4954) against the
 * configured source. Blocking and thread-safe: smtpcertd calls it from a worker
 * thread, never on the event loop.
 *   passwd:/path    lines "user@domain:crypt-hash" (yescrypt, sha512-crypt, bcrypt:
 *                   whatever libcrypt's crypt_r understands); re-read when it changes.
 *   dovecot:/path   Dovecot's authentication protocol (v1.1) over its UNIX socket
 *                   (the auth-client listener), mechanism PLAIN.
 */
#ifndef SMTPCERT_AUTH_H
#define SMTPCERT_AUTH_H

#include <stddef.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sc_auth sc_auth;

/** Open the source named by @p spec. @return SC_OK, SC_ERR_CONFIG (bad spec). */
SC_MUST_CHECK sc_status sc_auth_open(const char *spec, sc_auth **out, char *err, size_t errlen);
void sc_auth_close(sc_auth *a);

/**
 * Check @p user / @p password (both NUL-terminated UTF-8).
 * @param remote_ip client address for the backend's own policies (may be NULL)
 * @param timeout_ms bound on the whole exchange
 * @return SC_OK (valid), SC_ERR_REJECTED (wrong user or password: indistinguishable),
 *         SC_ERR_TEMP / SC_ERR_TIMEOUT / SC_ERR_IO (backend trouble: 454 4.7.0).
 *         On SC_OK the canonical user name (as the source spells it) is written to
 *         @p canon when non-NULL.
 */
SC_MUST_CHECK sc_status sc_auth_verify(sc_auth *a, const char *user, const char *password,
				       const char *remote_ip, int timeout_ms, char *canon,
				       size_t canonlen);

#ifdef __cplusplus
}
#endif
#endif
