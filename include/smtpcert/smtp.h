/*
 * smtpcert/smtp.h - a small blocking SMTP client for the CLI: connect, EHLO,
 * STARTTLS with server authentication, one command at a time, CERT/CERS, and
 * the submitting side of CERC (AUTH PLAIN, then the upload).
 *
 * Every read is bounded (line length, reply size) and every wait has a timeout.
 */
#ifndef SMTPCERT_SMTP_H
#define SMTPCERT_SMTP_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "addr.h"
#include "cert.h"
#include "reply.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sc_smtp_tls {
	SC_SMTP_TLS_REQUIRE = 0, /**< STARTTLS must be offered and succeed (default) */
	SC_SMTP_TLS_IF_OFFERED,  /**< use STARTTLS when the server offers it */
	SC_SMTP_TLS_NEVER        /**< plaintext */
};

struct sc_smtp_opts {
	const char *helo;        /**< EHLO name; NULL = "localhost" */
	int timeout_ms;          /**< per connect/read/write; 0 = 30000 */
	enum sc_smtp_tls tls;
	const char *ca_file;     /**< trust anchors; NULL = system store */
	int insecure;            /**< skip server certificate verification */
	const char *tls_name;    /**< name to verify; NULL = the host connected to */
	int lmtp;                /**< greet with LHLO (RFC 2033 4.1) instead of EHLO */
	/** DANE (RFC 7672): when @p ntlsa > 0, STARTTLS is required and the server
	 *  is authenticated by these DNSSEC-validated TLSA records (see
	 *  sc_tls_set_dane(); tls_name is the TLSA base domain) instead of PKIX. */
	const struct sc_tlsa *tlsa;
	size_t ntlsa;
};

typedef struct sc_smtp sc_smtp;

/**
 * Connect to @p host (name or address) on @p port, read the banner, EHLO, and
 * STARTTLS according to @p opts (then EHLO again).
 * @return SC_OK; SC_ERR_NETWORK / SC_ERR_TIMEOUT; SC_ERR_REJECTED (banner or EHLO
 *         refused); SC_ERR_UNSUPPORTED (TLS required but not offered); SC_ERR_TLS /
 *         SC_ERR_VERIFY. A message is written to @p err.
 */
SC_MUST_CHECK sc_status sc_smtp_connect(const char *host, const char *port,
					const struct sc_smtp_opts *opts, sc_smtp **out,
					char *err, size_t errlen);

/** Send QUIT (best effort) and free. */
void sc_smtp_close(sc_smtp *s);

/** @return non-zero when the last EHLO reply listed @p keyword (case-insensitive). */
int sc_smtp_has_ext(const sc_smtp *s, const char *keyword);

/** @return non-zero when the session is protected by TLS. */
int sc_smtp_is_tls(const sc_smtp *s);
/** "TLSv1.3" etc., or NULL without TLS. */
const char *sc_smtp_tls_version(const sc_smtp *s);
/** Which TLSA record authenticated the server (see sc_tls_dane_match()).
 *  @return non-zero when DANE did. */
int sc_smtp_dane_match(const sc_smtp *s, char *buf, size_t size);

/**
 * Send one command line (CRLF added) and read the complete reply into @p reply
 * (reset first). @return SC_OK whatever the reply code; I/O and protocol errors.
 */
SC_MUST_CHECK sc_status sc_smtp_command(sc_smtp *s, const char *line, sc_reply *reply);

/**
 * CERT (or CERS when @p chain) for @p addr, parsing the certificate(s) from the
 * reply. *@p code receives the reply code.
 * @return SC_OK with *@p out set; SC_ERR_NOT_FOUND (550, typically 550 5.1.1);
 *         SC_ERR_REJECTED (other 5xx, and 550 with a 5.7.x policy code such as
 *         "domain not served here"); SC_ERR_TEMP (4xx); SC_ERR_UNSUPPORTED (server
 *         does not offer CERT/CERS); when the server answers with a URL (cert_url
 *         mode) the certificate is fetched from it with sc_http_fetch_cert() under
 *         the session's trust settings, and that function's statuses apply;
 *         SC_ERR_PROTOCOL (250 without a parsable certificate); I/O errors.
 *         The server's text goes to @p err.
 */
SC_MUST_CHECK sc_status sc_smtp_fetch_cert(sc_smtp *s, const struct sc_addr *addr,
					   int chain, sc_cert **out, int *code, char *err,
					   size_t errlen);

