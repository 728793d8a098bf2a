/*
 * cmd_fetch.c - `smtpcert fetch`: ask a mail server for a recipient's certificate
 * with CERT (or CERS with --chain), check what came back, print it as PEM or JSON.
 * The server is --server HOST[:PORT] or, without it, the MX hosts of the
 * address's domain tried in order (RFC 5321 5.1). STARTTLS with server
 * verification is required unless --insecure. A server in cert_url mode answers
 * with a URL, which the library follows over verified HTTPS. Runs in the user's
 * process.
 *
 * Nothing reaches stdout unless the whole answer passed the checks: the leaf must
 * name the asked address and be valid now, so a script can pipe the output into
 * an encryption step without looking at the exit code first.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define VERB "fetch"

struct fetch_opts {
	const char *server;
	const char *ca_file;
	int chain;
	int insecure;
	int json;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert fetch [--server HOST[:PORT]] [--chain] [--ca-file F] [--insecure]\n"
		"                      [--json] ADDRESS\n"
		"\n"
		"Ask a mail server for the certificate of ADDRESS (SMTP CERT) and print it as PEM.\n"
		"\n"
		"  --server HOST[:PORT]  ask this server (default port 25; IPv6 as [::1]:2525)\n"
		"                        instead of the MX hosts of ADDRESS's domain\n"
		"  --chain               ask with CERS: the certificate and its chain, leaf first\n"
		"  --ca-file F           trust anchors for the server's TLS certificate\n"
		"                        (default: the system trust store)\n"
		"  --insecure            do not verify the server; use TLS only if offered\n"
		"  --json                print one JSON object instead of PEM\n"
		"\n"
		"exit: 0 found, 1 not found, 2 usage, 3 temporary failure, 4 network/TLS,\n"
		"      5 protocol error or refused\n"
		"\n"
		"example: smtpcert fetch --server mx.example.org:25 bob@example.org > bob.pem\n");
}

/* ---- JSON output ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at @p s (RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A JSON string (RFC 8259 7): escapes, and U+FFFD for bytes that are not UTF-8. */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n;

		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p == '\n') {
			fputs("\\n", f);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) == 0) {
			fputs("\\ufffd", f);
			p++;
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	fputc('"', f);
}

static void iso_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "%lld", (long long)t);
}

/* PEM of certificate @p i (malloc'ed, ends with a newline) or NULL. */
static char *cert_pem(const sc_cert *c, size_t i)
{
	const uint8_t *der;
	size_t len, size, outlen;
	char *pem;

	if (sc_cert_der(c, i, &der, &len) != SC_OK)
		return NULL;
	size = sc_pem_encoded_size(len, "CERTIFICATE") + 1;
	pem = malloc(size);
	if (!pem)
		return NULL;
	if (sc_pem_encode(der, len, "CERTIFICATE", pem, size - 1, &outlen) != SC_OK) {
		free(pem);
		return NULL;
	}
	if (!outlen || pem[outlen - 1] != '\n') {
		pem[outlen++] = '\n';
		pem[outlen] = '\0';
	}
	return pem;
}

/* Only the leaf carries subject/issuer/validity accessors; chain entries get the
 * PEM alone. */
static int print_json(const sc_cert *c, size_t n, const char *address, const char *server,
		      const char *tls, const char *trust)
{
	char buf[1024];
	uint8_t fp[32];
	char hex[65];

	printf("{\"address\":");
	json_str(stdout, address);
	printf(",\"server\":");
	json_str(stdout, server);
	printf(",\"tls\":");
	if (tls)
		json_str(stdout, tls);
	else
		printf("null");
	printf(",\"trust\":\"%s\",\"certificates\":[", trust);
	for (size_t i = 0; i < n; i++) {
		char *pem = cert_pem(c, i);

		if (!pem)
			return -1;
		printf("%s{\"pem\":", i ? "," : "");
		json_str(stdout, pem);
		free(pem);
		if (i == 0) {
			sc_cert_subject(c, buf, sizeof buf);
			printf(",\"subject\":");
			json_str(stdout, buf);
			sc_cert_issuer(c, buf, sizeof buf);
			printf(",\"issuer\":");
			json_str(stdout, buf);
			iso_time(sc_cert_not_before(c), buf, sizeof buf);
			printf(",\"not_before\":\"%s\"", buf);
			iso_time(sc_cert_not_after(c), buf, sizeof buf);
			printf(",\"not_after\":\"%s\"", buf);
			sc_cert_fingerprint(c, fp);
			sc_hex(fp, sizeof fp, hex);
			printf(",\"fingerprint_sha256\":\"%s\"", hex);
		}
		printf("}");
	}
	printf("]}\n");
	return 0;
}

