/*
 * smtpcert/lookup.h - a recipient's certificate the sender can trust: find the
 * recipient domain's MX hosts (DNSSEC-aware, libunbound), fetch CERT over an
 * authenticated channel (DANE TLSA, RFC 7672, when the MX records validate;
 * else PKIX verification of the MX host's TLS certificate), check what came back
 * (address, validity, usable for encryption), and compare it with what was seen
 * before for the address (trust on first use, like SSH's known_hosts), with a
 * cache so repeated sends do not reconnect.
 *
 * Owner of the sender's trust state: the known-certificates file and the cache
 * directory (both under the user's XDG directories unless given).
 */
#ifndef SMTPCERT_LOOKUP_H
#define SMTPCERT_LOOKUP_H

#include <stddef.h>
#include "status.h"
#include "addr.h"
#include "cert.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How the channel the certificate came over was authenticated. */
enum sc_trust {
	SC_TRUST_INSECURE = 0, /**< --insecure: nothing authenticated (said on stderr) */
	SC_TRUST_TLS_ONLY,     /**< encrypted, server identity not authenticated */
	SC_TRUST_PKIX,         /**< MX host's TLS certificate verified (CA store) */
	SC_TRUST_DANE,         /**< DNSSEC-validated MX and TLSA (RFC 7672) */
	SC_TRUST_CACHE         /**< answered from the cache; see the pin state */
};
const char *sc_trust_name(enum sc_trust t); /* "insecure", "tls-only", "pkix", "dane", "cache" */

/** What the known-certificates store said. */
enum sc_pin {
	SC_PIN_NEW = 0,      /**< first time this address was seen: remembered */
	SC_PIN_SAME,         /**< the remembered certificate */
	SC_PIN_CHANGED_CA,   /**< changed, but the new one chains to a trusted S/MIME CA */
	SC_PIN_ACCEPTED_NEW, /**< changed, accepted because the caller said --accept-new */
	SC_PIN_OFF           /**< no store in use */
};
const char *sc_pin_name(enum sc_pin p);

struct sc_lookup_opts {
	const char *server;       /**< "HOST[:PORT]" to ask; NULL = the domain's MX hosts */
	int chain;                /**< CERS instead of CERT */
	const char *ca_file;      /**< trust anchors for the servers' TLS certificates */
	const char *smime_ca_file;/**< trust anchors for S/MIME certificates (CA rule of
				   *  the pin check); NULL = none */
	int insecure;             /**< no TLS verification, plaintext allowed */
	int accept_new;           /**< accept and remember a changed certificate */
	const char *known_file;   /**< TOFU store; NULL = $XDG_DATA_HOME/smtpcert/known_certs;
				   *  "" = no store */
	const char *cache_dir;    /**< NULL = $XDG_CACHE_HOME/smtpcert; "" = no cache */
	int cache_ttl;            /**< seconds; 0 = 3600 */
	const char *resolver;     /**< "ADDR[@PORT]" to send DNS queries to; NULL = system */
	const char *dnssec_anchor;/**< DNSSEC trust anchor file; NULL = the system's root key */
	int timeout_ms;           /**< per step; 0 = 30000 */
	const char *helo;
	const char *mx_port;      /**< port of the MX hosts (and of their TLSA names,
				   *  _PORT._tcp.HOST); NULL = "25" */
};

struct sc_lookup_result {
	sc_cert *cert;            /**< owned by the caller (sc_cert_free) on SC_OK */
	enum sc_trust trust;
	enum sc_pin pin;
	int dnssec;               /**< the MX answer validated under DNSSEC */
	char server[SC_DOMAIN_MAX + 8]; /**< the host[:port] that answered ("" from cache) */
	char detail[256];         /**< one line for humans: how it was trusted */
};

/**
 * Look up @p addr's certificate as described above.
 * @return SC_OK with @p res filled; SC_ERR_NOT_FOUND (every reachable server
 *         said 550 / the domain has no mail server); SC_ERR_CHANGED (differs
 *         from the remembered one and neither the CA rule nor accept_new applies:
 *         the message names both fingerprints); SC_ERR_MISMATCH (the certificate
 *         is not for @p addr); SC_ERR_EXPIRED / SC_ERR_NOT_YET_VALID;
 *         SC_ERR_UNSUPPORTED (not usable for encryption: key usage, extKeyUsage,
 *         key type; or the server does not offer CERT/CERS); SC_ERR_VERIFY /
 *         SC_ERR_TLS (channel not authenticated: PKIX or DANE failed, STARTTLS
 *         not offered, a DNSSEC-bogus answer); SC_ERR_TEMP / SC_ERR_NETWORK /
 *         SC_ERR_TIMEOUT; SC_ERR_REJECTED / SC_ERR_PROTOCOL (the server refused
 *         or broke the protocol); SC_ERR_CONFIG (resolver or trust anchor
 *         unusable); SC_ERR_ARG (malformed server); SC_ERR_IO (the known-
 *         certificates file cannot be read or written). A message goes to @p err.
 *         Rules and file formats: docs/design.md "Trusting a fetched certificate".
 */
SC_MUST_CHECK sc_status sc_lookup_cert(const struct sc_addr *addr, const struct sc_lookup_opts *o,
				       struct sc_lookup_result *res, char *err, size_t errlen);

/**
 * Check that @p c may be used to encrypt to @p addr at @p now: the address is
 * one of its emails, it is valid, keyUsage (if present) allows keyEncipherment
 * (RSA) or keyAgreement (EC), extKeyUsage (if present) has emailProtection
 * (RFC 8550 4.4). The same checks the lookup makes; `encrypt --cert` uses it.
 * @return SC_OK; SC_ERR_MISMATCH; SC_ERR_EXPIRED; SC_ERR_NOT_YET_VALID;
 *         SC_ERR_UNSUPPORTED. A message goes to @p err.
 */
SC_MUST_CHECK sc_status sc_cert_check_for_encryption(const sc_cert *c, const struct sc_addr *addr,
						     time_t now, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
