/*
 * smtpcert/policy.h - the acceptance policy for submitted certificates (CERC) and
 * `smtpcert check`: one function gives the verdict both the daemon and the CLI print.
 *
 * A submitted certificate is accepted only when (docs/protocol.md, "Acceptance
 * policy"): it parses; one of its email addresses (rfc822Name, SmtpUTF8Mailbox, or
 * subject emailAddress) equals the submitted address; that address's domain is
 * served; it is valid now and not on a CRL; keyUsage, when present, permits
 * encryption (keyEncipherment for RSA, keyAgreement for EC); extKeyUsage, when
 * present, includes emailProtection (1.3.6.1.5.5.7.3.4) or anyExtendedKeyUsage;
 * the key is RSA >= 2048 bits or EC on P-256 or larger; and, when anchors are
 * configured (submission_ca_file), the chain verifies to one of them.
 */
#ifndef SMTPCERT_POLICY_H
#define SMTPCERT_POLICY_H

#include <stddef.h>
#include <time.h>
#include "status.h"
#include "addr.h"
#include "cert.h"
#include "crl.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sc_policy {
	const sc_config *cfg;     /**< domains / gateway_domains (NULL: any domain) */
	const sc_crlset *crls;    /**< may be NULL */
	const char *ca_file;      /**< submission_ca_file anchors, or NULL */
	time_t now;
};

/**
 * Judge @p c as a submission for @p addr.
 * @return SC_OK (acceptable) or SC_ERR_POLICY with a short lower-case reason for
 *         the reply "550 5.7.1 Invalid Certificate: <reason>" in @p reason,
 *         e.g. "email address does not match", "expired", "revoked",
 *         "keyUsage does not permit encryption", "RSA key too small (1024 bits)".
 */
SC_MUST_CHECK sc_status sc_policy_check(const struct sc_policy *p, const sc_cert *c,
					const struct sc_addr *addr, char *reason,
					size_t reasonlen);

/** Public key description of the leaf: "RSA-3072", "EC-P-256", "Ed25519", ... */
void sc_cert_key_desc(const sc_cert *c, char *buf, size_t size);

/**
 * RFC 4262 SMIMECapabilities (1.2.840.113549.1.9.15) of the leaf as a
 * comma-separated list of dotted OIDs (or short names where OpenSSL knows them).
 * @return SC_OK, SC_ERR_NOT_FOUND when the extension is absent, SC_ERR_SYNTAX when
 *         it does not decode.
 */
SC_MUST_CHECK sc_status sc_cert_smime_caps(const sc_cert *c, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
