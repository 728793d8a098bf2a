/*
 * keyload.c - cli_load_key(): load the user's private key (a file or an RFC 7512
 * pkcs11: URI) for sign, decrypt and send, with the passphrase or PIN from a
 * file or, when the verb allows it, asked on the terminal. Returns the library
 * status so that each verb maps it to its own exit codes (send: sysexits).
 * Runs in the user's process; every copy of the secret is wiped before return.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "userconf.h"

#define KEYLOAD_SECRET_MAX 1024
/* A token counts wrong PINs toward its lockout: one try there. */
#define KEYLOAD_TRIES_FILE 3
#define KEYLOAD_TRIES_TOKEN 1

int cli_key_shown_len(const char *spec)
{
	/* RFC 7512 2.3: the query holds pin-value / pin-source: never show it */
	return (int)(sc_key_is_pkcs11(spec) ? strcspn(spec, "?") : strlen(spec));
}

sc_status cli_load_key(const struct cli_key_req *r, sc_key **key, int *from_secret_file,
		       char *err, size_t errlen)
{
	struct sc_key_opts o = { 0 };
	char secret[KEYLOAD_SECRET_MAX];
	int tries = sc_key_is_pkcs11(r->spec) ? KEYLOAD_TRIES_TOKEN : KEYLOAD_TRIES_FILE;
	sc_status st;

	*from_secret_file = 0;
	o.pkcs11_module = r->module;
	if (r->secret_file) {
		st = userconf_read_secret(r->secret_file, secret, sizeof secret, err, errlen);
		if (st != SC_OK) {
			*from_secret_file = 1;
			return st;
		}
		/* one secret: the file key's passphrase or the token's PIN */
		o.passphrase = secret;
		o.pin = secret;
	}
	err[0] = '\0';
	st = sc_key_load(r->spec, &o, key, err, errlen);
	for (; st == SC_ERR_AUTH && !r->secret_file && r->ask && tries > 0; tries--) {
		char prompt[300];

		snprintf(prompt, sizeof prompt, "%s for %.*s: ",
			 sc_key_is_pkcs11(r->spec) ? "PIN" : "Passphrase",
			 cli_key_shown_len(r->spec) > 200 ? 200 : cli_key_shown_len(r->spec),
			 r->spec);
		if (cli_ask_secret(prompt, secret, sizeof secret) != 0)
			break;
		o.passphrase = secret;
		o.pin = secret;
		err[0] = '\0';
		st = sc_key_load(r->spec, &o, key, err, errlen);
	}
	explicit_bzero(secret, sizeof secret);
	return st;
}

int cli_load_key_verb(const char *verb, const struct cli_key_req *r, sc_key **key)
{
	char err[512] = "";
	int from_secret_file;
	sc_status st;

	st = cli_load_key(r, key, &from_secret_file, err, sizeof err);
	if (st == SC_OK)
		return CLI_OK;
	if (from_secret_file) {
		cli_err(verb, "passphrase file: %s", err[0] ? err : sc_strerror(st));
		return CLI_DATA;
	}
	cli_err(verb, "%.*s: %s%s", cli_key_shown_len(r->spec), r->spec,
		err[0] ? err : sc_strerror(st),
		st == SC_ERR_AUTH && !r->secret_file ? " (give it with --passphrase-file)" : "");
	return cli_exit_data(st);
}
