/*
 * cmd_fetch.c - `smtpcert fetch`: a recipient's certificate the user can trust,
 * through sc_lookup_cert(): CERT (or CERS with --chain) from --server HOST[:PORT]
 * or the MX hosts of the address's domain (DNSSEC-aware; DANE when the MX and
 * TLSA records validate, else PKIX), the checks (address, validity, usable for
 * encryption), the known-certificates store (a changed certificate is refused
 * unless --accept-new or it chains to --smime-ca-file) and the cache. Prints PEM
 * or JSON; says on stderr how the answer was trusted. Defaults come from the
 * client configuration (cli/userconf.h). Runs in the user's process.
 *
 * Nothing reaches stdout unless the whole answer passed the checks, so a script
 * can pipe the output into an encryption step without looking at the exit code
 * first.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "userconf.h"

#define VERB "fetch"

struct fetch_opts {
	struct sc_lookup_opts lk;
	const char *config;
	int json;
	int no_cache;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert fetch [--server HOST[:PORT]] [--chain] [--ca-file F] [--insecure]\n"
		"                      [--json] [--accept-new] [--no-cache] [--known-certs F]\n"
		"                      [--smime-ca-file F] [--resolver ADDR[@PORT]]\n"
		"                      [--dnssec-anchor F] [--mx-port PORT] [--config F] ADDRESS\n"
		"\n"
		"Look up the certificate of ADDRESS (SMTP CERT) over an authenticated channel,\n"
		"check it, remember it, and print it as PEM.\n"
		"\n"
		"  --server HOST[:PORT]  ask this server (default port 25; IPv6 as [::1]:2525)\n"
		"                        instead of the MX hosts of ADDRESS's domain\n"
		"  --chain               ask with CERS: the certificate and its chain, leaf first\n"
		"  --ca-file F           trust anchors for the servers' TLS certificates\n"
		"                        (default: the system trust store)\n"
		"  --insecure            do not authenticate the server; use TLS only if offered\n"
		"  --json                print one JSON object instead of PEM\n"
		"  --accept-new          accept (and remember) a certificate that differs from\n"
		"                        the one remembered for ADDRESS\n"
		"  --smime-ca-file F     a changed certificate that chains to these S/MIME CAs\n"
		"                        is accepted without --accept-new\n"
		"  --known-certs F       remembered certificates (default\n"
		"                        ~/.local/share/smtpcert/known_certs; 'none': off)\n"
		"  --no-cache            neither use nor fill the cache (~/.cache/smtpcert)\n"
		"  --resolver ADDR[@PORT] send DNS queries to this resolver\n"
		"  --dnssec-anchor F     DNSSEC trust anchor file (default\n"
		"                        /usr/share/dns/root.key; 'none': no DNSSEC)\n"
		"  --mx-port PORT        port of the MX hosts (default 25)\n"
		"  --config F            client configuration file (smtpcert.conf(5))\n"
		"\n"
		"How the answer was trusted goes to stderr: dane, pkix, tls-only, insecure or\n"
		"cache; and whether it was new, the same as remembered, or a change accepted.\n"
		"\n"
		"exit: 0 found, 1 not found, 2 usage, 3 temporary failure, 4 network/TLS or\n"
		"      server not authenticated, 5 protocol error or refused (including a\n"
		"      changed certificate), 7 local failure\n"
		"\n"
		"example: smtpcert fetch bob@example.org > bob.pem\n");
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
static int print_json(const sc_cert *c, size_t n, const char *address,
		      const struct sc_lookup_result *r)
{
	char buf[1024];
	uint8_t fp[32];
	char hex[65];

	sc_cert_fingerprint(c, fp);
	sc_hex(fp, sizeof fp, hex);
	printf("{\"address\":");
	json_str(stdout, address);
	printf(",\"server\":");
	if (r->server[0])
		json_str(stdout, r->server);
	else
		printf("null");
	printf(",\"trust\":\"%s\",\"pin\":\"%s\",\"dnssec\":%s,\"fingerprint\":\"%s\"",
	       sc_trust_name(r->trust), sc_pin_name(r->pin), r->dnssec ? "true" : "false", hex);
	printf(",\"detail\":");
	json_str(stdout, r->detail);
	printf(",\"certificates\":[");
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

/* ---- looking up ------------------------------------------------------------------- */

/* Exit code for a failed lookup. */
static int exit_for(sc_status st)
{
	switch (st) {
	case SC_ERR_NOT_FOUND:
		return CLI_NOT_FOUND;
	case SC_ERR_TEMP:
		return CLI_TEMP;
	case SC_ERR_ARG:
		return CLI_USAGE;
	case SC_ERR_NETWORK:
	case SC_ERR_TIMEOUT:
	case SC_ERR_TLS:
	case SC_ERR_VERIFY:
		return CLI_NETWORK;
	case SC_ERR_UNSUPPORTED:     /* no CERT at the server, or not for encryption */
	case SC_ERR_MISMATCH:        /* not the asked address */
	case SC_ERR_EXPIRED:
	case SC_ERR_NOT_YET_VALID:
	case SC_ERR_CHANGED:         /* refused: differs from the remembered one */
	case SC_ERR_REJECTED:
	case SC_ERR_PROTOCOL:
	case SC_ERR_POLICY:          /* e.g. a cert_url answer pointing at plain http:// */
		return CLI_PROTOCOL;
	default:
		/* Malformed input here came from the server (or its cert_url site). */
		if (sc_status_category(st) == SC_CAT_INPUT)
			return CLI_PROTOCOL;
		return cli_exit_for(st);
	}
}

