/*
 * cmd_keygen.c - `smtpcert keygen --email ADDR ...`: make the user's S/MIME key
 * with a self-signed certificate and/or a certificate request (sc_keygen()), so
 * that `smtpcert submit` can publish it. Runs in the user's process.
 *
 * The private key is encrypted with a passphrase unless --no-passphrase says
 * otherwise: from --passphrase-file, or asked twice on /dev/tty with echo off.
 * Without a terminal and without either option it is a usage error, never an
 * unencrypted key by accident. The prompt recommends a passphrase different from
 * the mailbox password (the proposal asks for this: the mail server knows that
 * one). `keygen = no` in the system configuration file disables the verb entirely
 * (userconf.h), as the proposal requires that key generation can be turned off.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "userconf.h"

#define VERB "keygen"
#define SECRET_MAX 1024
#define PROMPT_TRIES 3

struct keygen_args {
	const char *email;
	const char *key_type;
	const char *passphrase_file;
	int no_passphrase;
	const char *out_key;
	const char *out_cert;
	const char *out_csr;
	const char *pkcs11;
	const char *pin_file;
	const char *days;
	const char *config;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert keygen --email ADDR [--key-type rsa3072|p256]\n"
		"                       [--passphrase-file F | --no-passphrase]\n"
		"                       --out-key F (--out-cert F | --out-csr F) [--days N]\n"
		"       smtpcert keygen --email ADDR --pkcs11 URI [--pin-file F]\n"
		"                       (--out-cert F | --out-csr F) [--key-type ...] [--days N]\n"
		"\n"
		"Make your S/MIME key and a self-signed certificate (--out-cert) and/or a\n"
		"certificate request for a CA (--out-csr), for ADDR. Publish the certificate\n"
		"with 'smtpcert submit --cert F ADDR'. Existing files are never overwritten.\n"
		"\n"
		"  --email ADDR          your address (a non-ASCII local part is written as an\n"
		"                        RFC 9598 SmtpUTF8Mailbox)\n"
		"  --key-type T          rsa3072 (default) or p256\n"
		"  --out-key F           the private key: PKCS#8, encrypted, mode 0600\n"
		"  --out-cert F          the self-signed certificate (PEM)\n"
		"  --out-csr F           a PKCS#10 certificate request (PEM)\n"
		"  --passphrase-file F   the key's passphrase is the first line of F\n"
		"                        (default: asked twice on the terminal)\n"
		"  --no-passphrase       write the key unencrypted (protect it yourself)\n"
		"  --pkcs11 URI          generate the key on a PKCS#11 token (RFC 7512 URI,\n"
		"                        e.g. 'pkcs11:token=MyToken;object=mail'); the key never\n"
		"                        leaves the token, so there is no --out-key\n"
		"  --pin-file F          the token's PIN is the first line of F (default: the\n"
		"                        URI's pin-value/pin-source, else asked on the terminal)\n"
		"  --days N              certificate validity, 1 to 3650 days (default 365)\n"
		"  --config F            client configuration file (see smtpcert.conf(5))\n"
		"\n"
		"Choose a passphrase different from your mailbox password: the mail server\n"
		"knows that one, and the key must stay yours alone.\n"
		"An administrator can disable this verb with 'keygen = no' in\n"
		"/etc/smtpcert/smtpcert.conf.\n"
		"\n"
		"exit: 0 written, 2 usage (including: no terminal to ask on), 6 an output file\n"
		"      exists or the address cannot be certified, 7 other error (disabled,\n"
		"      token, PIN, I/O)\n"
		"\n"
		"example: smtpcert keygen --email alice@example.org --out-key ~/.alice.key \\\n"
		"             --out-cert alice.pem\n");
}

/* ---- asking on the terminal ------------------------------------------------------- */

/* A new passphrase, typed twice. @return CLI_OK or an exit code. */
static int passphrase_prompt(const char *address, char *buf, size_t size)
{
	char again[SECRET_MAX + 2], line[SC_ADDR_KEY_MAX + 160];
	struct cli_tty tty;

	if (cli_tty_open(&tty) != 0) {
		cli_err(VERB, "no terminal to ask for a passphrase on: use --passphrase-file F, "
			"or --no-passphrase for an unencrypted key");
		return CLI_USAGE;
	}
	snprintf(line, sizeof line,
		 "Choose a passphrase for the private key of %s.\n"
		 "Use a passphrase different from your mailbox password.\n", address);
	cli_tty_say(&tty, line);
	for (int i = 0; i < PROMPT_TRIES; i++) {
		long n = cli_tty_ask(&tty, "Passphrase: ", buf, size);

		if (n < 0) {
			cli_tty_say(&tty, "Too long or unreadable; try again.\n");
			continue;
		}
		if (n == 0) {
			cli_tty_say(&tty, "An empty passphrase does not protect the key (use "
				    "--no-passphrase for that); try again.\n");
			continue;
		}
		if (cli_tty_ask(&tty, "Same passphrase again: ", again, sizeof again) >= 0 &&
		    !strcmp(buf, again)) {
			explicit_bzero(again, sizeof again);
			cli_tty_close(&tty);
			return CLI_OK;
		}
		cli_tty_say(&tty, "The two passphrases differ; try again.\n");
	}
	explicit_bzero(again, sizeof again);
	explicit_bzero(buf, size);
	cli_tty_close(&tty);
	cli_err(VERB, "no passphrase chosen");
	return CLI_USAGE;
}

