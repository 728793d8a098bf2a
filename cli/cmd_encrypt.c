/*
 * cmd_encrypt.c - `smtpcert encrypt`: S/MIME-encrypt the RFC 5322 message on
 * standard input (or --in) to every --to address and write the
 * application/pkcs7-mime message to standard output (or --out).
 *
 * A recipient's certificate is the --cert file whose email matches the address
 * (checked with sc_cert_check_for_encryption(): address, validity, key usage),
 * else the one sc_lookup_cert() finds (MX or --server, authenticated channel,
 * known-certificates pin, cache), as `fetch` does. The sender's own certificate
 * (config `cert`, or --self-cert) is added so that the sent copy stays readable,
 * unless --no-self. Every certificate is in hand before the message is read:
 * when one is missing nothing is written, and the library only ever writes the
 * encrypted form. Runs in the user's process.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "userconf.h"

#define VERB "encrypt"
/* Most recipients of one message (--to addresses, plus the sender). */
#define ENC_RCPT_MAX 100
#define ENC_CERT_MAX 100

struct enc_args {
	const char *to[ENC_RCPT_MAX];
	size_t nto;
	const char *certs[ENC_CERT_MAX];
	size_t ncerts;
	const char *self_cert, *in, *out, *config;
	int no_self, hide_subject, cbc, lf, no_cache;
	struct sc_lookup_opts lk;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert encrypt --to ADDR... [--cert F...] [LOOKUP] [--hide-subject]\n"
		"                        [--cbc] [--self-cert F | --no-self] [--lf]\n"
		"                        [--in F] [--out F] < message > smime-message\n"
		"\n"
		"S/MIME-encrypt a message (RFC 8551) to every --to address.\n"
		"From, To, Cc, Date, Message-ID, Subject and the other routing fields stay\n"
		"readable in the outer header; the rest of the header and the body are\n"
		"encrypted. AES-256-CBC, or AES-256-GCM when every recipient's certificate\n"
		"says it supports it.\n"
		"\n"
		"  --to ADDR             a recipient (repeat, or a comma-separated list)\n"
		"  --cert F              a recipient's certificate (PEM/DER), matched to a\n"
		"                        --to address by its email; other addresses are looked\n"
		"                        up as `smtpcert fetch` does\n"
		"  --hide-subject        encrypt the Subject too; outside it reads \"...\"\n"
		"  --cbc                 AES-256-CBC even when all recipients take AES-GCM\n"
		"  --self-cert F         your certificate (default: config `cert`), added as a\n"
		"                        recipient so that you can read what you sent\n"
		"  --no-self             do not add your own certificate\n"
		"  --lf                  write LF line ends (local files) instead of CRLF\n"
		"  --in F, --out F       files instead of standard input / output\n"
		"  --config F            client configuration file\n"
		"LOOKUP (addresses without --cert):\n"
		"  --server HOST[:PORT]  ask this server instead of the domain's MX hosts\n"
		"  --ca-file F           trust anchors for the servers' TLS certificates\n"
		"  --insecure            no TLS verification (says so on stderr)\n"
		"  --accept-new          accept and remember a changed certificate\n"
		"  --smime-ca-file F     a changed certificate chaining to these CAs is accepted\n"
		"  --known-certs F       remembered certificates ('none': off)\n"
		"  --no-cache            neither use nor fill the cache\n"
		"  --resolver ADDR[@PORT], --dnssec-anchor F, --mx-port PORT\n"
		"\n"
		"exit: 0 encrypted, 1 a recipient has no certificate, 2 usage, 3 temporary\n"
		"failure, 4 network/TLS, 6 bad message or certificate, 7 other error;\n"
		"nothing is written unless every recipient has a certificate\n"
		"\n"
		"example: smtpcert encrypt --to bob@example.org < mail > encrypted\n");
}

