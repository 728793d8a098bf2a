/*
 * send.h - private to `smtpcert send` (cli/cmd_send.c and cli/send_*.c): the
 * sendmail-compatible sender. The verb reads the message into a temporary file
 * (send_input.c), prepares its header (send_header.c: -t recipients, Bcc removed,
 * Date/Message-ID/From added), looks up certificates, signs and encrypts
 * (send_crypt.c), and submits it (send_smtp.c). Runs in the user's process.
 *
 * Exit codes are sendmail's (sysexits.h), because programs that run a sendmail
 * (mutt, git send-email, cron) act on them: EX_TEMPFAIL means "try again later".
 */
#ifndef SMTPCERT_SEND_H
#define SMTPCERT_SEND_H

#include <stddef.h>
#include <stdint.h>
#include <sysexits.h>

#include "cli.h"
#include "userconf.h"

#define SEND_VERB "send"
/* Default largest message accepted on standard input (--max-size). */
#define SEND_MAX_DEFAULT (64ull * 1024 * 1024)
/* Most recipients of one message (command line and -t together). */
#define SEND_RCPT_MAX 1000

/* Not yet decided: still to send, or left unsent because another recipient of
 * the same transaction was refused (all or nothing, so a retry never duplicates). */
#define SEND_PENDING (-1)

struct send_rcpt {
	struct sc_addr addr;
	char text[SC_ADDR_KEY_MAX + 8];  /* as written on the wire: RCPT TO:<text> */
	sc_cert *cert;                   /* from the lookup, or NULL */
	int rc;                          /* SEND_PENDING, EX_OK (sent) or the failure's
					  * exit code (EX_TEMPFAIL, EX_NOUSER, ...) */
	char why[512];                   /* the reason, for the message naming it */
	int hidden;                      /* not in To or Cc (Bcc, or only on the command
					  * line): gets an encrypted copy of its own */
};

struct send_opts {
	int extract;            /* -t: recipients from To, Cc, Bcc */
	int ignore_dots;        /* -i, -oi: a "." line is data, not the end */
	int verbose;            /* -v */
	const char *from;       /* -f / -r: envelope sender (and From when missing) */
	const char *fullname;   /* -F: display name for an added From */
	const char *submit;     /* --submit HOST[:PORT] */
	int encrypt_set;
	enum userconf_encrypt encrypt;
	int sign;               /* --sign (1), --no-sign (0), -1 = config */
	int hide_subject;
	const char *server;     /* LOOKUP: --server */
	const char *ca_file;    /* LOOKUP: --ca-file, also for the submission server */
	int insecure;           /* LOOKUP: --insecure */
	int accept_new;
	const char *config;     /* --config */
	const char *mx_port;    /* --mx-port (tests, private relays) */
	const char *resolver;   /* --resolver ADDR[@PORT]: overrides `resolver` */
	const char *dnssec_anchor;
	const char *key;        /* --key: overrides `key` */
	const char *cert;       /* --cert: overrides `cert` */
	const char *passphrase_file;
	uint64_t max_size;
	char **args;            /* recipients on the command line */
	int nargs;
};

/* One send in progress. */
struct send_ctx {
	struct send_opts o;
	struct userconf uc;
	int fd;                 /* the message as it will be sent (temporary file) */
	uint64_t size;
	char env_from[SC_ADDR_KEY_MAX + 8];  /* MAIL FROM:<env_from> */
	char from_hdr[SC_ADDR_KEY_MAX + 8];  /* address for an added From */
	char domain[SC_DOMAIN_MAX + 1];      /* qualifies bare user names */
	struct send_rcpt *rcpt;
	size_t nrcpt;
	int encrypted;
	int signed_;
	struct sc_addr *visible;             /* the addresses in To and Cc */
	size_t nvisible;
	int plain_fd;                        /* signed but not encrypted, for the copies
					      * of hidden recipients; -1 when unused */
	uint64_t plain_size;
	sc_cert *own;                        /* the sender's certificate, or NULL */
};

/* A new anonymous temporary file (unlinked, mode 0600). @return fd or -1. */
int send_tmpfile(void);

/* Copy standard input into a new temporary file, honouring -i, bounded by
 * o->max_size. @return EX_OK with *fd and *size set, or an exit code. */
int send_read_input(const struct send_opts *o, int *fd, uint64_t *size);

/* Add recipient @p arg (an address, "Name <addr>", a comma list, or a bare user
 * name, qualified with c->domain). @return EX_OK or EX_USAGE / EX_DATAERR. */
int send_add_rcpt_arg(struct send_ctx *c, const char *arg);

/* Set each recipient's hidden flag: not in the header's To or Cc. */
void send_mark_hidden(struct send_ctx *c);

/* Parse the header of c->fd; with -t take recipients from it; write a new
 * message without Bcc and with Date, Message-ID and From when missing. Replaces
 * c->fd. @return EX_OK or an exit code (message written). */
int send_prepare(struct send_ctx *c);

/* Certificates, signature, encryption per the options; replaces c->fd when it
 * changes the message. @return EX_OK or an exit code (each recipient named). */
int send_protect(struct send_ctx *c);

/* S/MIME for send_protect() (send_smime.c): sign c->fd with the sender's key
 * and certificate; encrypt it to @p certs (the recipients' and the sender's).
 * Each replaces c->fd. @return EX_OK or an exit code (message written). */
int send_sign(struct send_ctx *c);
int send_encrypt(struct send_ctx *c, const sc_cert *const *certs, size_t n);
/* The same from @p in into a new temporary file *@p out of *@p size octets;
 * c->fd is left alone. */
int send_encrypt_fd(struct send_ctx *c, int in, const sc_cert *const *certs, size_t n,
		    int *out, uint64_t *size);

/* Submit c->fd to the submission server or the recipients' MX hosts; records
 * each recipient's state. @return EX_OK or the exit code of the worst failure. */
int send_deliver(struct send_ctx *c);

/* Submit the copy in @p fd (@p size octets) to the recipients @p idx[0..n). */
void send_deliver_copy(struct send_ctx *c, int fd, uint64_t size, const size_t *idx,
		       size_t n);

/* After send_deliver(): the encrypted copies of the hidden recipients, each
 * encrypted to that recipient (and the sender) only, so that no copy names a
 * Bcc recipient, not even in its RecipientInfos. @return EX_OK or an exit code. */
int send_hidden_copies(struct send_ctx *c);

/* The local host's name for EHLO and Message-ID ("localhost" when unknown). */
void send_hostname(char *buf, size_t size);

#endif
