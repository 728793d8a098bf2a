/*
 * cmd_sign.c - `smtpcert sign`: S/MIME-sign the RFC 5322 message on standard
 * input (or --in) with a key from a file or a PKCS#11 token and write the signed
 * message (multipart/signed, or signed-data with --opaque) to standard output
 * (or --out). Defaults for --key, --cert, --passphrase-file and the PKCS#11
 * module come from the client configuration (userconf.h). Runs in the user's
 * process; the key stays in the library (a token key never leaves the token).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "userconf.h"

#define VERB "sign"

struct sign_args {
	const char *key, *cert, *passphrase_file, *module, *in, *out, *config;
	int opaque, lf, no_passphrase;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert sign [--key F|pkcs11:URI] [--cert F] [--passphrase-file F]\n"
		"                     [--opaque] [--lf] [--in F] [--out F] < message > signed\n"
		"\n"
		"S/MIME-sign a message (RFC 8551): multipart/signed with a detached\n"
		"signature (readable without S/MIME), SHA-256, your certificate and its chain\n"
		"included. From, To, Cc, Date, Subject and the other routing fields stay in\n"
		"the outer header; the rest of the header and the body are signed.\n"
		"\n"
		"  --key F|URI           private key: PEM/DER file (optionally encrypted) or\n"
		"                        an RFC 7512 pkcs11: URI (default: config `key`)\n"
		"  --cert F              your certificate, then its chain (default: `cert`)\n"
		"  --passphrase-file F   first line: the key's passphrase or the token PIN\n"
		"                        (without it, asked on the terminal when needed)\n"
		"  --pkcs11-module M     PKCS#11 module (default: the URI's module-path,\n"
		"                        $SMTPCERT_PKCS11_MODULE, p11-kit-proxy)\n"
		"  --opaque              application/pkcs7-mime signed-data instead (only\n"
		"                        S/MIME readers can show it)\n"
		"  --lf                  write LF line ends (local files) instead of CRLF\n"
		"  --in F, --out F       files instead of standard input / output\n"
		"  --config F            client configuration file\n"
		"\n"
		"exit: 0 signed, 2 usage, 6 bad message, key or certificate (wrong\n"
		"passphrase, key not matching the certificate), 7 other error\n"
		"\n"
		"example: smtpcert sign --key alice.key --cert alice.pem < mail > signed\n");
}

static int parse_args(int argc, char **argv, struct sign_args *a)
{
	enum { O_KEY = 256, O_CERT, O_PASS, O_MOD, O_OPAQUE, O_LF, O_IN, O_OUT, O_CONFIG };
	static const struct option longopts[] = {
		{ "key", required_argument, NULL, O_KEY },
		{ "cert", required_argument, NULL, O_CERT },
		{ "passphrase-file", required_argument, NULL, O_PASS },
		{ "pkcs11-module", required_argument, NULL, O_MOD },
		{ "opaque", no_argument, NULL, O_OPAQUE },
		{ "lf", no_argument, NULL, O_LF },
		{ "in", required_argument, NULL, O_IN },
		{ "out", required_argument, NULL, O_OUT },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(a, 0, sizeof(*a));
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case O_KEY: a->key = optarg; break;
		case O_CERT: a->cert = optarg; break;
		case O_PASS: a->passphrase_file = optarg; break;
		case O_MOD: a->module = optarg; break;
		case O_OPAQUE: a->opaque = 1; break;
		case O_LF: a->lf = 1; break;
		case O_IN: a->in = optarg; break;
		case O_OUT: a->out = optarg; break;
		case O_CONFIG: a->config = optarg; break;
		case 'h': usage(stdout); return -1;
		default:
			return cli_bad_option(VERB, argv);
		}
	}
	return cli_no_operands(VERB, argc, argv);
}

static int load_key(const struct sign_args *a, const struct userconf *uc, sc_key **key)
{
	struct cli_key_req r = { 0 };

	r.spec = a->key ? a->key : uc->key;
	r.secret_file = a->passphrase_file ? a->passphrase_file : uc->passphrase_file;
	r.module = a->module ? a->module : uc->pkcs11_module;
	/* standard input is the message: ask on the terminal */
	r.ask = 1;
	return cli_load_key_verb(VERB, &r, key);
}

static int open_files(const struct sign_args *a, int *in, int *out)
{
	*in = 0;
	*out = 1;
	if (a->in && (*in = open(a->in, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_err(VERB, "%s: %m", a->in);
		return CLI_FAILURE;
	}
	if (a->out && (*out = open(a->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		cli_err(VERB, "%s: %m", a->out);
		if (a->in)
			close(*in);
		return CLI_FAILURE;
	}
	return CLI_OK;
}

int cmd_sign(int argc, char **argv)
{
	struct sign_args a;
	struct userconf uc;
	sc_key *key = NULL;
	sc_cert *cert = NULL;
	char err[512] = "";
	const char *cert_file;
	sc_status st;
	int rc, in = 0, out = 1;

	memset(&uc, 0, sizeof uc);
	rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	st = userconf_load(&uc, a.config, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		userconf_free(&uc);
		return CLI_FAILURE;
	}
	cert_file = a.cert ? a.cert : uc.cert;
	if (!(a.key ? a.key : uc.key) || !cert_file) {
		cli_err(VERB, "--key and --cert are required (or `key` and `cert` in the "
			"configuration; try --help)");
		userconf_free(&uc);
		return CLI_USAGE;
	}
	st = sc_cert_load_file(cert_file, &cert);
	if (st != SC_OK) {
		cli_err(VERB, "%s: %s", cert_file, sc_strerror(st));
		userconf_free(&uc);
		return cli_exit_data(st);
	}
	rc = load_key(&a, &uc, &key);
	if (rc == CLI_OK)
		rc = open_files(&a, &in, &out);
	if (rc == CLI_OK) {
		st = sc_smime_sign(in, out, key, cert, a.opaque, a.lf ? SC_SMIME_OUT_LF : 0, err,
				   sizeof err);
		if (out != 1 && close(out) != 0 && st == SC_OK)
			st = SC_ERR_IO;
		if (st != SC_OK) {
			cli_err(VERB, "%s", err[0] ? (strncmp(err, "sign: ", 6) ? err : err + 6)
						   : sc_strerror(st));
			if (a.out)
				(void)unlink(a.out);
		}
		rc = cli_exit_data(st);
		if (in != 0)
			close(in);
	}
	sc_key_free(key);
	sc_cert_free(cert);
	userconf_free(&uc);
	return rc;
}
