/*
 * cmd_check.c - `smtpcert check CERT.pem --email ADDR [-c CONFIG]`: the verdict
 * the server's acceptance policy would give a CERC submission of CERT.pem for
 * ADDR, computed offline by the same library function (sc_policy_check), plus
 * what a client choosing algorithms wants to know: the key and the RFC 4262
 * SMIMECapabilities. With -c the daemon's configuration supplies the served
 * domains, the CRLs (crl_file) and the anchors (submission_ca_file); without it
 * any domain is judged and no CRL or anchor applies. Runs in the user's process.
 *
 * stdout, first line: "acceptable" or "not acceptable: <reason>" (the reason
 * the server puts after "550 5.7.1 Invalid Certificate: "), then "key: ...",
 * "smime-capabilities: ...", and the leaf's identity for a human reader.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define VERB "check"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert check CERT.pem --email ADDRESS [-c CONFIG]\n"
		"\n"
		"Say whether the server would accept CERT.pem (PEM or DER, leaf first, then\n"
		"its chain) as a CERC submission for ADDRESS, and why not.\n"
		"\n"
		"  --email ADDRESS   the address the certificate would be submitted for\n"
		"  -c, --config F    smtpcertd.conf: served domains, crl_file and\n"
		"                    submission_ca_file apply as in the daemon\n"
		"\n"
		"exit: 0 acceptable, 2 usage, 6 not acceptable, 7 other error\n"
		"\n"
		"example: smtpcert check alice.pem --email alice@example.org -c /etc/smtpcertd.conf\n");
}

/* The CRLs of every crl_file entry, as the daemon loads them. */
static int load_crls(const sc_config *cfg, sc_crlset **out)
{
	const char *const *files;
	size_t n = sc_config_list(cfg, "crl_file", &files);
	char err[512] = "";

	*out = NULL;
	if (n == 0)
		return CLI_OK;
	if (sc_crlset_new(out) != SC_OK) {
		cli_err(VERB, "out of memory");
		return CLI_FAILURE;
	}
	for (size_t i = 0; i < n; i++) {
		sc_status st = sc_crlset_add_file(*out, files[i], err, sizeof err);

		if (st != SC_OK) {
			cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
			sc_crlset_free(*out);
			*out = NULL;
			return CLI_FAILURE;
		}
	}
	return CLI_OK;
}

static void print_details(const sc_cert *c)
{
	char buf[1024];
	uint8_t fp[32];
	char hex[65];
	sc_status st;

	sc_cert_key_desc(c, buf, sizeof buf);
	printf("key: %s\n", buf);
	st = sc_cert_smime_caps(c, buf, sizeof buf);
	printf("smime-capabilities: %s\n", st == SC_OK ? (buf[0] ? buf : "(empty)")
				       : st == SC_ERR_NOT_FOUND ? "(none)" : "(undecodable)");
	sc_cert_subject(c, buf, sizeof buf);
	printf("subject: %s\n", buf);
	sc_cert_issuer(c, buf, sizeof buf);
	printf("issuer: %s\n", buf);
	sc_cert_fingerprint(c, fp);
	sc_hex(fp, sizeof fp, hex);
	printf("sha256: %s\n", hex);
}

static int parse_args(int argc, char **argv, const char **file, const char **email,
		      const char **config)
{
	static const struct option longopts[] = {
		{ "email", required_argument, NULL, 'e' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	*email = *config = NULL;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'e': *email = optarg; break;
		case 'c': *config = optarg; break;
		case 'h': usage(stdout); return -1;
		default:
			cli_err(VERB, "unknown or incomplete option '%s' (try --help)",
				argv[optind - 1]);
			return CLI_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_err(VERB, "%s (try --help)", optind == argc ? "missing CERT.pem"
								: "exactly one CERT.pem expected");
		return CLI_USAGE;
	}
	if (!*email) {
		cli_err(VERB, "--email ADDRESS is required (try --help)");
		return CLI_USAGE;
	}
	*file = argv[optind];
	return CLI_OK;
}

int cmd_check(int argc, char **argv)
{
	const char *file, *email, *config, *why = NULL;
	struct sc_policy p = { 0 };
	struct sc_addr a;
	sc_config *cfg = NULL;
	sc_crlset *crls = NULL;
	sc_cert *c = NULL;
	char err[512] = "", reason[256] = "";
	sc_status st;
	int rc;

	rc = parse_args(argc, argv, &file, &email, &config);
	if (rc < 0)
		return CLI_OK;
	if (rc != CLI_OK)
		return rc;
	st = sc_addr_parse(email, strlen(email), SC_ADDR_UTF8, &a, &why);
	if (st != SC_OK) {
		cli_err(VERB, "'%s' is not a mail address: %s", email, why ? why : sc_strerror(st));
		return CLI_USAGE;
	}
	if (config) {
		st = sc_config_load(config, &cfg, err, sizeof err);
		if (st != SC_OK) {
			cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
			return CLI_FAILURE;
		}
		rc = load_crls(cfg, &crls);
		if (rc != CLI_OK)
			goto out;
		p.cfg = cfg;
		p.crls = crls;
		p.ca_file = sc_config_str(cfg, "submission_ca_file");
	}
	p.now = time(NULL);
	st = sc_cert_load_file(file, &c);
	if (st == SC_ERR_IO) {
		cli_err(VERB, "%s: cannot read", file);
		rc = CLI_FAILURE;
		goto out;
	}
	if (st != SC_OK) {
		/* What the server answers for an upload it cannot parse. */
		cli_err(VERB, "%s: %s", file, sc_strerror(st));
		printf("not acceptable: not a certificate\n");
		rc = CLI_DATA;
		goto out;
	}
	st = sc_policy_check(&p, c, &a, reason, sizeof reason);
	if (st == SC_OK) {
		printf("acceptable\n");
		rc = CLI_OK;
	} else if (st == SC_ERR_POLICY) {
		printf("not acceptable: %s\n", reason);
		rc = CLI_DATA;
	} else {
		cli_err(VERB, "%s", reason[0] ? reason : sc_strerror(st));
		rc = CLI_FAILURE;
		goto out;
	}
	print_details(c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_err(VERB, "cannot write to standard output");
		rc = CLI_FAILURE;
	}
out:
	sc_cert_free(c);
	sc_crlset_free(crls);
	sc_config_free(cfg);
	return rc;
}
