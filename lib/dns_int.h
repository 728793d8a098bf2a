/*
 * dns_int.h - private to the certificate lookup: DNSSEC-aware queries through
 * libunbound (lib/dns.c). Not installed.
 */
#ifndef SMTPCERT_DNS_INT_H
#define SMTPCERT_DNS_INT_H

#include <stddef.h>
#include "smtpcert/smtpcert.h"

/** DNSSEC status of an answer (RFC 4035 4.3). */
enum dns_sec {
	DNS_INSECURE = 0, /* no validation chain (or no trust anchor): usable, not proof */
	DNS_SECURE,       /* validated from a trust anchor */
	DNS_BOGUS         /* validation failed: never used */
};
const char *dns_sec_name(enum dns_sec s);

struct dns_ctx;

/* Text form of an IPv4 or IPv6 address. */
#define DNS_ADDR_MAX 46
#define DNS_ADDRS_MAX 8
#define DNS_TLSA_MAX 16
/* SHA2-512 is 64 octets; a full certificate (matching type 0) may be larger. */
#define DNS_TLSA_DATA_MAX 4096

/** TLSA RRset of one name; data owned (dns_tlsa_free()). */
struct dns_tlsa {
	struct sc_tlsa rr[DNS_TLSA_MAX];
	size_t n;
	char name[SC_DOMAIN_MAX + 16];
};

/*
 * A resolver: forwarding to @p resolver ("ADDR[@PORT]") or the system's;
 * DNSSEC trust anchor file @p anchor (NULL = /usr/share/dns/root.key if present,
 * "" = none). @return SC_OK; SC_ERR_CONFIG (bad resolver or anchor file);
 * SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status dns_open(const char *resolver, const char *anchor, int timeout_ms,
				 struct dns_ctx **out, char *err, size_t errlen);
void dns_close(struct dns_ctx *d);

/*
 * MX hosts of @p domain in the order to try them (RFC 5321 5.1), lower case,
 * without the trailing dot; the domain itself when it has none (implicit MX).
 * @return SC_OK; SC_ERR_NOT_FOUND (no such domain, or a null MX, RFC 7505);
 *         SC_ERR_VERIFY (bogus); SC_ERR_TEMP (SERVFAIL); SC_ERR_TIMEOUT;
 *         SC_ERR_NETWORK.
 */
SC_MUST_CHECK sc_status dns_mx(struct dns_ctx *d, const char *domain,
			       char hosts[][SC_DOMAIN_MAX + 1], size_t max, size_t *n,
			       enum dns_sec *sec, char *err, size_t errlen);

/* A then AAAA addresses of @p host; *@p sec is secure only when both are.
 * @return SC_OK (n > 0); SC_ERR_NOT_FOUND; SC_ERR_VERIFY; others as dns_mx(). */
SC_MUST_CHECK sc_status dns_addrs(struct dns_ctx *d, const char *host,
				  char addrs[][DNS_ADDR_MAX], size_t max, size_t *n,
				  enum dns_sec *sec, char *err, size_t errlen);

/* TLSA records of _PORT._tcp.HOST (RFC 6698 3); none is SC_OK with n = 0.
 * @return as dns_mx() (never SC_ERR_NOT_FOUND). */
SC_MUST_CHECK sc_status dns_tlsa(struct dns_ctx *d, const char *port, const char *host,
				 struct dns_tlsa *t, enum dns_sec *sec, char *err,
				 size_t errlen);
void dns_tlsa_free(struct dns_tlsa *t);

#endif