static int print_pem(const sc_cert *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *pem = cert_pem(c, i);

		if (!pem)
			return -1;
		fputs(pem, stdout);
		free(pem);
	}
	return 0;
}

/* ---- fetching ---------------------------------------------------------------------- */

/* Exit code for a failure, by where it happened (connect vs. CERT). */
static int exit_for(sc_status st, int connecting)
{
	switch (st) {
	case SC_ERR_NOT_FOUND:
		return connecting ? CLI_PROTOCOL : CLI_NOT_FOUND;
	case SC_ERR_UNSUPPORTED:
		/* connect: TLS required but not offered; fetch: no CERT, or a URL */
		return connecting ? CLI_NETWORK : CLI_PROTOCOL;
	case SC_ERR_TEMP:
		return CLI_TEMP;
	case SC_ERR_REJECTED:
	case SC_ERR_PROTOCOL:
	case SC_ERR_POLICY: /* e.g. a cert_url answer pointing at plain http:// */
		return CLI_PROTOCOL;
	default:
		/* Malformed input here came from the server (or its cert_url site). */
		if (sc_status_category(st) == SC_CAT_INPUT)
			return CLI_PROTOCOL;
		return cli_exit_for(st);
	}
}

/* Failures after which the next MX host may do better (RFC 5321 5.1). */
static int try_next(sc_status st)
{
	return st == SC_ERR_NETWORK || st == SC_ERR_TIMEOUT || st == SC_ERR_TEMP;
}

/* Ask one server. On success *@p out is the certificate and *@p tls the TLS version. */
static int fetch_one(const struct fetch_opts *o, const char *host, const char *port,
		     const struct sc_addr *a, sc_cert **out, char *tls, size_t tlslen,
		     int *again)
{
	struct sc_smtp_opts so = { 0 };
	char err[512] = "";
	sc_smtp *s;
	sc_status st;
	int code = 0;

	so.helo = "localhost";
	so.tls = o->insecure ? SC_SMTP_TLS_IF_OFFERED : SC_SMTP_TLS_REQUIRE;
	so.ca_file = o->ca_file;
	so.insecure = o->insecure;
	st = sc_smtp_connect(host, port, &so, &s, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		*again = try_next(st);
		return exit_for(st, 1);
	}
	if (!sc_smtp_is_tls(s))
		cli_err(VERB, "warning: %s: no TLS: the answer travelled in plaintext", host);
	snprintf(tls, tlslen, "%s", sc_smtp_tls_version(s) ? sc_smtp_tls_version(s) : "");
	st = sc_smtp_fetch_cert(s, a, o->chain, out, &code, err, sizeof err);
	sc_smtp_close(s);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		*again = try_next(st);
		return exit_for(st, 0);
	}
	return CLI_OK;
}

/* The answer must be about the address asked for, and usable now. */
static int check_cert(const sc_cert *c, const struct sc_addr *a, const char *address)
{
	sc_status st = sc_cert_check_time(c, time(NULL));

	if (!sc_cert_has_email(c, a)) {
		cli_err(VERB, "the server's certificate is not for %s: refused", address);
		return CLI_PROTOCOL;
	}
	if (st != SC_OK) {
		cli_err(VERB, "the server's certificate for %s is unusable: %s", address,
			sc_strerror(st));
		return CLI_PROTOCOL;
	}
	return CLI_OK;
}

