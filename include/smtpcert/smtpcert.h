/*
 * smtpcert/smtpcert.h - libsmtpcert, the library behind smtpcertd and smtpcert.
 *
 * Include this one header. It is the whole contract: the daemon and the CLI use
 * nothing else of the library. Handles are opaque; every function that can fail
 * returns sc_status (see status.h); ownership is documented at each function.
 *
 * Modules:
 *   status.h  status codes, sc_strerror()
 *   buf.h     bounded buffers and the SMTP line reader
 *   base64.h  RFC 4648 base64
 *   addr.h    mailbox parsing and lookup keys (RFC 5321, RFC 6531)
 *   pem.h     RFC 7468 encoding and decoding
 *   cert.h    X.509 intake, email extraction (RFC 5280, RFC 8398, RFC 8550)
 *   crl.h     revocation lists
 *   repo.h    certificate repositories (lmdb:, dir:)
 *   config.h  smtpcertd.conf
 *   reply.h   SMTP reply parser
 *   tls.h     TLS sessions (OpenSSL hidden behind it)
 *   smtp.h    blocking SMTP client (CERT/CERS fetch)
 *   policy.h  acceptance policy for submitted certificates
 *   queue.h   durable review queue of submissions
 *   auth.h    SMTP AUTH credential verification (passwd:, dovecot:)
 *   notice.h  postmaster notices and Maildir delivery
 */
#ifndef SMTPCERT_SMTPCERT_H
#define SMTPCERT_SMTPCERT_H

#define SMTPCERT_VERSION_MAJOR 0
#define SMTPCERT_VERSION_MINOR 1
#define SMTPCERT_VERSION_PATCH 0
#define SMTPCERT_VERSION_STRING "0.1.0"
/** Encoded as 0xMMmmpp for compile-time comparisons. */
#define SMTPCERT_VERSION_NUMBER                                                    \
	((SMTPCERT_VERSION_MAJOR << 16) | (SMTPCERT_VERSION_MINOR << 8) |          \
	 SMTPCERT_VERSION_PATCH)

#include "status.h"
#include "buf.h"
#include "base64.h"
#include "addr.h"
#include "pem.h"
#include "cert.h"
#include "crl.h"
#include "repo.h"
#include "config.h"
#include "reply.h"
#include "tls.h"
#include "smtp.h"
#include "policy.h"
#include "queue.h"
#include "auth.h"
#include "notice.h"
#include "mime.h"
#include "key.h"
#include "smime.h"
#include "lookup.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @return the library's version string at run time (may differ from the header's). */
const char *smtpcert_version(void);

/** @return SMTPCERT_VERSION_NUMBER of the library at run time. */
unsigned smtpcert_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
