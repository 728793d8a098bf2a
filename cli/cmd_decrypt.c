/*
 * cmd_decrypt.c - `smtpcert decrypt`: decrypt the S/MIME message on standard
 * input (or --in) with the user's key (a file or a PKCS#11 token) and write
 * the message to standard output (or --out): its readable header without the
 * S/MIME Content-* fields, then the decrypted entity. Defaults for --key,
 * --cert, --passphrase-file and the PKCS#11 module come from the client
 * configuration (userconf.h). Nothing is written unless decryption succeeded
 * (the library holds the plaintext until the integrity check passed). Runs in
 * the user's process; a token key never leaves the token.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "userconf.h"

#define VERB "decrypt"

struct dec_args {
	const char *key, *cert, *passphrase_file, *module, *in, *out, *config;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert decrypt [--key F|pkcs11:URI] [--cert F] [--passphrase-file F]\n"
		"                        [--in F] [--out F] < smime-message > message\n"
		"\n"
		"Decrypt an S/MIME message (RFC 8551 application/pkcs7-mime enveloped-data\n"
		"or authEnveloped-data) encrypted to your certificate.\n"
		"\n"
		"  --key F|URI           private key: PEM/DER file (optionally encrypted) or\n"
		"                        an RFC 7512 pkcs11: URI (default: config `key`)\n"
		"  --cert F              your certificate (default: config `cert`)\n"
		"  --passphrase-file F   first line: the key's passphrase or the token PIN\n"
		"  --pkcs11-module M     PKCS#11 module (default: the URI's module-path,\n"
		"                        $SMTPCERT_PKCS11_MODULE, p11-kit-proxy)\n"
		"  --in F, --out F       files instead of standard input / output\n"
		"  --config F            client configuration file\n"
		"\n"
		"exit: 0 decrypted, 2 usage, 6 not an encrypted message, not encrypted to\n"
		"this certificate, wrong key or passphrase, altered message, or an algorithm\n"
		"that is not supported (X25519, ChaCha20-Poly1305, RC2: the message names it),\n"
		"7 other error\n"
		"\n"
		"example: smtpcert decrypt --key me.key --cert me.pem < encrypted > mail\n");
}

static int parse_args(int argc, char **argv, struct dec_args *a)
{
	enum { O_KEY = 256, O_CERT, O_PASS, O_MOD, O_IN, O_OUT, O_CONFIG };
	static const struct option longopts[] = {
		{ "key", required_argument, NULL, O_KEY },
		{ "cert", required_argument, NULL, O_CERT },
		{ "passphrase-file", required_argument, NULL, O_PASS },
		{ "pkcs11-module", required_argument, NULL, O_MOD },
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

static int load_key(const struct dec_args *a, const struct userconf *uc, const char *spec,
		    sc_key **key)
{
	struct cli_key_req r = { 0 };

	r.spec = spec;
	r.secret_file = a->passphrase_file ? a->passphrase_file : uc->passphrase_file;
	r.module = a->module ? a->module : uc->pkcs11_module;
	return cli_load_key_verb(VERB, &r, key);
}

static int run(const struct dec_args *a, const sc_key *key, const sc_cert *cert)
{
	char err[512] = "";
	int in = 0, out = 1;
	sc_status st;

	if (a->in && (in = open(a->in, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_err(VERB, "%s: %m", a->in);
		return CLI_FAILURE;
	}
	/* The plaintext file is private to the user. */
	if (a->out && (out = open(a->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		cli_err(VERB, "%s: %m", a->out);
		if (in != 0)
			close(in);
		return CLI_FAILURE;
	}
	st = sc_smime_decrypt(in, out, key, cert, err, sizeof err);
	if (out != 1 && close(out) != 0 && st == SC_OK)
		st = SC_ERR_IO;
	if (in != 0)
		close(in);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? (strncmp(err, "decrypt: ", 9) ? err : err + 9)
					   : sc_strerror(st));
		if (a->out)
			(void)unlink(a->out);
	}
	return cli_exit_data(st);
}

int cmd_decrypt(int argc, char **argv)
{
	struct dec_args a;
	struct userconf uc;
	sc_key *key = NULL;
	sc_cert *cert = NULL;
	char err[512] = "";
	const char *key_spec, *cert_file;
	sc_status st;
	int rc;

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
	key_spec = a.key ? a.key : uc.key;
	cert_file = a.cert ? a.cert : uc.cert;
	if (!key_spec || !cert_file) {
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
	rc = load_key(&a, &uc, key_spec, &key);
	if (rc == CLI_OK)
		rc = run(&a, key, cert);
	sc_key_free(key);
	sc_cert_free(cert);
	userconf_free(&uc);
	return rc;
}