static int parse_args(int argc, char **argv, struct fetch_opts *o, const char **address)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "chain", no_argument, NULL, 'c' },
		{ "ca-file", required_argument, NULL, 'a' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(o, 0, sizeof *o);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': o->server = optarg; break;
		case 'c': o->chain = 1; break;
		case 'a': o->ca_file = optarg; break;
		case 'k': o->insecure = 1; break;
		case 'j': o->json = 1; break;
		case 'h': usage(stdout); return -1;
		default:
			cli_err(VERB, "unknown or incomplete option '%s' (try --help)",
				argv[optind - 1]);
			return CLI_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_err(VERB, "%s (try --help)", optind == argc ? "missing ADDRESS"
								: "exactly one ADDRESS expected");
		return CLI_USAGE;
	}
	*address = argv[optind];
	return CLI_OK;
}

int cmd_fetch(int argc, char **argv)
{
	char hosts[SC_MX_MAX][SC_DOMAIN_MAX + 1], port[8] = "25", err[512] = "";
	char address[SC_ADDR_KEY_MAX + 8], server[SC_DOMAIN_MAX + 16], tls[32] = "";
	struct fetch_opts o;
	struct sc_addr a;
	const char *arg, *why = NULL;
	sc_cert *c = NULL;
	size_t nhosts = 0;
	int rc;
	sc_status st;

	rc = parse_args(argc, argv, &o, &arg);
	if (rc < 0)
		return CLI_OK;
	if (rc != CLI_OK)
		return rc;
	st = sc_addr_parse(arg, strlen(arg), SC_ADDR_UTF8, &a, &why);
	if (st != SC_OK || sc_addr_format(&a, address, sizeof address) != SC_OK) {
		cli_err(VERB, "'%s' is not a mail address: %s", arg, why ? why : sc_strerror(st));
		return CLI_USAGE;
	}
	/* A closed connection must be an error return, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (o.server) {
		if (cli_split_server(o.server, hosts[0], sizeof hosts[0], port, sizeof port) != 0) {
			cli_err(VERB, "--server '%s': expected HOST, HOST:PORT or [IPV6]:PORT",
				o.server);
			return CLI_USAGE;
		}
		nhosts = 1;
	} else {
		st = sc_mx_lookup(a.domain, hosts, SC_MX_MAX, &nhosts, err, sizeof err);
		if (st != SC_OK) {
			cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
			return st == SC_ERR_NOT_FOUND ? CLI_NOT_FOUND : cli_exit_for(st);
		}
	}
	if (o.insecure)
		cli_err(VERB, "warning: --insecure: server not authenticated");
	rc = CLI_NETWORK;
	for (size_t i = 0; i < nhosts; i++) {
		int again = 0;

		snprintf(server, sizeof server, strchr(hosts[i], ':') ? "[%s]:%s" : "%s:%s",
			 hosts[i], port);
		rc = fetch_one(&o, hosts[i], port, &a, &c, tls, sizeof tls, &again);
		if (rc == CLI_OK || !again)
			break;
	}
	if (rc != CLI_OK)
		return rc;
	rc = check_cert(c, &a, address);
	if (rc == CLI_OK) {
		size_t n = o.chain ? sc_cert_count(c) : 1;

		if (o.json)
			rc = print_json(c, n, address, server, tls[0] ? tls : NULL,
					o.insecure ? "insecure" : o.ca_file ? "ca-file" : "system");
		else
			rc = print_pem(c, n);
		if (rc != 0) {
			cli_err(VERB, "cannot encode the certificate");
			rc = CLI_FAILURE;
		} else if (fflush(stdout) != 0 || ferror(stdout)) {
			cli_err(VERB, "cannot write to standard output");
			rc = CLI_FAILURE;
		}
	}
	sc_cert_free(c);
	return rc;
}
