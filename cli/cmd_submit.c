/*
 * cmd_submit.c - `smtpcert submit --cert FILE [LOOKUP] [--user U]
 * [--password-file F] ADDRESS`: hand the user's own certificate to their mail
 * server with CERC (docs/protocol.md): STARTTLS (always: a password follows),
 * AUTH PLAIN, then the upload. The server is --server HOST[:PORT] or the MX hosts
 * of ADDRESS's domain in order (RFC 5321 5.1), as for fetch. Prints
 * "<submission-id> <state>" (queued for the administrator, or accepted).
 *
 * The password comes from --password-file (first line) or is asked for on the
 * terminal (/dev/tty, echo off), never from the command line where `ps` shows it;
 * copies are wiped once sent. Runs in the user's process.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define VERB "submit"
/* RFC 4616 2: at most 255 octets; the buffer takes a line terminator too. */
#define PASSWORD_MAX 255

struct submit_opts {
	const char *cert;
	const char *server;
	const char *ca_file;
	const char *user;
	const char *password_file;
	int insecure;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert submit --cert FILE [--server HOST[:PORT]] [--ca-file F]\n"
		"                       [--insecure] [--user U] [--password-file F] ADDRESS\n"
		"\n"
		"Submit your certificate for ADDRESS to your mail server (SMTP CERC), after\n"
		"STARTTLS and AUTH. The server queues it for its administrator (or accepts it\n"
		"at once) and prints a submission id.\n"
		"\n"
		"  --cert FILE           the certificate (PEM or DER), optionally followed by\n"
		"                        its chain; never a private key\n"
		"  --server HOST[:PORT]  submit to this server (default port 25; IPv6 as\n"
		"                        [::1]:2525) instead of the MX hosts of ADDRESS's domain\n"
		"  --ca-file F           trust anchors for the server's TLS certificate\n"
		"  --insecure            do not verify the server's TLS certificate\n"
		"  --user U              the AUTH user name (default: ADDRESS)\n"
		"  --password-file F     read the password from the first line of F\n"
		"                        (default: ask on the terminal)\n"
		"\n"
		"exit: 0 submitted, 2 usage, 3 temporary failure, 4 network/TLS,\n"
		"      5 refused (authentication, permission), 6 certificate not acceptable,\n"
		"      7 other error\n"
		"\n"
		"example: smtpcert submit --cert alice.pem --server mail.example.org:587 \\\n"
		"             alice@example.org\n");
}

/* ---- the password --------------------------------------------------------------- */

/* Read one line from @p fd into @p buf (without its terminator), bounded.
 * @return 0, or -1 (read error, empty input, or longer than PASSWORD_MAX). */
static int read_secret_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	char ch;

	buf[0] = '\0';
	for (;;) {
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (ch == '\n')
			break;
		if (n + 1 >= size)
			return -1;
		buf[n++] = ch;
		buf[n] = '\0';
	}
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	/* RFC 4616 2: passwd = 1*UTF8SAFE */
	return n ? 0 : -1;
}

static int password_from_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc;

	if (fd < 0) {
		cli_err(VERB, "--password-file %s: %s", path, strerror(errno));
		return CLI_FAILURE;
	}
	rc = read_secret_line(fd, buf, size);
	close(fd);
	if (rc != 0) {
		cli_err(VERB, "--password-file %s: no password on the first line, or longer "
			"than %d octets", path, PASSWORD_MAX);
		return CLI_DATA;
	}
	return CLI_OK;
}

/* Ask on the controlling terminal with echo off (cli/ask_secret.c). */
static int password_prompt(const char *user, char *buf, size_t size)
{
	char prompt[SC_ADDR_KEY_MAX + 32];
	struct cli_tty tty;
	long n;

	if (cli_tty_open(&tty) != 0) {
		cli_err(VERB, "no terminal to ask for the password on: use --password-file");
		return CLI_USAGE;
	}
	snprintf(prompt, sizeof prompt, "Password for %s: ", user);
	n = cli_tty_ask(&tty, prompt, buf, size);
	cli_tty_close(&tty);
	/* RFC 4616 2: passwd = 1*UTF8SAFE */
	if (n <= 0) {
		explicit_bzero(buf, size);
		cli_err(VERB, "no password given (at most %d octets)", PASSWORD_MAX);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* ---- submitting ------------------------------------------------------------------ */

/* Exit code for a failure at each stage. */
static int exit_for(sc_status st, int connecting)
{
	switch (st) {
	case SC_ERR_UNSUPPORTED:
		/* connect: TLS not offered; later: no AUTH or no CERC */
		return connecting ? CLI_NETWORK : CLI_PROTOCOL;
	case SC_ERR_TEMP:
		return CLI_TEMP;
	case SC_ERR_REJECTED:
	case SC_ERR_PROTOCOL:
	case SC_ERR_NOT_FOUND:
		return CLI_PROTOCOL;
	case SC_ERR_POLICY:   /* 550 5.7.1 Invalid Certificate */
	case SC_ERR_TOO_LONG: /* 552: over the server's size limit */
		return connecting ? CLI_PROTOCOL : CLI_DATA;
	default:
		return cli_exit_for(st);
	}
}

/* Failures after which the next MX host may do better (RFC 5321 5.1). */
static int try_next(sc_status st)
{
	return st == SC_ERR_NETWORK || st == SC_ERR_TIMEOUT || st == SC_ERR_TEMP;
}

static int submit_one(const struct submit_opts *o, const char *host, const char *port,
		      const struct sc_addr *a, const sc_cert *c, const char *user,
		      const char *password, int *again)
{
	struct sc_smtp_opts so = { 0 };
	struct sc_cerc_result res;
	char err[512] = "";
	sc_smtp *s;
	sc_status st;

	so.helo = "localhost";
	/* Always TLS: the password must not travel in clear; --insecure only skips
	 * verifying who is at the other end. */
	so.tls = SC_SMTP_TLS_REQUIRE;
	so.ca_file = o->ca_file;
	so.insecure = o->insecure;
	st = sc_smtp_connect(host, port, &so, &s, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		*again = try_next(st);
		return exit_for(st, 1);
	}
	st = sc_smtp_auth(s, user, password, 0, err, sizeof err);
	if (st == SC_OK)
		st = sc_smtp_cerc(s, a, c, &res, err, sizeof err);
	sc_smtp_close(s);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		return exit_for(st, 0);
	}
	printf("%s %s\n", res.id, res.state[0] ? res.state : "submitted");
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_err(VERB, "cannot write to standard output (submission %s was made)", res.id);
		return CLI_FAILURE;
	}
	return CLI_OK;
}

