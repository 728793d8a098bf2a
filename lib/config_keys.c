/*
 * config_keys.c - the table of smtpcertd.conf keys: name, type, default, value
 * check and one line of help each, and the smaller table of the smtpcert client's
 * file. Adding a key is one line here (plus its use). Runs wherever a config is
 * parsed: the daemon at start and SIGHUP, the admin CLI, the client verbs.
 *
 * The checks run on every value the file gives (each item of a list) and may
 * normalise it in place (domains are lower-cased, a trailing dot dropped), so the
 * rest of the program sees one spelling.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtpcert/smtpcert.h"
#include "config_int.h"

/* A port is 1-65535 in decimal, no sign, no leading zeros beyond "0" itself. */
static int parse_port(const char *s)
{
	long v = 0;

	if (!*s || *s == '0')
		return 0;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return 0;
		v = v * 10 + (*s - '0');
		if (v > 65535)
			return 0;
	}
	return (int)v;
}

/*
 * Split "HOST:PORT" or "[IPV6]:PORT". @return a reason or NULL; *host gets a
 * NUL-terminated copy without brackets, *is_v6 whether brackets were used.
 */
static const char *split_hostport(const char *v, char *host, size_t hostsize, int *is_v6,
				  int *port)
{
	const char *colon;
	size_t hlen;

	*is_v6 = 0;
	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (!close)
			return "missing ']' after IPv6 address";
		if (close[1] != ':')
			return "expected ':PORT' after ']'";
		*is_v6 = 1;
		hlen = (size_t)(close - v - 1);
		v++;
		colon = close + 1;
	} else {
		colon = strrchr(v, ':');
		if (!colon)
			return "expected ADDRESS:PORT";
		hlen = (size_t)(colon - v);
		if (memchr(v, ':', hlen))
			return "IPv6 addresses must be written in brackets: [ADDRESS]:PORT";
	}
	if (hlen == 0)
		return "missing address before ':PORT'";
	if (hlen >= hostsize)
		return "address too long";
	memcpy(host, v, hlen);
	host[hlen] = '\0';
	*port = parse_port(colon + 1);
	if (!*port)
		return "port must be a number from 1 to 65535";
	return NULL;
}

/* listen: numeric addresses only, so binding never depends on DNS at start-up. */
static const char *check_listen(char *v, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char tmp[16];
	int v6, port;
	const char *why = split_hostport(v, host, sizeof host, &v6, &port);

	if (why)
		return why;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, tmp) != 1)
		return v6 ? "not an IPv6 address" : "not a numeric IPv4 address (use [ADDR]:PORT for IPv6)";
	return NULL;
}

/* HOST:PORT where HOST is a domain name, an IPv4 address or [IPv6]. */
static const char *check_hostport(const char *v)
{
	char host[SC_DOMAIN_MAX + 1];
	unsigned char tmp[16];
	int v6, port;
	const char *why = split_hostport(v, host, sizeof host, &v6, &port);

	if (why)
		return why;
	if (v6)
		return inet_pton(AF_INET6, host, tmp) == 1 ? NULL : "not an IPv6 address";
	if (inet_pton(AF_INET, host, tmp) == 1)
		return NULL;
	if (sc_domain_check(host, strlen(host), 0) != SC_OK)
		return "not a host name or address";
	return NULL;
}

static void lower_ascii(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static const char *check_hostname(char *v, char *buf, size_t size)
{
	if (sc_domain_check(v, strlen(v), 0) != SC_OK)
		return "not a valid host name";
	return NULL;
}

/* Domains are stored lower-case without a trailing dot: the lookup key's form. */
static const char *check_domain(char *v, char *buf, size_t size)
{
	size_t len = strlen(v);

	if (len > 1 && v[len - 1] == '.')
		v[--len] = '\0';
	if (v[0] == '[')
		return "address literals are not domains";
	if (sc_domain_check(v, len, SC_ADDR_UTF8) != SC_OK)
		return "not a valid domain name";
	lower_ascii(v);
	return NULL;
}

static const char *const repo_schemes[] = { "lmdb:", "dir:", "ldap://", "ldaps://",
					    "ldapi://", "pgsql:" };

int cfg_repo_scheme_len(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof repo_schemes / sizeof repo_schemes[0]; i++) {
		size_t n = strlen(repo_schemes[i]);

		if (len >= n && !strncasecmp(s, repo_schemes[i], n))
			return (int)n;
	}
	return 0;
}