static int pin_prompt(const char *uri, char *buf, size_t size)
{
	char prompt[160];
	struct cli_tty tty;
	long n;

	buf[0] = '\0';
	if (cli_tty_open(&tty) != 0)
		return CLI_OK; /* the library says the token needs a PIN */
	snprintf(prompt, sizeof prompt, "PIN for %.*s: ", cli_key_shown_len(uri), uri);
	n = cli_tty_ask(&tty, prompt, buf, size);
	cli_tty_close(&tty);
	if (n <= 0) {
		explicit_bzero(buf, size);
		cli_err(VERB, "no PIN given");
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* ---- the verb --------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct keygen_args *a)
{
	static const struct option longopts[] = {
		{ "email", required_argument, NULL, 'e' },
		{ "key-type", required_argument, NULL, 't' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "no-passphrase", no_argument, NULL, 'N' },
		{ "out-key", required_argument, NULL, 'k' },
		{ "out-cert", required_argument, NULL, 'c' },
		{ "out-csr", required_argument, NULL, 'r' },
		{ "pkcs11", required_argument, NULL, 'p' },
		{ "pin-file", required_argument, NULL, 'I' },
		{ "days", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(a, 0, sizeof *a);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'e': a->email = optarg; break;
		case 't': a->key_type = optarg; break;
		case 'P': a->passphrase_file = optarg; break;
		case 'N': a->no_passphrase = 1; break;
		case 'k': a->out_key = optarg; break;
		case 'c': a->out_cert = optarg; break;
		case 'r': a->out_csr = optarg; break;
		case 'p': a->pkcs11 = optarg; break;
		case 'I': a->pin_file = optarg; break;
		case 'd': a->days = optarg; break;
		case 'f': a->config = optarg; break;
		case 'h': usage(stdout); return -1;
		default:
			return cli_bad_option(VERB, argv);
		}
	}
	if (cli_no_operands(VERB, argc, argv) != CLI_OK)
		return CLI_USAGE;
	if (!a->email) {
		cli_err(VERB, "--email ADDR is required (try --help)");
		return CLI_USAGE;
	}
	if (!a->out_cert && !a->out_csr) {
		cli_err(VERB, "--out-cert F or --out-csr F is required (try --help)");
		return CLI_USAGE;
	}
	if (a->passphrase_file && a->no_passphrase) {
		cli_err(VERB, "--passphrase-file and --no-passphrase exclude each other");
		return CLI_USAGE;
	}
	if (a->pkcs11) {
		if (!sc_key_is_pkcs11(a->pkcs11)) {
			cli_err(VERB, "--pkcs11 takes a pkcs11: URI (RFC 7512)");
			return CLI_USAGE;
		}
		if (a->out_key || a->passphrase_file || a->no_passphrase) {
			cli_err(VERB, "a key on a token is not written to a file: --pkcs11 "
				"excludes --out-key, --passphrase-file and --no-passphrase");
			return CLI_USAGE;
		}
	} else {
		if (!a->out_key) {
			cli_err(VERB, "--out-key F is required (try --help)");
			return CLI_USAGE;
		}
		if (a->pin_file) {
			cli_err(VERB, "--pin-file goes with --pkcs11");
			return CLI_USAGE;
		}
	}
	return CLI_OK;
}

static int parse_numbers(const struct keygen_args *a, struct sc_keygen_opts *o)
{
	char *end;
	long d;

	if (!a->key_type || !strcmp(a->key_type, "rsa3072")) {
		o->type = SC_KEYGEN_RSA3072;
	} else if (!strcmp(a->key_type, "p256")) {
		o->type = SC_KEYGEN_P256;
	} else {
		cli_err(VERB, "--key-type: expected rsa3072 or p256, not '%s'", a->key_type);
		return CLI_USAGE;
	}
	if (a->days) {
		errno = 0;
		d = strtol(a->days, &end, 10);
		if (errno || end == a->days || *end || a->days[0] == '+' || d < 1 || d > 3650) {
			cli_err(VERB, "--days: expected a number of days from 1 to 3650");
			return CLI_USAGE;
		}
		o->days = (int)d;
	}
	return CLI_OK;
}

/* Is key generation allowed? Reads the configuration files. */
static int keygen_allowed(const char *config, struct userconf *uc)
{
	char err[600];
	sc_status st = userconf_load(uc, config, err, sizeof err);

	if (st != SC_OK) {
		cli_err(VERB, "%s", err);
		return CLI_FAILURE;
	}
	if (uc->keygen_locked) {
		cli_err(VERB, "key generation is disabled by the administrator (keygen = no in "
			"%s)", uc->system_path);
		return CLI_FAILURE;
	}
	if (!uc->keygen) {
		cli_err(VERB, "key generation is disabled (keygen = no in %s)", uc->user_path);
		return CLI_FAILURE;
	}
	return CLI_OK;
}

static int run(const struct keygen_args *a, struct sc_keygen_opts *o, struct sc_key_opts *ko,
	       char *secret, size_t ssize)
{
	char err[600], address[SC_ADDR_KEY_MAX + 8];
	sc_status st;
	int rc;

	if (sc_addr_format(o->email, address, sizeof address) != SC_OK)
		return CLI_USAGE;
	if (a->pkcs11) {
		o->pkcs11_uri = a->pkcs11;
		o->pkcs11 = ko;
		if (a->pin_file) {
			st = userconf_read_secret(a->pin_file, secret, ssize, err, sizeof err);
			if (st != SC_OK) {
				cli_err(VERB, "--pin-file %s", err);
				return CLI_FAILURE;
			}
			ko->pin = secret;
		} else if (!strstr(a->pkcs11, "pin-value=") && !strstr(a->pkcs11, "pin-source=")) {
			if ((rc = pin_prompt(a->pkcs11, secret, ssize)) != CLI_OK)
				return rc;
			ko->pin = secret[0] ? secret : NULL;
		}
	} else {
		o->out_key = a->out_key;
		if (a->passphrase_file) {
			st = userconf_read_secret(a->passphrase_file, secret, ssize, err, sizeof err);
			if (st != SC_OK) {
				cli_err(VERB, "--passphrase-file %s", err);
				return st == SC_ERR_SYNTAX || st == SC_ERR_TOO_LONG ? CLI_DATA
										   : CLI_FAILURE;
			}
			o->passphrase = secret;
		} else if (!a->no_passphrase) {
			if ((rc = passphrase_prompt(address, secret, ssize)) != CLI_OK)
				return rc;
			o->passphrase = secret;
		}
	}
	st = sc_keygen(o, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		if (st == SC_ERR_EXISTS || st == SC_ERR_UNSUPPORTED)
			return CLI_DATA;
		return st == SC_ERR_ARG ? CLI_USAGE : CLI_FAILURE;
	}
	printf("%s key for %s%s\n", o->type == SC_KEYGEN_P256 ? "P-256" : "RSA-3072", address,
	       a->pkcs11 ? " generated on the token" : "");
	if (o->out_key)
		printf("  private key:  %s (%s, mode 0600)\n", o->out_key,
		       o->passphrase ? "encrypted" : "NOT encrypted");
	if (o->out_cert)
		printf("  certificate:  %s (self-signed, %d days)\n", o->out_cert,
		       o->days ? o->days : 365);
	if (o->out_csr)
		printf("  request:      %s\n", o->out_csr);
	if (o->out_cert)
		printf("next: smtpcert submit --cert %s %s\n", o->out_cert, address);
	return fflush(stdout) == 0 ? CLI_OK : CLI_FAILURE;
}

int cmd_keygen(int argc, char **argv)
{
	struct keygen_args a;
	struct sc_keygen_opts o = { 0 };
	struct sc_key_opts ko = { 0 };
	struct userconf uc;
	struct sc_addr addr;
	const char *why = NULL;
	char secret[SECRET_MAX + 2] = "";
	int rc;

	rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	rc = keygen_allowed(a.config, &uc);
	if (rc != CLI_OK) {
		userconf_free(&uc);
		return rc;
	}
	if (sc_addr_parse(a.email, strlen(a.email), SC_ADDR_UTF8, &addr, &why) != SC_OK) {
		cli_err(VERB, "--email '%s' is not a mail address%s%s", a.email, why ? ": " : "",
			why ? why : "");
		userconf_free(&uc);
		return CLI_USAGE;
	}
	o.email = &addr;
	o.out_cert = a.out_cert;
	o.out_csr = a.out_csr;
	rc = parse_numbers(&a, &o);
	/* The configured module serves URIs that do not name their own. */
	ko.pkcs11_module = uc.pkcs11_module;
	if (rc == CLI_OK)
		rc = run(&a, &o, &ko, secret, sizeof secret);
	explicit_bzero(secret, sizeof secret);
	userconf_free(&uc);
	return rc;
}