static int parse_args(int argc, char **argv, struct submit_opts *o, const char **address)
{
	static const struct option longopts[] = {
		{ "cert", required_argument, NULL, 'C' },
		{ "server", required_argument, NULL, 's' },
		{ "ca-file", required_argument, NULL, 'a' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "user", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(o, 0, sizeof *o);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'C': o->cert = optarg; break;
		case 's': o->server = optarg; break;
		case 'a': o->ca_file = optarg; break;
		case 'k': o->insecure = 1; break;
		case 'u': o->user = optarg; break;
		case 'p': o->password_file = optarg; break;
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
	if (!o->cert) {
		cli_err(VERB, "--cert FILE is required (try --help)");
		return CLI_USAGE;
	}
	*address = argv[optind];
	return CLI_OK;
}

/* Everything before the password: address, certificate, servers. */
static int prepare(const struct submit_opts *o, const char *arg, struct sc_addr *a,
		   char *address, size_t alen, sc_cert **c,
		   char hosts[][SC_DOMAIN_MAX + 1], size_t *nhosts, char *port, size_t plen)
{
	char err[512] = "";
	const char *why = NULL;
	sc_status st;

	st = sc_addr_parse(arg, strlen(arg), SC_ADDR_UTF8, a, &why);
	if (st != SC_OK || sc_addr_format(a, address, alen) != SC_OK) {
		cli_err(VERB, "'%s' is not a mail address: %s", arg, why ? why : sc_strerror(st));
		return CLI_USAGE;
	}
	st = sc_cert_load_file(o->cert, c);
	if (st != SC_OK) {
		cli_err(VERB, "%s: %s", o->cert, st == SC_ERR_IO ? "cannot read" : sc_strerror(st));
		return st == SC_ERR_IO ? CLI_FAILURE : CLI_DATA;
	}
	if (o->server) {
		if (cli_split_server(o->server, hosts[0], SC_DOMAIN_MAX + 1, port, plen) != 0) {
			cli_err(VERB, "--server '%s': expected HOST, HOST:PORT or [IPV6]:PORT",
				o->server);
			return CLI_USAGE;
		}
		*nhosts = 1;
		return CLI_OK;
	}
	st = sc_mx_lookup(a->domain, hosts, SC_MX_MAX, nhosts, err, sizeof err);
	if (st != SC_OK) {
		cli_err(VERB, "%s", err[0] ? err : sc_strerror(st));
		return st == SC_ERR_NOT_FOUND ? CLI_NOT_FOUND : cli_exit_for(st);
	}
	return CLI_OK;
}

int cmd_submit(int argc, char **argv)
{
	char hosts[SC_MX_MAX][SC_DOMAIN_MAX + 1], port[8] = "25";
	char address[SC_ADDR_KEY_MAX + 8], password[PASSWORD_MAX + 2] = "";
	struct submit_opts o;
	struct sc_addr a;
	const char *arg = NULL, *user;
	sc_cert *c = NULL;
	size_t nhosts = 0;
	int rc;

	rc = parse_args(argc, argv, &o, &arg);
	if (rc < 0)
		return CLI_OK;
	if (rc != CLI_OK)
		return rc;
	/* A closed connection must be an error return, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	rc = prepare(&o, arg, &a, address, sizeof address, &c, hosts, &nhosts, port,
		     sizeof port);
	if (rc != CLI_OK)
		goto out;
	user = o.user ? o.user : address;
	rc = o.password_file ? password_from_file(o.password_file, password, sizeof password)
			     : password_prompt(user, password, sizeof password);
	if (rc != CLI_OK)
		goto out;
	if (o.insecure)
		cli_err(VERB, "warning: --insecure: server not authenticated, yet it gets "
			"your password");
	rc = CLI_NETWORK;
	for (size_t i = 0; i < nhosts; i++) {
		int again = 0;

		rc = submit_one(&o, hosts[i], port, &a, c, user, password, &again);
		if (rc == CLI_OK || !again)
			break;
	}
out:
	explicit_bzero(password, sizeof password);
	sc_cert_free(c);
	return rc;
}