static const char *check_repository(char *v, char *buf, size_t size)
{
	int n = cfg_repo_scheme_len(v, strlen(v));

	if (!n)
		return "unknown repository type (expected lmdb:, dir:, ldap://, ldaps://, "
		       "ldapi:// or pgsql:)";
	if (!v[n])
		return "missing path or address after the repository type";
	if (!strncasecmp(v, "ldap", 4) && !strstr(v, "%s"))
		return "LDAP URL filter must contain %s for the address";
	return NULL;
}

/* cert_url: CERT/CERS answer with this URL (%u = the address), so it must be one. */
static const char *check_cert_url(char *v, char *buf, size_t size)
{
	if (strncasecmp(v, "https://", 8) && strncasecmp(v, "http://", 7))
		return "must be an http:// or https:// URL";
	if (strpbrk(v, " \t"))
		return "must not contain whitespace";
	if (!strstr(v, "%u"))
		return "must contain %u (replaced by the address)";
	return NULL;
}

static const char *check_auth(char *v, char *buf, size_t size)
{
	if (!strncmp(v, "passwd:", 7))
		return v[7] ? NULL : "missing file name after passwd:";
	if (!strncmp(v, "dovecot:", 8))
		return v[8] ? NULL : "missing socket path after dovecot:";
	return "expected passwd:/path or dovecot:/path/to/auth-socket";
}

static const char *check_delivery(char *v, char *buf, size_t size)
{
	const char *why;

	if (!strncmp(v, "maildir:", 8))
		return v[8] ? NULL : "missing path after maildir:";
	if (!strncmp(v, "lmtp:", 5) || !strncmp(v, "proxy:", 6)) {
		why = check_hostport(strchr(v, ':') + 1);
		if (why)
			snprintf(buf, size, "%s (expected %s:HOST:PORT)", why,
				 v[0] == 'l' ? "lmtp" : "proxy");
		return why ? buf : NULL;
	}
	return "expected maildir:/path, lmtp:HOST:PORT or proxy:HOST:PORT";
}

static const char *check_address(char *v, char *buf, size_t size)
{
	struct sc_addr a;
	const char *why = NULL;

	if (sc_addr_parse(v, strlen(v), SC_ADDR_UTF8, &a, &why) != SC_OK) {
		snprintf(buf, size, "not a valid mail address%s%s", why ? ": " : "",
			 why ? why : "");
		return buf;
	}
	return NULL;
}

/* A POSIX portable user name: getpwnam() does the real check at start-up. */
static const char *check_user(char *v, char *buf, size_t size)
{
	if (v[0] == '-')
		return "must not start with '-'";
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			return "not a valid user name";
	return NULL;
}

