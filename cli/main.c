/*
 * main.c - smtpcert: dispatch to cmd_<verb>.c. Runs as the invoking user.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct verb verbs[] = {
	{ "fetch", cmd_fetch, "fetch a recipient's certificate from a mail server (CERT/CERS)" },
	{ "check", cmd_check, "would the server accept this certificate for an address? (offline)" },
	{ "submit", cmd_submit, "submit your certificate to your mail server (CERC, after AUTH)" },
	{ "sign", cmd_sign, "S/MIME-sign a message (multipart/signed, or --opaque)" },
	{ "verify", cmd_verify, "check an S/MIME signature and the signer's chain" },
	{ "encrypt", cmd_encrypt, "S/MIME-encrypt a message to its recipients' certificates" },
	{ "decrypt", cmd_decrypt, "decrypt an S/MIME message with your key" },
	{ "send", cmd_send, "send mail, S/MIME-encrypted to the recipients (sendmail-compatible)" },
	{ "keygen", cmd_keygen, "make your S/MIME key and certificate (or request)" },
	{ "admin", cmd_admin, "administer the certificate repository (import, list, remove)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: smtpcert VERB [OPTIONS] [ARGS]\n\nverbs:\n");
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f, "\n'smtpcert VERB --help' describes a verb's options.\n"
		   "example: smtpcert fetch --server mx.example.org:25 bob@example.org\n");
}

void cli_err(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "smtpcert: %s%s", verb ? verb : "", verb ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_exit_for(sc_status st)
{
	switch (sc_status_category(st)) {
	case SC_CAT_OK:
		return CLI_OK;
	case SC_CAT_TEMP:
		return st == SC_ERR_NETWORK || st == SC_ERR_TIMEOUT ? CLI_NETWORK : CLI_TEMP;
	case SC_CAT_SECURITY:
		return CLI_NETWORK;
	case SC_CAT_PROTOCOL:
		return CLI_PROTOCOL;
	case SC_CAT_INPUT:
		return CLI_DATA;
	case SC_CAT_LOOKUP:
		return st == SC_ERR_NOT_FOUND ? CLI_NOT_FOUND : CLI_DATA;
	default:
		return CLI_FAILURE;
	}
}

int main(int argc, char **argv)
{
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;

	/* Installed (or linked) as "sendmail", it is `smtpcert send`: programs
	 * that run /usr/sbin/sendmail need no wrapper. */
	base = base ? base + 1 : argc > 0 ? argv[0] : "";
	if (!strcmp(base, "sendmail"))
		return cmd_send(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("smtpcert %s\n", smtpcert_version());
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].fn(argc - 1, argv + 1);
	cli_err(NULL, "unknown verb '%s' (try smtpcert --help)", argv[1]);
	return CLI_USAGE;
}