static int parse_args(int argc, char **argv, struct enc_args *a)
{
	enum { O_TO = 256, O_CERT, O_HIDE, O_CBC, O_SELF, O_NOSELF, O_LF, O_IN, O_OUT,
	       O_CONFIG, O_SERVER, O_CA, O_INSECURE, O_ACCEPT, O_SMIMECA, O_KNOWN,
	       O_NOCACHE, O_RESOLVER, O_ANCHOR, O_MXPORT };
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, O_TO },
		{ "cert", required_argument, NULL, O_CERT },
		{ "hide-subject", no_argument, NULL, O_HIDE },
		{ "cbc", no_argument, NULL, O_CBC },
		{ "self-cert", required_argument, NULL, O_SELF },
		{ "no-self", no_argument, NULL, O_NOSELF },
		{ "lf", no_argument, NULL, O_LF },
		{ "in", required_argument, NULL, O_IN },
		{ "out", required_argument, NULL, O_OUT },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "server", required_argument, NULL, O_SERVER },
		{ "ca-file", required_argument, NULL, O_CA },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "accept-new", no_argument, NULL, O_ACCEPT },
		{ "smime-ca-file", required_argument, NULL, O_SMIMECA },
		{ "known-certs", required_argument, NULL, O_KNOWN },
		{ "no-cache", no_argument, NULL, O_NOCACHE },
		{ "resolver", required_argument, NULL, O_RESOLVER },
		{ "dnssec-anchor", required_argument, NULL, O_ANCHOR },
		{ "mx-port", required_argument, NULL, O_MXPORT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(a, 0, sizeof(*a));
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case O_TO:
			if (a->nto == ENC_RCPT_MAX) {
				cli_err(VERB, "more than %d --to options", ENC_RCPT_MAX);
				return CLI_USAGE;
			}
			a->to[a->nto++] = optarg;
			break;
		case O_CERT:
			if (a->ncerts == ENC_CERT_MAX) {
				cli_err(VERB, "more than %d --cert options", ENC_CERT_MAX);
				return CLI_USAGE;
			}
			a->certs[a->ncerts++] = optarg;
			break;
		case O_HIDE: a->hide_subject = 1; break;
		case O_CBC: a->cbc = 1; break;
		case O_SELF: a->self_cert = optarg; break;
		case O_NOSELF: a->no_self = 1; break;
		case O_LF: a->lf = 1; break;
		case O_IN: a->in = optarg; break;
		case O_OUT: a->out = optarg; break;
		case O_CONFIG: a->config = optarg; break;
		case O_SERVER: a->lk.server = optarg; break;
		case O_CA: a->lk.ca_file = optarg; break;
		case O_INSECURE: a->lk.insecure = 1; break;
		case O_ACCEPT: a->lk.accept_new = 1; break;
		case O_SMIMECA: a->lk.smime_ca_file = optarg; break;
		case O_KNOWN: a->lk.known_file = strcmp(optarg, "none") ? optarg : ""; break;
		case O_NOCACHE: a->no_cache = 1; break;
		case O_RESOLVER: a->lk.resolver = optarg; break;
		case O_ANCHOR: a->lk.dnssec_anchor = optarg; break;
		case O_MXPORT: a->lk.mx_port = optarg; break;
		case 'h': usage(stdout); return -1;
		default:
			return cli_bad_option(VERB, argv);
		}
	}
	if (optind != argc) {
		cli_err(VERB, "unexpected argument '%s' (recipients go with --to; try --help)",
			argv[optind]);
		return CLI_USAGE;
	}
	if (a->nto == 0) {
		cli_err(VERB, "no recipient: give --to ADDR (try --help)");
		return CLI_USAGE;
	}
	if (a->no_self && a->self_cert) {
		cli_err(VERB, "--self-cert and --no-self exclude each other");
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* Options not given on the command line come from the client configuration. */
static void apply_config(struct enc_args *a, const struct userconf *uc)
{
	struct sc_lookup_opts *lk = &a->lk;

	userconf_lookup_defaults(lk, uc);
	if (a->no_cache)
		lk->cache_dir = "";
}

/* The certificates to encrypt to, collected before the message is read. */
struct enc_set {
	struct sc_addr addr[ENC_RCPT_MAX];
	size_t naddr;
	sc_cert *files[ENC_CERT_MAX];      /* --cert, in command-line order */
	sc_cert *looked_up[ENC_RCPT_MAX];
	const sc_cert *use[ENC_RCPT_MAX + 1];
	size_t nuse;
	sc_cert *self;
};

static void set_free(struct enc_set *s)
{
	for (size_t i = 0; i < ENC_CERT_MAX; i++)
		sc_cert_free(s->files[i]);
	for (size_t i = 0; i < ENC_RCPT_MAX; i++)
		sc_cert_free(s->looked_up[i]);
	sc_cert_free(s->self);
}

/* Every --to value is an address list ("Bob <bob@x>, carol@y"); duplicates go. */
static int collect_addresses(const struct enc_args *a, struct enc_set *s)
{
	for (size_t i = 0; i < a->nto; i++) {
		struct sc_addr tmp[ENC_RCPT_MAX];
		size_t n = 0;
		sc_status st = sc_mime_addresses(a->to[i], strlen(a->to[i]), tmp, ENC_RCPT_MAX,
						 &n);

		if (st != SC_OK || n == 0) {
			cli_err(VERB, "--to '%s': %s", a->to[i],
				st == SC_OK ? "no address" : st == SC_ERR_TOO_MANY
				? "too many addresses" : "not a mail address");
			return CLI_USAGE;
		}
		for (size_t j = 0; j < n; j++) {
			size_t k;

			for (k = 0; k < s->naddr; k++)
				if (sc_addr_equal(&s->addr[k], &tmp[j]))
					break;
			if (k < s->naddr)
				continue;
			if (s->naddr == ENC_RCPT_MAX) {
				cli_err(VERB, "more than %d recipients", ENC_RCPT_MAX);
				return CLI_USAGE;
			}
			s->addr[s->naddr++] = tmp[j];
		}
	}
	return CLI_OK;
}

static int load_cert_files(const struct enc_args *a, struct enc_set *s)
{
	for (size_t i = 0; i < a->ncerts; i++) {
		sc_status st = sc_cert_load_file(a->certs[i], &s->files[i]);

		if (st != SC_OK) {
			cli_err(VERB, "%s: %s", a->certs[i], sc_strerror(st));
			return cli_exit_for(st) == CLI_NOT_FOUND ? CLI_DATA : cli_exit_for(st);
		}
	}
	return CLI_OK;
}

/* The certificate of one address: a matching --cert file, else a lookup. */
static int cert_for(const struct enc_args *a, struct enc_set *s, size_t i)
{
	const struct sc_addr *addr = &s->addr[i];
	char text[SC_ADDR_KEY_MAX + 8], err[1024] = "";
	struct sc_lookup_result r;
	sc_status st;

	if (sc_addr_format(addr, text, sizeof text) != SC_OK)
		snprintf(text, sizeof text, "%s@%s", addr->local, addr->domain);
	for (size_t j = 0; j < a->ncerts; j++) {
		if (!sc_cert_has_email(s->files[j], addr))
			continue;
		st = sc_cert_check_for_encryption(s->files[j], addr, time(NULL), err, sizeof err);
		if (st != SC_OK) {
			cli_err(VERB, "%s: %s: %s", text, a->certs[j], err[0] ? err : sc_strerror(st));
			return CLI_DATA;
		}
		s->use[s->nuse++] = s->files[j];
		return CLI_OK;
	}
	memset(&r, 0, sizeof r);
	st = sc_lookup_cert(addr, &a->lk, &r, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s: no usable certificate: %s", text, err[0] ? err : sc_strerror(st));
		return cli_exit_for(st);
	}
	cli_err(VERB, "%s: certificate from %s (trust %s, %s)", text,
		r.server[0] ? r.server : "cache", sc_trust_name(r.trust), sc_pin_name(r.pin));
	s->looked_up[i] = r.cert;
	s->use[s->nuse++] = r.cert;
	return CLI_OK;
}

static int same_cert(const sc_cert *x, const sc_cert *y)
{
	uint8_t fx[32], fy[32];

	sc_cert_fingerprint(x, fx);
	sc_cert_fingerprint(y, fy);
	return !memcmp(fx, fy, sizeof fx);
}

/* RFC 8551 3.3 leaves it to the sender; we add ourselves so that the copy in
 * the Sent folder stays readable (docs/protocol.md "S/MIME messages"). */
static int add_self(const struct enc_args *a, const struct userconf *uc, struct enc_set *s)
{
	const char *file = a->self_cert ? a->self_cert : uc->cert;
	sc_status st;

	if (a->no_self)
		return CLI_OK;
	if (!file) {
		cli_err(VERB, "note: no `cert` in the configuration (or --self-cert): you will "
			"not be able to read this message yourself");
		return CLI_OK;
	}
	st = sc_cert_load_file(file, &s->self);
	if (st == SC_OK)
		st = sc_cert_check_time(s->self, time(NULL));
	if (st != SC_OK) {
		cli_err(VERB, "your certificate %s: %s (renew it, or --no-self)", file,
			sc_strerror(st));
		return CLI_DATA;
	}
	for (size_t i = 0; i < s->nuse; i++)
		if (same_cert(s->use[i], s->self))
			return CLI_OK;
	s->use[s->nuse++] = s->self;
	return CLI_OK;
}

static int gather(const struct enc_args *a, const struct userconf *uc, struct enc_set *s)
{
	int rc = collect_addresses(a, s);

	if (rc == CLI_OK)
		rc = load_cert_files(a, s);
	if (rc == CLI_OK && a->lk.insecure)
		cli_err(VERB, "warning: --insecure: certificate servers are not authenticated");
	/* A --cert for nobody is a mistake to report before any lookup. */
	for (size_t j = 0; rc == CLI_OK && j < a->ncerts; j++) {
		size_t i;

		for (i = 0; i < s->naddr; i++)
			if (sc_cert_has_email(s->files[j], &s->addr[i]))
				break;
		if (i == s->naddr) {
			cli_err(VERB, "%s: for none of the --to addresses", a->certs[j]);
			rc = CLI_USAGE;
		}
	}
	for (size_t i = 0; rc == CLI_OK && i < s->naddr; i++)
		rc = cert_for(a, s, i);
	if (rc == CLI_OK)
		rc = add_self(a, uc, s);
	return rc;
}

static int run(const struct enc_args *a, struct enc_set *s)
{
	unsigned flags = (a->hide_subject ? SC_SMIME_HIDE_SUBJECT : 0) |
			 (a->cbc ? SC_SMIME_CBC_ONLY : 0) | (a->lf ? SC_SMIME_OUT_LF : 0);
	char err[512] = "";
	int in = 0, out = 1;
	sc_status st;

	if (a->in && (in = open(a->in, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_err(VERB, "%s: %m", a->in);
		return CLI_FAILURE;
	}
	if (a->out && (out = open(a->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		cli_err(VERB, "%s: %m", a->out);
		if (in != 0)
			close(in);
		return CLI_FAILURE;
	}
	st = sc_smime_encrypt(in, out, s->use, s->nuse, flags, err, sizeof err);
	if (out != 1 && close(out) != 0 && st == SC_OK)
		st = SC_ERR_IO;
	if (in != 0)
		close(in);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? (strncmp(err, "encrypt: ", 9) ? err : err + 9)
					   : sc_strerror(st));
		if (a->out)
			(void)unlink(a->out);
		if (st == SC_ERR_IO || st == SC_ERR_NOMEM || st == SC_ERR_INTERNAL)
			return CLI_FAILURE;
		return CLI_DATA;
	}
	return CLI_OK;
}

int cmd_encrypt(int argc, char **argv)
{
	struct enc_args a;
	struct userconf uc;
	struct enc_set *s;
	char err[512] = "";
	sc_status st;
	int rc;

	rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	memset(&uc, 0, sizeof uc);
	st = userconf_load(&uc, a.config, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		userconf_free(&uc);
		return CLI_FAILURE;
	}
	apply_config(&a, &uc);
	/* A closed connection or output pipe must be an error return, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	s = calloc(1, sizeof(*s));
	if (!s) {
		userconf_free(&uc);
		return CLI_FAILURE;
	}
	rc = gather(&a, &uc, s);
	if (rc == CLI_OK)
		rc = run(&a, s);
	set_free(s);
	free(s);
	userconf_free(&uc);
	return rc;
}