const struct cfg_key cfg_keys[] = {
	{ "hostname", CFG_STR, NULL, "(gethostname)", check_hostname, 0, 0, NULL, 0,
	  "name in the banner and the EHLO reply" },
	{ "listen", CFG_LIST, "0.0.0.0:25", NULL, check_listen, 0, 0, NULL, 0,
	  "addresses to listen on: IPV4:PORT or [IPV6]:PORT" },
	{ "domains", CFG_LIST, NULL, NULL, check_domain, 0, 0, NULL, CFG_REQUIRED,
	  "local domains: certificates served and mail received" },
	{ "gateway_domains", CFG_LIST, NULL, NULL, check_domain, 0, 0, NULL, 0,
	  "domains behind this gateway: certificates served, never relayed" },
	{ "repository", CFG_LIST, NULL, "lmdb:STATE_DIR/certs", check_repository, 0, 0, NULL,
	  CFG_SPLIT_SCHEME,
	  "ordered certificate stores: lmdb:/path, dir:/path, ldap://..., pgsql:conninfo" },
	{ "cert_url", CFG_STR, NULL, NULL, check_cert_url, 0, 0, NULL, 0,
	  "answer CERT/CERS with this URL (%u = the address) instead of the PEM" },
	{ "tls_cert_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "STARTTLS certificate chain (PEM, leaf first)" },
	{ "tls_key_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "STARTTLS private key (PEM)" },
	{ "crl_file", CFG_LIST, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "certificate revocation lists (PEM or DER); may be repeated" },
	{ "submissions", CFG_ENUM, "off", NULL, NULL, 0, 0, "off|review|auto", 0,
	  "CERC uploads: off, review (queued for the admin) or auto" },
	{ "auth", CFG_STR, NULL, NULL, check_auth, 0, 0, NULL, 0,
	  "passwd:/path or dovecot:/path/to/auth-socket" },
	{ "submission_admins", CFG_LIST, NULL, NULL, check_address, 0, 0, NULL, 0,
	  "authenticated identities that may submit certificates for any served address" },
	{ "submission_ca_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "when set, a submitted certificate must chain to these anchors (PEM)" },
	{ "submission_max_size", CFG_INT, "65536", NULL, NULL, 1024, 1048576, NULL, 0,
	  "largest CERC upload in bytes (enforced while reading)" },
	{ "notify_submitter", CFG_BOOL, "no", NULL, NULL, 0, 0, NULL, 0,
	  "tell the submitter when an administrator accepts or rejects" },
	/* RFC 4954 section 4 leaves throttling to the server, as Postfix's smtpd_error_sleep_time. */
	{ "auth_fail_delay", CFG_INT, "2", NULL, NULL, 0, 60, NULL, 0,
	  "seconds to wait before answering a failed AUTH" },
	{ "auth_max_failures", CFG_INT, "10", NULL, NULL, 1, 100000, NULL, 0,
	  "failed AUTHs per client IP and per user name within an hour before AUTH is refused" },
	{ "state_dir", CFG_PATH, "/var/lib/smtpcert", NULL, NULL, 0, 0, NULL, 0,
	  "pending submissions and other durable state" },
	{ "delivery", CFG_STR, NULL, NULL, check_delivery, 0, 0, NULL, 0,
	  "maildir:/path/%d/%n, lmtp:HOST:PORT or proxy:HOST:PORT" },
	{ "postmaster", CFG_STR, NULL, "postmaster@FIRST-DOMAIN", check_address, 0, 0, NULL, 0,
	  "where submission notices go" },
	{ "user", CFG_STR, NULL, NULL, check_user, 0, 0, NULL, 0,
	  "unprivileged account to run as after binding (when started as root)" },
	{ "seccomp", CFG_BOOL, "yes", NULL, NULL, 0, 0, NULL, 0,
	  "system call filter on the network process (Linux; execve, ptrace, ... refused)" },
	{ "encrypt_at_rest", CFG_BOOL, "no", NULL, NULL, 0, 0, NULL, 0,
	  "encrypt plaintext mail to local recipients who have a certificate" },
	{ "recipients", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "file of further local addresses that receive mail, one per line" },
	/* RFC 5321 4.5.3.1.8: a server must accept at least 100 recipients. */
	{ "max_recipients", CFG_INT, "100", NULL, NULL, 1, 100000, NULL, 0,
	  "recipients per message before 452 4.5.3" },
	{ "delivery_timeout", CFG_INT, "60", NULL, NULL, 1, 3600, NULL, 0,
	  "seconds per network step when delivering over LMTP or to a proxy backend" },
	/* Postfix XCLIENT (XCLIENT_README) or HAProxy's PROXY protocol version 2. */
	{ "proxy_protocol", CFG_ENUM, "xclient", NULL, NULL, 0, 0, "xclient|v2|none", 0,
	  "how a proxy backend learns the real client: XCLIENT, PROXY v2, or not at all" },
	{ "proxy_timeout", CFG_INT, "60", NULL, NULL, 1, 3600, NULL, 0,
	  "seconds to wait for the proxy backend before 421/451" },
	{ "ldap_bind_dn", CFG_STR, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "DN to bind as for ldap:// repositories (anonymous when unset)" },
	{ "ldap_bind_password_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "file holding the LDAP bind password" },
	{ "ldap_starttls", CFG_BOOL, "no", NULL, NULL, 0, 0, NULL, 0,
	  "use StartTLS on ldap:// connections" },
	{ "ldap_ca_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "trust anchors for the LDAP server's certificate" },
	{ "ldap_timeout", CFG_INT, "10", NULL, NULL, 1, 3600, NULL, 0,
	  "seconds before an LDAP query counts as failed (451)" },
	{ "repository_index", CFG_BOOL, "yes", NULL, NULL, 0, 0, NULL, 0,
	  "keep an in-memory index of each lmdb: store (36 bytes per address, and repository_index_copy) for faster lookups; read at start" },
	{ "repository_index_copy", CFG_INT, "2048", NULL, NULL, 0, 1048576, NULL, 0,
	  "MiB of certificates the indexes may copy into memory of their own (never over a quarter of RAM); 0: none" },
	{ "repository_index_huge_pages", CFG_BOOL, "no", NULL, NULL, 0, 0, NULL, 0,
	  "take the indexes and their copies from the reserved 2 MiB huge pages (/sys/kernel/mm/hugepages/hugepages-2048kB) when the pool has room" },
	{ "worker_threads", CFG_INT, "4", NULL, NULL, 2, 64, NULL, 0,
	  "threads for blocking work (AUTH, CERC, delivery, lookups in ldap/pgsql stores); read at start" },
	{ "workers", CFG_INT, "1", NULL, NULL, 1, 64, NULL, 0,
	  "serving processes sharing the listening sockets (one event loop each); read at start" },
	{ "ldap_cache_ttl", CFG_INT, "60", NULL, NULL, 0, 86400, NULL, 0,
	  "seconds an LDAP answer is reused (0: none); validity and CRLs are checked on every use" },
	/* RFC 5321 4.5.3.2.7: a server should wait at least 5 minutes for a command. */
	{ "idle_timeout", CFG_INT, "300", NULL, NULL, 1, 86400, NULL, 0,
	  "seconds a session may stay idle before 421" },
	{ "max_connections", CFG_INT, "4096", NULL, NULL, 1, 1000000, NULL, 0,
	  "simultaneous connections before new ones get 421" },
	{ "max_errors", CFG_INT, "10", NULL, NULL, 1, 10000, NULL, 0,
	  "failed commands in a session before 421" },
	/* Abuse resistance (daemon/anvil.c, daemon/conn_limits.c, daemon/harvest.c;
	 * docs/design.md "Abuse resistance"): 0 turns a limit off. */
	{ "max_connections_per_ip", CFG_INT, "50", NULL, NULL, 0, 1000000, NULL, 0,
	  "simultaneous connections per client IPv4 address or IPv6 /64 before 421 4.7.0" },
	{ "max_connection_rate", CFG_INT, "600", NULL, NULL, 0, 1000000, NULL, 0,
	  "connections per client IPv4 address or IPv6 /64 per minute before 421 4.7.0" },
	{ "limits_exempt_loopback", CFG_BOOL, "yes", NULL, NULL, 0, 0, NULL, 0,
	  "loopback clients are exempt from the per-IP and harvest limits (local proxies, filters)" },
	/* RFC 5321 4.5.3.2.7: at least 5 minutes for a command by default. */
	{ "command_timeout", CFG_INT, "300", NULL, NULL, 0, 86400, NULL, 0,
	  "seconds a command line may take to arrive once its first byte came before 421 4.4.2" },
	{ "session_timeout", CFG_INT, "1800", NULL, NULL, 0, 604800, NULL, 0,
	  "seconds a whole session may last before 421 4.4.2" },
	{ "harvest_threshold", CFG_INT, "5", NULL, NULL, 0, 100000, NULL, 0,
	  "not-found CERT/CERS answers in a session before every further answer is delayed" },
	{ "harvest_limit", CFG_INT, "30", NULL, NULL, 0, 100000, NULL, 0,
	  "not-found CERT/CERS answers in a session before 421 4.7.0" },
	{ "harvest_ip_limit", CFG_INT, "1000", NULL, NULL, 0, 100000000, NULL, 0,
	  "not-found CERT/CERS answers per client IPv4 address or IPv6 /64 per hour before 421 4.7.0" },
	/* RFC 1870: advertised as SIZE. */
	{ "max_message_size", CFG_INT, "10485760", NULL, NULL, 1, 2147483647LL, NULL, 0,
	  "largest message accepted, in bytes (advertised in SIZE)" },
};

const size_t cfg_nkeys = sizeof cfg_keys / sizeof cfg_keys[0];

/* submit: HOST or HOST:PORT ([IPV6]:PORT); the port defaults to submission (587). */
static const char *check_submit(char *v, char *buf, size_t size)
{
	unsigned char tmp[16];

	if (v[0] == '[' || strchr(v, ':'))
		return check_hostport(v);
	if (inet_pton(AF_INET, v, tmp) == 1)
		return NULL;
	if (sc_domain_check(v, strlen(v), 0) != SC_OK)
		return "not a host name or address (expected HOST[:PORT])";
	return NULL;
}

/* resolver: a numeric address, optionally "@PORT" (libunbound's forwarder syntax). */
static const char *check_resolver(char *v, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *at = strchr(v, '@');
	size_t hlen = at ? (size_t)(at - v) : strlen(v);
	unsigned char tmp[16];

	if (hlen == 0 || hlen >= sizeof host)
		return "expected ADDRESS[@PORT]";
	memcpy(host, v, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1)
		return "not a numeric IPv4 or IPv6 address (expected ADDRESS[@PORT])";
	if (at && !parse_port(at + 1))
		return "port must be a number from 1 to 65535";
	return NULL;
}

/* A key is a file name or an RFC 7512 URI; the URI is checked when the key is used. */
static const char *check_key_spec(char *v, char *buf, size_t size)
{
	if (!strncasecmp(v, "pkcs11:", 7) && !v[7])
		return "empty pkcs11: URI";
	return NULL;
}

/*
 * The smtpcert client's keys (smtpcert.conf(5)). Read from /etc/smtpcert/smtpcert.conf,
 * then ~/.config/smtpcert/config; cli/userconf.c merges the two (keygen = no in the
 * system file wins).
 */
const struct cfg_key cfg_client_keys[] = {
	{ "from", CFG_STR, NULL, NULL, check_address, 0, 0, NULL, 0,
	  "your address: envelope sender of send, the certificate signing uses" },
	{ "submit", CFG_STR, NULL, NULL, check_submit, 0, 0, NULL, 0,
	  "submission server HOST[:PORT] (587 by default); unset = deliver to the MX" },
	{ "submit_user", CFG_STR, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "user name for AUTH at the submission server" },
	{ "submit_password_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "file holding the submission password (first line)" },
	{ "encrypt", CFG_ENUM, "opportunistic", NULL, NULL, 0, 0, "always|opportunistic|never", 0,
	  "always (never send plaintext), opportunistic (when every recipient has a "
	  "certificate) or never" },
	{ "sign", CFG_BOOL, "no", NULL, NULL, 0, 0, NULL, 0, "sign every message sent" },
	{ "key", CFG_STR, NULL, NULL, check_key_spec, 0, 0, NULL, 0,
	  "your private key: a PEM file or an RFC 7512 pkcs11: URI" },
	{ "cert", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "your S/MIME certificate (PEM, chain may follow)" },
	{ "passphrase_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "file holding the key's passphrase (or the token PIN), first line" },
	{ "ca_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "trust anchors for mail servers' TLS certificates (default: system store)" },
	{ "smime_ca_file", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "trusted S/MIME CAs: a changed certificate that chains to one is accepted" },
	{ "known_certs", CFG_PATH, NULL, "$XDG_DATA_HOME/smtpcert/known_certs", NULL, 0, 0, NULL,
	  0, "remembered recipient certificates (trust on first use); none = off" },
	{ "cache_dir", CFG_PATH, NULL, "$XDG_CACHE_HOME/smtpcert", NULL, 0, 0, NULL, 0,
	  "cache of fetched certificates; none = off" },
	{ "cache_ttl", CFG_INT, "3600", NULL, NULL, 1, 30 * 86400, NULL, 0,
	  "seconds a fetched certificate is used without asking again" },
	{ "resolver", CFG_STR, NULL, NULL, check_resolver, 0, 0, NULL, 0,
	  "DNS server ADDRESS[@PORT] for MX/TLSA lookups (default: the system's)" },
	{ "dnssec_anchor", CFG_PATH, NULL, NULL, NULL, 0, 0, NULL, 0,
	  "DNSSEC trust anchor file (default: the system's root key)" },
	{ "keygen", CFG_BOOL, "yes", NULL, NULL, 0, 0, NULL, 0,
	  "allow smtpcert keygen; no in the system file disables it for every user" },
	{ "pkcs11_module", CFG_PATH, NULL, "p11-kit-proxy", NULL, 0, 0, NULL, 0,
	  "PKCS#11 module for pkcs11: keys without module-path" },
	{ "timeout", CFG_INT, "30", NULL, NULL, 1, 3600, NULL, 0,
	  "seconds per network step (connect, each reply)" },
};

const size_t cfg_client_nkeys = sizeof cfg_client_keys / sizeof cfg_client_keys[0];

int cfg_key_index(const char *name, size_t len)
{
	for (size_t i = 0; i < cfg_nkeys; i++)
		if (strlen(cfg_keys[i].name) == len && !memcmp(cfg_keys[i].name, name, len))
			return (int)i;
	return -1;
}

const char *cfg_type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_STR: return "string";
	case CFG_PATH: return "path";
	case CFG_LIST: return "list";
	case CFG_INT: return "int";
	case CFG_BOOL: return "bool";
	case CFG_ENUM: return "enum";
	}
	return "string";
}