/**
 * Fetch the certificate(s) at the http:// or https:// URL a cert_url server answers
 * CERT/CERS with (sc_smtp_fetch_cert() calls this itself). HTTP/1.0 GET; only
 * status 200 counts; the body (at most SC_CERT_INPUT_MAX, checked against
 * Content-Length) is parsed by sc_cert_parse(). https:// verifies the web server
 * with @p ca_file (NULL = system store) and the URL's host unless @p insecure;
 * plain http:// is refused unless @p insecure (nothing would authenticate the
 * certificate's origin). @p timeout_ms: per step, 0 = 30000.
 * @return SC_OK with *@p out set; SC_ERR_NOT_FOUND (404, 410); SC_ERR_TEMP (5xx);
 *         SC_ERR_PROTOCOL (other status, redirects, malformed or truncated response,
 *         no certificate in it); SC_ERR_TOO_LONG; SC_ERR_SYNTAX (bad URL);
 *         SC_ERR_POLICY (http:// without @p insecure); network and TLS errors.
 *         A message naming the URL goes to @p err.
 */
SC_MUST_CHECK sc_status sc_http_fetch_cert(const char *url, const char *ca_file, int insecure,
					   int timeout_ms, sc_cert **out, char *err,
					   size_t errlen);

/** Longest URL sc_cert_url_expand() writes for the daemon and export-www. */
#define SC_CERT_URL_MAX 2048

/**
 * Expand a cert_url template (docs/protocol.md 10.2) for the lookup key @p key
 * (sc_addr_key): %u = the key, %n = its local part, %d = its domain, %% = '%';
 * substituted octets other than RFC 3986 unreserved and '@' are percent-encoded.
 * The daemon answers CERT/CERS with this URL; `smtpcert admin export-www` writes
 * the file it names (sc_cert_url_file()).
 * @return SC_OK; SC_ERR_TOO_LONG (@p size too small); SC_ERR_ARG (no '@' in @p key).
 */
SC_MUST_CHECK sc_status sc_cert_url_expand(const char *tmpl, const char *key, char *out,
					   size_t size);

/**
 * The file, relative to a web root, that the expanded URL names: its path after
 * the authority, without the leading '/', percent-decoded as a web server does.
 * @return SC_OK; SC_ERR_SYNTAX (a segment that is empty, ".", "..", starts with
 *         '.' or holds a control character or an encoded NUL: never written);
 *         SC_ERR_UNSUPPORTED (the URL has a query or fragment); SC_ERR_CONFIG (no
 *         path); SC_ERR_TOO_LONG; SC_ERR_ARG.
 */
SC_MUST_CHECK sc_status sc_cert_url_file(const char *tmpl, const char *key, char *out,
					 size_t size);

/** sc_smtp_auth() flag: allow credentials over a session without TLS (tests only). */
#define SC_SMTP_AUTH_PLAINTEXT_OK 1u

/**
 * AUTH PLAIN (RFC 4954, RFC 4616) as @p user with @p password (UTF-8, no authzid,
 * each at most 255 octets). Credentials are never sent over a session without
 * TLS unless @p flags has SC_SMTP_AUTH_PLAINTEXT_OK. Copies of the password made
 * here are wiped before returning.
 * @return SC_OK (235); SC_ERR_POLICY (no TLS: nothing was sent); SC_ERR_UNSUPPORTED
 *         (AUTH not offered, or 504: PLAIN not supported); SC_ERR_REJECTED (535 and
 *         other 5xx: wrong credentials or refused); SC_ERR_TEMP (4xx); SC_ERR_ARG
 *         (empty user or a value over 255 octets); SC_ERR_PROTOCOL; I/O errors.
 *         The server's text goes to @p err.
 */
SC_MUST_CHECK sc_status sc_smtp_auth(sc_smtp *s, const char *user, const char *password,
				     unsigned flags, char *err, size_t errlen);

/** Longest submission id sc_smtp_cerc() accepts from a server. */
#define SC_CERC_ID_MAX 64

/** What the server said about a CERC submission. */
struct sc_cerc_result {
	int code;                     /**< last reply code (0 when none was read) */
	char id[SC_CERC_ID_MAX + 1];  /**< submission id, "" unless SC_OK */
	char state[16];               /**< "queued", "accepted" (or the server's word) */
};

/**
 * Submit @p c (leaf, then its chain) for @p addr: "CERC addr" -> 250, "DATA" ->
 * 354, the PEM lines dot-stuffed (RFC 5321 4.5.2), "." -> "250 2.0.0 <id> <state>"
 * (docs/protocol.md, CERC). Normally after sc_smtp_auth().
 * @return SC_OK with @p res filled; SC_ERR_UNSUPPORTED (CERC not offered);
 *         SC_ERR_POLICY (550 "Invalid Certificate: reason" after the upload: the
 *         server's acceptance policy refused it); SC_ERR_TOO_LONG (552 after the
 *         upload: over the server's size limit); SC_ERR_REJECTED (other 5xx, e.g.
 *         530 authentication required, 550 5.7.0 submissions off, a 5.7.x identity
 *         refusal); SC_ERR_TEMP (4xx); SC_ERR_PROTOCOL (250 without an id, or an
 *         unexpected code); I/O errors. The server's text goes to @p err.
 */
