/*
 * cmd_send.c - `smtpcert send [-t] [-f FROM] [--submit HOST:PORT] [--encrypt
 * always|opportunistic|never] [--sign] [LOOKUP] [RECIPIENT...] < message`: a
 * sendmail(8)-compatible sender that encrypts by default. Parses the command
 * line the way sendmail does (the options mutt, git send-email and cron pass,
 * such as -i, -oi, -oem, -odi, -FName, -B8BITMIME, are accepted; those that mean
 * nothing here are ignored), reads the client config (cli/userconf.h), then
 * runs the steps in send_input.c, send_header.c, send_crypt.c and send_smtp.c
 * and reports each recipient that failed, by name, on stderr. Exit codes are
 * sendmail's (sysexits.h, see send.h and smtpcert(1)). Runs in the user's process.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "send.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert send [-t] [-i] [-f FROM] [-F NAME] [--submit HOST[:PORT]]\n"
		"                     [--encrypt always|opportunistic|never] [--sign|--no-sign]\n"
		"                     [--server HOST[:PORT]] [--ca-file F] [--insecure]\n"
		"                     [--config F] [RECIPIENT...] < message\n"
		"\n"
		"Send the RFC 5322 message on standard input, encrypted with S/MIME to every\n"
		"recipient's certificate (fetched with CERT from the recipient's mail server),\n"
		"like sendmail(8): usable as the sendmail of mutt, git send-email and cron.\n"
		"\n"
		"  -t                    recipients from To, Cc and Bcc too; Bcc is removed\n"
		"  -i, -oi               a line with a single \".\" does not end the message\n"
		"  -f FROM, -r FROM      envelope sender (default: `from` in the config)\n"
		"  -F NAME               display name when a From field is added\n"
		"  -v                    say what happens, on stderr\n"
		"  --submit HOST[:PORT]  submission server (default port 587; STARTTLS, AUTH\n"
		"                        with submit_user); default: `submit` in the config,\n"
		"                        else each recipient domain's MX hosts\n"
		"  --encrypt MODE        always: never send plaintext; opportunistic (default):\n"
		"                        encrypt when every recipient has a certificate;\n"
		"                        never: send as is\n"
		"  --sign, --no-sign     S/MIME signature with `key` and `cert` of the config\n"
		"  --key F, --cert F, --passphrase-file F   override the config's\n"
		"  --hide-subject        the Subject goes inside the encryption\n"
		"  --server HOST[:PORT]  look certificates up here instead of the MX hosts\n"
		"  --ca-file F           trust anchors for the servers' TLS certificates\n"
		"  --insecure            do not verify TLS certificates (said on stderr)\n"
		"  --accept-new          accept a recipient certificate that changed\n"
		"  --config F            client config (default ~/.config/smtpcert/config)\n"
		"  --max-size N          largest message in octets (default 64 MiB)\n"
		"  --mx-port PORT        port of the MX hosts (default 25; for tests)\n"
		"  --resolver ADDR[@PORT], --dnssec-anchor F|none   DNS for MX and lookups\n"
		"\n"
		"Other sendmail options (-oem, -odi, -B, -N, -R, -V, -U, -m ...) are accepted\n"
		"and ignored. Exit codes (sysexits.h): 0 sent; 64 usage; 65 bad message;\n"
		"67 unknown recipient or no certificate under --encrypt always; 68 no such\n"
		"domain; 69 refused; 74 I/O error; 75 temporary failure, try again later;\n"
		"76 protocol error; 77 authentication refused; 78 configuration error.\n"
		"\n"
		"example (mutt):  set sendmail=\"smtpcert send --encrypt always\"\n");
}

/* ---- the command line --------------------------------------------------------------- */

struct longopt {
	const char *name;
	int has_arg;
	int id;
};

enum {
	L_SUBMIT = 1, L_ENCRYPT, L_SIGN, L_NO_SIGN, L_SERVER, L_CA_FILE, L_INSECURE,
	L_ACCEPT_NEW, L_CONFIG, L_MX_PORT, L_MAX_SIZE, L_HIDE_SUBJECT, L_KEY, L_CERT,
	L_PASSPHRASE_FILE, L_FROM, L_VERBOSE, L_RESOLVER, L_DNSSEC_ANCHOR, L_HELP
};

static const struct longopt longopts[] = {
	{ "submit", 1, L_SUBMIT }, { "encrypt", 1, L_ENCRYPT }, { "sign", 0, L_SIGN },
	{ "no-sign", 0, L_NO_SIGN }, { "server", 1, L_SERVER }, { "ca-file", 1, L_CA_FILE },
	{ "insecure", 0, L_INSECURE }, { "accept-new", 0, L_ACCEPT_NEW },
	{ "config", 1, L_CONFIG }, { "mx-port", 1, L_MX_PORT }, { "max-size", 1, L_MAX_SIZE },
	{ "hide-subject", 0, L_HIDE_SUBJECT }, { "key", 1, L_KEY }, { "cert", 1, L_CERT },
	{ "passphrase-file", 1, L_PASSPHRASE_FILE }, { "from", 1, L_FROM },
	{ "verbose", 0, L_VERBOSE }, { "resolver", 1, L_RESOLVER },
	{ "dnssec-anchor", 1, L_DNSSEC_ANCHOR }, { "help", 0, L_HELP },
};

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v == 0)
		return -1;
	*out = v;
	return 0;
}

