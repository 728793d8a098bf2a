/*
 * cmd_verify.c - `smtpcert verify`: check the S/MIME signature of the message
 * on standard input (or --in): multipart/signed, signed-data, or a bare CMS
 * SignedData (DER/PEM; with --content F for a detached one). The signature
 * first, then the signer's chain against --ca-file (default: the configured
 * smime_ca_file, else the system store) unless --no-chain. With --out the
 * message as it was before signing is written, only after it verified.
 * Runs in the user's process.
 *
 * stdout (stderr when --out -): "signature valid, signed by ADDR (SUBJECT),
 * chain verified" or "... chain not checked (--no-chain)"; warnings for a From
 * field that does not name the signer (RFC 8550 3) and for a SHA-1/MD5 digest.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "userconf.h"

#define VERB "verify"

struct verify_args {
	const char *ca_file, *out, *in, *content, *config;
	int no_chain;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert verify [--ca-file F] [--no-chain] [--out F] [--in F]\n"
		"                       [--content F] < signed-message\n"
		"\n"
		"Check an S/MIME signature (multipart/signed or signed-data, also inside\n"
		"a message that `smtpcert decrypt` wrote), then the signer's certificate\n"
		"chain. Also reads a bare CMS SignedData (DER or PEM).\n"
		"\n"
		"  --ca-file F    trust anchors (PEM) for the signer's chain (default:\n"
		"                 config `smime_ca_file`, else the system store)\n"
		"  --no-chain     check the signature only, not who signed\n"
		"  --out F        write the verified message (\"-\" = standard output)\n"
		"  --content F    the content of a detached bare CMS signature\n"
		"  --in F         read F instead of standard input\n"
		"  --config F     client configuration file\n"
		"\n"
		"exit: 0 valid, 2 usage, 6 BAD signature, untrusted signer, not signed or\n"
		"an algorithm that is not supported, 7 other error\n"
		"\n"
		"example: smtpcert verify --ca-file ca.pem --out mail.txt < signed.eml\n");
}

static int parse_args(int argc, char **argv, struct verify_args *a)
{
	enum { O_CA = 256, O_NOCHAIN, O_OUT, O_IN, O_CONTENT, O_CONFIG };
	static const struct option longopts[] = {
		{ "ca-file", required_argument, NULL, O_CA },
		{ "no-chain", no_argument, NULL, O_NOCHAIN },
		{ "out", required_argument, NULL, O_OUT },
		{ "in", required_argument, NULL, O_IN },
		{ "content", required_argument, NULL, O_CONTENT },
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
		case O_CA: a->ca_file = optarg; break;
		case O_NOCHAIN: a->no_chain = 1; break;
		case O_OUT: a->out = optarg; break;
		case O_IN: a->in = optarg; break;
		case O_CONTENT: a->content = optarg; break;
		case O_CONFIG: a->config = optarg; break;
		case 'h': usage(stdout); return -1;
		default:
			return cli_bad_option(VERB, argv);
		}
	}
	return cli_no_operands(VERB, argc, argv);
}

/* A bad argument reaching the library is ours, not the message's: failure. */
static int verify_exit(sc_status st)
{
	return st == SC_ERR_ARG ? CLI_FAILURE : cli_exit_data(st);
}

static void report(FILE *f, const struct sc_smime_signer *s, int no_chain)
{
	fprintf(f, "signature valid, signed by %s%s%s%s, %s\n", s->email[0] ? s->email : "",
		s->email[0] ? " (" : "", s->subject, s->email[0] ? ")" : "",
		s->chain_verified ? "chain verified"
				  : no_chain ? "chain not checked (--no-chain)" : "chain not checked");
	/* RFC 8550 3: a mismatch is shown, the signature itself is fine. */
	if (s->from_match == 0)
		fprintf(stderr, "smtpcert: verify: WARNING: the From field does not name the "
			"signer (%s): the message may not be from who it says\n",
			s->email[0] ? s->email : "certificate without an address");
	/* RFC 8551 2.1: receivers may still accept SHA-1; say it is weak. */
	if (!strcmp(s->digest, "sha1") || !strcmp(s->digest, "md5"))
		fprintf(stderr, "smtpcert: verify: WARNING: weak digest algorithm %s\n",
			s->digest);
}

static int open_files(const struct verify_args *a, int *in, int *content, int *out)
{
	*in = 0;
	*content = -1;
	*out = -1;
	if (a->in && (*in = open(a->in, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_err(VERB, "%s: %m", a->in);
		return CLI_FAILURE;
	}
	if (a->content && (*content = open(a->content, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_err(VERB, "%s: %m", a->content);
		return CLI_FAILURE;
	}
	if (a->out && !strcmp(a->out, "-"))
		*out = 1;
	else if (a->out &&
		 (*out = open(a->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		cli_err(VERB, "%s: %m", a->out);
		return CLI_FAILURE;
	}
	return CLI_OK;
}

int cmd_verify(int argc, char **argv)
{
	struct verify_args a;
	struct userconf uc;
	struct sc_smime_signer s;
	const char *ca;
	char err[512] = "";
	sc_status st;
	int rc, in = 0, content = -1, out = -1;

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
	ca = a.ca_file ? a.ca_file : uc.smime_ca_file;
	rc = open_files(&a, &in, &content, &out);
	if (rc == CLI_OK) {
		if (content >= 0)
			st = sc_smime_verify_detached(in, content, out, ca, a.no_chain, &s, err,
						      sizeof err);
		else
			st = sc_smime_verify(in, out, ca, a.no_chain, &s, err, sizeof err);
		if (out > 1 && close(out) != 0 && st == SC_OK)
			st = SC_ERR_IO;
		if (st == SC_OK) {
			report(out == 1 ? stderr : stdout, &s, a.no_chain);
		} else {
			cli_err(VERB, "%s", err[0] ? (strncmp(err, "verify: ", 8) ? err : err + 8)
						   : sc_strerror(st));
			if (out > 1)
				(void)unlink(a.out);
		}
		rc = verify_exit(st);
	}
	if (in > 0)
		close(in);
	if (content >= 0)
		close(content);
	userconf_free(&uc);
	return rc;
}