SC_MUST_CHECK sc_status sc_smtp_cerc(sc_smtp *s, const struct sc_addr *addr, const sc_cert *c,
				     struct sc_cerc_result *res, char *err, size_t errlen);

/*
 * Sending mail (smtp_mail.c): the sendmail front end (`smtpcert send`), LMTP
 * delivery and notices to a proxy backend use these after sc_smtp_connect().
 */

/**
 * MAIL FROM:<@p from> (@p from "" = null reverse-path) with ESMTP parameters
 * @p params ("BODY=8BITMIME SMTPUTF8 SIZE=1234"; NULL = none), reply in @p reply.
 * @return SC_OK (2xx); SC_ERR_REJECTED (5xx); SC_ERR_TEMP (4xx); I/O errors.
 */
SC_MUST_CHECK sc_status sc_smtp_mail(sc_smtp *s, const char *from, const char *params,
				     sc_reply *reply);

/** RCPT TO:<@p to>; statuses as sc_smtp_mail(). */
SC_MUST_CHECK sc_status sc_smtp_rcpt(sc_smtp *s, const char *to, const char *params,
				     sc_reply *reply);

/**
 * DATA, then @p size octets read from @p fd starting at offset 0 (pread; the
 * file position is not used), line ends converted to CRLF, dot-stuffed
 * (RFC 5321 4.5.2), then ".". Streams: memory does not grow with @p size.
 * Reads @p nreplies replies after the final "." into replies[0..nreplies-1]:
 * 1 for SMTP, one per accepted recipient for LMTP (RFC 2033 4.2).
 * @return SC_OK when the data went through (look at each reply's code);
 *         SC_ERR_REJECTED / SC_ERR_TEMP when DATA itself was refused (reply in
 *         replies[0]); SC_ERR_IO (reading @p fd); network errors.
 */
SC_MUST_CHECK sc_status sc_smtp_data_fd(sc_smtp *s, int fd, uint64_t size, sc_reply **replies,
					size_t nreplies);

/** Most MX hosts sc_mx_lookup() returns. */
#define SC_MX_MAX 16

/**
 * Mail exchangers of @p domain in the order to try them (RFC 5321 5.1): MX
 * preference, lowest first, equal preferences in random order. A domain without
 * MX records is its own mail exchanger (the implicit MX), so then the single
 * host is @p domain itself. Names are lower case without a trailing dot.
 * @param hosts receives up to @p max names; *@p n their count
 * @return SC_OK; SC_ERR_NOT_FOUND (the domain does not exist, or publishes a null
 *         MX: RFC 7505, it accepts no mail); SC_ERR_TEMP (DNS server failure or
 *         timeout); SC_ERR_NETWORK (no resolver); SC_ERR_ARG. A message goes to
 *         @p err.
 */
SC_MUST_CHECK sc_status sc_mx_lookup(const char *domain, char hosts[][SC_DOMAIN_MAX + 1],
				     size_t max, size_t *n, char *err, size_t errlen);

/** Addresses kept per mail exchanger by sc_mx_resolve(), and their text size. */
#define SC_MX_ADDRS_MAX 8
#define SC_MX_ADDR_LEN 46

/** One mail exchanger and its addresses (numeric, IPv4 first). */
struct sc_mx_host {
	char name[SC_DOMAIN_MAX + 1];
	char addrs[SC_MX_ADDRS_MAX][SC_MX_ADDR_LEN];
	size_t naddrs;
};

/**
 * sc_mx_lookup() through the DNSSEC-aware resolver the certificate lookup uses
 * (libunbound, lib/dns.c), for delivering mail: the MX hosts of @p domain in
 * order (RFC 5321 5.1, implicit MX, RFC 7505 null MX), each with its A then
 * AAAA addresses, so the caller connects to what this resolver answered.
 * Answers that fail DNSSEC validation are never used. Hosts without an address
 * are left out.
 * @param resolver "ADDR[@PORT]" to forward queries to; NULL = the system's
 * @param anchor DNSSEC trust anchor file; NULL = the system's root key; "" = none
 * @param timeout_ms per query; 0 = 30000
 * @return SC_OK (*@p n > 0); SC_ERR_NOT_FOUND (no such domain, null MX, or no
 *         host has an address); SC_ERR_VERIFY (bogus answer); SC_ERR_TEMP /
 *         SC_ERR_TIMEOUT / SC_ERR_NETWORK; SC_ERR_CONFIG (bad resolver or anchor);
 *         SC_ERR_ARG. A message goes to @p err.
 */
SC_MUST_CHECK sc_status sc_mx_resolve(const char *domain, const char *resolver, const char *anchor,
				      int timeout_ms, struct sc_mx_host *hosts, size_t max,
				      size_t *n, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
