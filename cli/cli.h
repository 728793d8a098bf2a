/*
 * cli.h - the smtpcert command-line program: one cmd_<verb>.c per verb, each
 * exporting cmd_<verb>(argc, argv) with argv[0] = the verb. Runs in the user's
 * process; uses only the public libsmtpcert header.
 *
 * Exit codes shared by all verbs (documented in smtpcert(1)):
 */
#ifndef SMTPCERT_CLI_H
#define SMTPCERT_CLI_H

#include <smtpcert/smtpcert.h>

enum cli_exit {
	CLI_OK = 0,
	CLI_NOT_FOUND = 1,   /* fetch: no certificate for the address */
	CLI_USAGE = 2,       /* bad options or arguments */
	CLI_TEMP = 3,        /* temporary failure (4xx, repository unavailable) */
	CLI_NETWORK = 4,     /* connection, TLS or verification failure */
	CLI_PROTOCOL = 5,    /* the server broke the protocol or refused */
	CLI_DATA = 6,        /* bad input file or certificate */
	CLI_FAILURE = 7      /* anything else (I/O, configuration) */
};

int cmd_fetch(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_send(int argc, char **argv);

/* Split --server "HOST", "HOST:PORT", "[V6]", "[V6]:PORT" (a bare IPv6 address has no
 * port); the port defaults to 25. @return 0, or -1 when malformed or too long. */
int cli_split_server(const char *s, char *host, size_t hsize, char *port, size_t psize);

/* Ask for a passphrase or PIN on /dev/tty with echo off (cli/ask_secret.c).
 * @return 0 with the line (no line end) in @p buf, or -1: no terminal, read
 * error, or a line that does not fit (the buffer is then wiped). */
int cli_ask_secret(const char *prompt, char *buf, size_t size);

/* A dialogue on /dev/tty (cli/ask_secret.c), for a verb that says more than one
 * thing: open it (@return 0, or -1 when there is no terminal), say notes, ask
 * (echo off before the prompt; @return the answer's length, or -1 for a read
 * error or a line that does not fit, the buffer then wiped), close it. */
struct cli_tty {
	int fd;
};
int cli_tty_open(struct cli_tty *t);
void cli_tty_say(struct cli_tty *t, const char *s);
long cli_tty_ask(struct cli_tty *t, const char *prompt, char *buf, size_t size);
void cli_tty_close(struct cli_tty *t);

/* Loading the user's private key (cli/keyload.c). */
struct cli_key_req {
	const char *spec;        /* key file or pkcs11: URI */
	const char *secret_file; /* first line: the passphrase or PIN; NULL: none */
	const char *module;      /* PKCS#11 module; NULL: the library's default */
	int ask;                 /* no secret_file: ask on the terminal when needed
				  * (3 tries for a file key, 1 for a token) */
};

/* @return SC_OK with the key in @p key, or the failing status with a message in
 * @p err; @p from_secret_file says the secret file was what failed. */
SC_MUST_CHECK sc_status cli_load_key(const struct cli_key_req *r, sc_key **key,
				     int *from_secret_file, char *err, size_t errlen);

/* cli_load_key() for sign and decrypt: the failure said as "VERB: SPEC: why".
 * @return CLI_OK, or the exit code (cli_exit_data(); CLI_DATA for the file). */
int cli_load_key_verb(const char *verb, const struct cli_key_req *r, sc_key **key);

/* How much of a key spec to show (print it with "%.*s"): a pkcs11: URI without
 * its query, which may hold the PIN (pin-value). */
int cli_key_shown_len(const char *spec);

/* Exit code for a verb whose inputs are the user's files and message (sign,
 * decrypt, verify): CLI_OK, CLI_FAILURE when the system is the cause (I/O,
 * memory, internal), otherwise CLI_DATA. */
int cli_exit_data(sc_status st);

/* The shared ends of a verb's getopt_long loop (cli/util.c): the message for an
 * unknown option or one missing its value (@return CLI_USAGE), and the check
 * that no operand follows the options (@return CLI_OK or CLI_USAGE). */
int cli_bad_option(const char *verb, char **argv);
int cli_no_operands(const char *verb, int argc, char **argv);

/* Map a library status to an exit code. */
int cli_exit_for(sc_status st);

/* "smtpcert: <verb>: message" on stderr, printf-style. */
void cli_err(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