static int long_option(struct send_opts *o, int id, const char *v)
{
	switch (id) {
	case L_SUBMIT: o->submit = v; break;
	case L_ENCRYPT:
		if (userconf_parse_encrypt(v, &o->encrypt) != 0) {
			cli_err(SEND_VERB, "--encrypt '%s': expected always, opportunistic or never",
				v);
			return EX_USAGE;
		}
		o->encrypt_set = 1;
		break;
	case L_SIGN: o->sign = 1; break;
	case L_NO_SIGN: o->sign = 0; break;
	case L_SERVER: o->server = v; break;
	case L_CA_FILE: o->ca_file = v; break;
	case L_INSECURE: o->insecure = 1; break;
	case L_ACCEPT_NEW: o->accept_new = 1; break;
	case L_CONFIG: o->config = v; break;
	case L_MX_PORT: o->mx_port = v; break;
	case L_MAX_SIZE:
		if (parse_size(v, &o->max_size) != 0) {
			cli_err(SEND_VERB, "--max-size '%s': expected a positive number of octets", v);
			return EX_USAGE;
		}
		break;
	case L_HIDE_SUBJECT: o->hide_subject = 1; break;
	case L_KEY: o->key = v; break;
	case L_CERT: o->cert = v; break;
	case L_PASSPHRASE_FILE: o->passphrase_file = v; break;
	case L_FROM: o->from = v; break;
	case L_VERBOSE: o->verbose = 1; break;
	case L_RESOLVER: o->resolver = v; break;
	case L_DNSSEC_ANCHOR:
		/* "none": no anchor, as for fetch */
		o->dnssec_anchor = strcmp(v, "none") ? v : "";
		break;
	default: usage(stdout); return -1;
	}
	return EX_OK;
}

/* "--name", "--name=value", "--name value". *@p i is advanced past a value. */
static int parse_long(struct send_opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i] + 2, *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);

	for (size_t k = 0; k < sizeof longopts / sizeof longopts[0]; k++) {
		const struct longopt *l = &longopts[k];
		const char *v = NULL;

		if (strlen(l->name) != len || strncmp(l->name, a, len))
			continue;
		if (l->has_arg) {
			if (eq)
				v = eq + 1;
			else if (*i + 1 < argc)
				v = argv[++*i];
			else {
				cli_err(SEND_VERB, "--%s needs a value (try --help)", l->name);
				return EX_USAGE;
			}
		} else if (eq) {
			cli_err(SEND_VERB, "--%s takes no value", l->name);
			return EX_USAGE;
		}
		return long_option(o, l->id, v);
	}
	cli_err(SEND_VERB, "unknown option '%s' (try --help)", argv[*i]);
	return EX_USAGE;
}

/* sendmail's single-letter options, clustered as getopt allows ("-ti"). Those
 * that take a value take the rest of the word or the next word. */
static int parse_short(struct send_opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];

	for (size_t k = 1; a[k]; k++) {
		char ch = a[k];
		const char *v = NULL;

		switch (ch) {
		case 't': o->extract = 1; continue;
		case 'i': o->ignore_dots = 1; continue;
		case 'v': o->verbose = 1; continue;
		case 'U': case 'm': case 'n': case 'G': case 's':
			/* initial submission, me too, no aliasing, gateway, save From
			 * lines: nothing to do here */
			continue;
		case 'o':
			/* -oX[value]: sendmail's old-style options. -oi is -i; the rest
			 * (-oem error mode, -odi/-odb delivery mode, -om ...) are about a
			 * local queue we do not have. */
			if (a[k + 1] == 'i' && !a[k + 2])
				o->ignore_dots = 1;
			return EX_OK;
		case 'b':
			/* -bm (deliver mail, the default) is the only mode here */
			if (!strcmp(a + k, "bm"))
				return EX_OK;
			cli_err(SEND_VERB, "'%s': only -bm (send a message) is supported", a);
			return EX_USAGE;
		case 'q': case 'I':
			cli_err(SEND_VERB, "'%s': there is no mail queue here", a);
			return EX_USAGE;
		case 'd': case 'A': case 'O':
			return EX_OK; /* debug flags, -Am/-Ac, -Ooption=value */
		case 'f': case 'r': case 'F': case 'B': case 'N': case 'R': case 'V':
		case 'X': case 'C': case 'h': case 'L': case 'p':
			if (a[k + 1])
				v = a + k + 1;
			else if (*i + 1 < argc)
				v = argv[++*i];
			else {
				cli_err(SEND_VERB, "-%c needs a value", ch);
				return EX_USAGE;
			}
			if (ch == 'f' || ch == 'r') {
				/* "<>" is sendmail's null sender (for bounces) */
				o->from = v;
			} else if (ch == 'F') {
				o->fullname = v;
			} else if (ch == 'C') {
				/* -C is sendmail's config file; ours has --config */
			}
			/* -B body type, -N DSN notify, -R DSN return, -V envid, -X log
			 * file, -h hop count, -L tag, -p protocol: ignored */
			return EX_OK;
		default:
			cli_err(SEND_VERB, "unknown option '-%c' (try --help)", ch);
			return EX_USAGE;
		}
	}
	return EX_OK;
}