static const char *pin_text(enum sc_pin p)
{
	switch (p) {
	case SC_PIN_NEW: return "first time seen for this address: remembered";
	case SC_PIN_SAME: return "the certificate remembered for this address";
	case SC_PIN_CHANGED_CA: return "CHANGED, accepted: it chains to a trusted S/MIME CA";
	case SC_PIN_ACCEPTED_NEW: return "CHANGED, accepted and remembered (--accept-new)";
	case SC_PIN_OFF: return "not remembered (no known-certificates store)";
	}
	return "?";
}

static int parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct fetch_opts *o, const char **address)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "chain", no_argument, NULL, 'c' },
		{ "ca-file", required_argument, NULL, 'a' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "accept-new", no_argument, NULL, 'N' },
		{ "no-cache", no_argument, NULL, 'C' },
		{ "known-certs", required_argument, NULL, 'K' },
		{ "smime-ca-file", required_argument, NULL, 'S' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "dnssec-anchor", required_argument, NULL, 'A' },
		{ "mx-port", required_argument, NULL, 'p' },
		{ "config", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch, port;

	memset(o, 0, sizeof *o);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': o->lk.server = optarg; break;
		case 'c': o->lk.chain = 1; break;
		case 'a': o->lk.ca_file = optarg; break;
		case 'k': o->lk.insecure = 1; break;
		case 'j': o->json = 1; break;
		case 'N': o->lk.accept_new = 1; break;
		case 'C': o->no_cache = 1; break;
		case 'K': o->lk.known_file = strcmp(optarg, "none") ? optarg : ""; break;
		case 'S': o->lk.smime_ca_file = optarg; break;
		case 'r': o->lk.resolver = optarg; break;
		case 'A': o->lk.dnssec_anchor = optarg; break;
		case 'f': o->config = optarg; break;
		case 'p':
			if (parse_int(optarg, 1, 65535, &port) != 0) {
				cli_err(VERB, "--mx-port '%s': expected a port number", optarg);
				return CLI_USAGE;
			}
			o->lk.mx_port = optarg;
			break;
		case 'h': usage(stdout); return -1;
		default:
			return cli_bad_option(VERB, argv);
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

/* Options not given on the command line come from the client configuration. */
static void apply_config(struct fetch_opts *o, const struct userconf *uc)
{
	struct sc_lookup_opts *lk = &o->lk;

	userconf_lookup_defaults(lk, uc);
	if (o->no_cache)
		lk->cache_dir = "";
	/* "none": no DNSSEC trust anchor at all (every answer insecure). */
	if (lk->dnssec_anchor && !strcmp(lk->dnssec_anchor, "none"))
		lk->dnssec_anchor = "";
}

static int output(const struct sc_lookup_result *r, const struct fetch_opts *o,
		  const char *address)
{
	size_t n = o->lk.chain ? sc_cert_count(r->cert) : 1;
	int rc;

	rc = o->json ? print_json(r->cert, n, address, r) : print_pem(r->cert, n);
	if (rc != 0) {
		cli_err(VERB, "cannot encode the certificate");
		return CLI_FAILURE;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_err(VERB, "cannot write to standard output");
		return CLI_FAILURE;
	}
	return CLI_OK;
}

int cmd_fetch(int argc, char **argv)
{
	char address[SC_ADDR_KEY_MAX + 8], err[1024] = "";
	struct userconf uc;
	struct sc_lookup_result r;
	struct fetch_opts o;
	struct sc_addr a;
	const char *arg = NULL, *why = NULL;
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
	st = userconf_load(&uc, o.config, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		userconf_free(&uc);
		return CLI_FAILURE;
	}
	apply_config(&o, &uc);
	/* A closed connection must be an error return, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (o.lk.insecure)
		cli_err(VERB, "warning: --insecure: server not authenticated");
	st = sc_lookup_cert(&a, &o.lk, &r, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s: %s", address, err[0] ? err : sc_strerror(st));
		userconf_free(&uc);
		return exit_for(st);
	}
	if (r.trust == SC_TRUST_INSECURE)
		cli_err(VERB, "warning: %s: no TLS: the answer travelled in plaintext",
			r.server[0] ? r.server : "server");
	cli_err(VERB, "%s: trust %s: %s", address, sc_trust_name(r.trust), r.detail);
	cli_err(VERB, "%s: pin %s: %s", address, sc_pin_name(r.pin), pin_text(r.pin));
	rc = output(&r, &o, address);
	sc_cert_free(r.cert);
	userconf_free(&uc);
	return rc;
}