/* @return EX_OK, an exit code, or -1 after --help. */
static int parse_args(int argc, char **argv, struct send_opts *o)
{
	int rc = EX_OK, i;

	memset(o, 0, sizeof *o);
	o->sign = -1;
	o->max_size = SEND_MAX_DEFAULT;
	o->args = calloc((size_t)argc + 1, sizeof *o->args);
	if (!o->args)
		return EX_OSERR;
	/* Options and recipients may mix, as with GNU getopt; "--" ends options
	 * (mutt passes it before the recipients). */
	for (i = 1; i < argc && rc == EX_OK; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			o->args[o->nargs++] = argv[i];
		else if (a[1] == '-')
			rc = parse_long(o, argc, argv, &i);
		else
			rc = parse_short(o, argc, argv, &i);
	}
	for (; i < argc && rc == EX_OK; i++)
		o->args[o->nargs++] = argv[i];
	return rc;
}

/* ---- running it --------------------------------------------------------------------- */

/* The exit code for the whole run: the first permanent failure, else a
 * temporary one, else 0. Each failed recipient is named on stderr. */
static int report(const struct send_ctx *c)
{
	int perm = EX_OK, temp = EX_OK;

	for (size_t i = 0; i < c->nrcpt; i++) {
		const struct send_rcpt *r = &c->rcpt[i];

		if (r->rc == EX_OK) {
			if (c->o.verbose)
				fprintf(stderr, "smtpcert: send: %s: %s%s\n", r->text, r->why,
					c->encrypted ? ", encrypted" : "");
			continue;
		}
		cli_err(SEND_VERB, "%s: %s", r->text,
			r->why[0] ? r->why : "not sent");
		if (r->rc == EX_TEMPFAIL)
			temp = EX_TEMPFAIL;
		else if (r->rc != SEND_PENDING && perm == EX_OK)
			perm = r->rc;
	}
	if (perm != EX_OK)
		return perm;
	if (temp != EX_OK)
		return temp;
	/* only unsent recipients left: something else stopped the run */
	for (size_t i = 0; i < c->nrcpt; i++)
		if (c->rcpt[i].rc != EX_OK)
			return EX_SOFTWARE;
	return EX_OK;
}

static int run(struct send_ctx *c)
{
	char err[512] = "";
	int rc;

	if (userconf_load(&c->uc, c->o.config, err, sizeof err) != SC_OK) {
		cli_err(SEND_VERB, "%s", err);
		return EX_CONFIG;
	}
	if (!c->o.extract && c->o.nargs == 0) {
		cli_err(SEND_VERB, "no recipients: give them as arguments, or -t to take them "
			"from the message (try --help)");
		return EX_USAGE;
	}
	rc = send_read_input(&c->o, &c->fd, &c->size);
	if (rc != EX_OK)
		return rc;
	rc = send_prepare(c);
	for (int i = 0; i < c->o.nargs && rc == EX_OK; i++)
		rc = send_add_rcpt_arg(c, c->o.args[i]);
	if (rc != EX_OK)
		return rc;
	if (c->nrcpt == 0) {
		cli_err(SEND_VERB, "no recipients in the message's To, Cc or Bcc");
		return EX_USAGE;
	}
	send_mark_hidden(c);
	rc = send_protect(c);
	if (rc == EX_OK)
		rc = send_deliver(c);
	if (rc == EX_OK)
		rc = send_hidden_copies(c);
	if (rc != EX_OK) {
		(void)report(c);
		return rc;
	}
	return report(c);
}

int cmd_send(int argc, char **argv)
{
	struct send_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	c.fd = -1;
	c.plain_fd = -1;
	rc = parse_args(argc, argv, &c.o);
	if (rc < 0) {
		free(c.o.args);
		return EX_OK;
	}
	/* A server that goes away must be an error return, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (rc == EX_OK)
		rc = run(&c);
	for (size_t i = 0; i < c.nrcpt; i++)
		sc_cert_free(c.rcpt[i].cert);
	free(c.rcpt);
	free(c.o.args);
	if (c.fd >= 0)
		close(c.fd);
	if (c.plain_fd >= 0)
		close(c.plain_fd);
	sc_cert_free(c.own);
	free(c.visible);
	userconf_free(&c.uc);
	return rc;
}
