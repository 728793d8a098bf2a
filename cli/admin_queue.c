/*
 * admin_queue.c - the review queue verbs that only read: `smtpcert admin -c FILE
 * pending [--json]` and `show ID`, plus what the deciding verbs (admin_decide.c)
 * share: opening the queue under state_dir, resolving an ID argument, the policy
 * verdict of a submission now, and safe text/JSON output of values that came from
 * a certificate or a peer. Runs in the administrator's process while the daemon
 * runs (the queue is a directory of atomically renamed files, or the tables of
 * the pgsql: database all nodes share).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin_ctx.h"

void admin_pending_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert admin -c FILE pending [--json]\n\n"
		"Lists the certificate submissions (CERC) waiting for review, oldest first,\n"
		"one line each:\n"
		"  ID  RECEIVED  ADDRESS  AUTH-USER  SHA256-FINGERPRINT  SUBJECT\n"
		"With --json: an array of objects with id, address, received, auth_user,\n"
		"client, fingerprint_sha256, subject, issuer, not_before and not_after.\n"
		"Times are ISO 8601 UTC. Decide with 'accept ID' or 'reject ID'.\n\n"
		"example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf pending\n");
}

void admin_show_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert admin -c FILE show ID\n\n"
		"Prints everything about one submission (pending, accepted or rejected):\n"
		"its metadata, the acceptance policy's verdict at this moment, and the\n"
		"certificates in PEM (leaf first).\n\n"
		"example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf show "
		"0123456789abcdef0123456789abcdef\n");
}

/* Text output: control characters would let a certificate forge output lines. */
void admin_put_text(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/* A JSON string (RFC 8259 section 7); bytes that are not UTF-8 become U+FFFD. */
static void put_json(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	putchar('"');
	while (*s) {
		unsigned c = *s;
		size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
				      : c >= 0xf0 && c <= 0xf4 ? 4 : 0;

		for (size_t i = 1; i < n; i++)
			if ((s[i] & 0xc0) != 0x80)
				n = 0;
		/* Overlongs and surrogates (RFC 3629 section 4). */
		if (n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0)))
			n = 0;
		if (n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90)))
			n = 0;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else if (n)
			fwrite(s, 1, n, stdout);
		else
			fputs("\\ufffd", stdout);
		s += n ? n : 1;
	}
	putchar('"');
}

static void queue_warn(void *arg, const char *msg)
{
	admin_err((const char *)arg, "warning: %s", msg);
}

int admin_queue_open(struct admin_ctx *ctx, const char *verb, sc_queue **q)
{
	const char *dir = sc_config_str(ctx->cfg, "state_dir");
	char err[1024] = "";
	sc_status st;

	/* Where the daemons keep it: a pgsql: repository holds the queue shared by
	 * every node, else the directories under state_dir (smtpcertd.conf(5)). */
	st = sc_queue_open_ex(dir, sc_queue_db_spec(ctx->cfg), q, err, sizeof err);
	if (st != SC_OK) {
		admin_err(verb, "%s", err[0] ? err : sc_strerror(st));
		return st == SC_ERR_PERM ? CLI_FAILURE : cli_exit_for(st);
	}
	sc_queue_set_warn(*q, queue_warn, (void *)verb);
	/* the node an audit row names: the configured hostname, as the daemon's */
	sc_queue_set_node(*q, sc_config_str(ctx->cfg, "hostname"));
	return CLI_OK;
}

int admin_queue_get(const char *verb, sc_queue *q, const char *id, struct sc_submission *s,
		    sc_cert **cert)
{
	sc_status st = sc_queue_get(q, id, s, cert);

	switch (st) {
	case SC_OK:
		return CLI_OK;
	case SC_ERR_SYNTAX:
		if (!sc_queue_id_valid(id)) {
			admin_err(verb, "'%s' is not a submission id (32 lower-case hex digits, as "
				  "'pending' prints them)", id);
			return CLI_USAGE;
		}
		break;
	case SC_ERR_NOT_FOUND:
		admin_err(verb, "%s: no such submission", id);
		return CLI_NOT_FOUND;
	default:
		break;
	}
	admin_err(verb, "%s: the queue entry cannot be read: %s", id, sc_strerror(st));
	return cli_exit_for(st);
}

sc_status admin_policy_verdict(struct admin_ctx *ctx, const struct sc_submission *s,
			       const sc_cert *c, struct sc_addr *addr, char *reason, size_t size)
{
	struct sc_policy p = { .cfg = ctx->cfg, .crls = ctx->crls,
			       .ca_file = sc_config_str(ctx->cfg, "submission_ca_file"),
			       .now = ctx->now };
	const char *why = NULL;

	if (sc_addr_parse(s->address, strlen(s->address), SC_ADDR_UTF8, addr, &why) != SC_OK) {
		snprintf(reason, size, "submitted address does not parse: %s",
			 why ? why : "syntax error");
		return SC_ERR_SYNTAX;
	}
	reason[0] = '\0';
	return sc_policy_check(&p, c, addr, reason, size);
}

static const char *state_name(enum sc_submission_state st)
{
	return st == SC_SUB_ACCEPTED ? "accepted" : st == SC_SUB_REJECTED ? "rejected" : "pending";
}

struct pending_out {
	int json;
	size_t count;
};

static sc_status pending_entry(void *arg, const struct sc_submission *s)
{
	struct pending_out *o = arg;
	char rcv[64], nb[64], na[64];

	admin_iso_time(s->received, rcv, sizeof rcv);
	if (!o->json) {
		printf("%s  %s  ", s->id, rcv);
		admin_put_text(stdout, s->address);
		putchar(' ');
		putchar(' ');
		admin_put_text(stdout, s->auth_user[0] ? s->auth_user : "-");
		printf("  %s  ", s->fingerprint);
		admin_put_text(stdout, s->subject);
		putchar('\n');
	} else {
		admin_iso_time(s->not_before, nb, sizeof nb);
		admin_iso_time(s->not_after, na, sizeof na);
		printf("%s  {\"id\": \"%s\", \"address\": ", o->count ? ",\n" : "\n", s->id);
		put_json(s->address);
		printf(", \"received\": \"%s\", \"auth_user\": ", rcv);
		put_json(s->auth_user);
		fputs(", \"client\": ", stdout);
		put_json(s->client);
		printf(", \"fingerprint_sha256\": \"%s\", \"subject\": ", s->fingerprint);
		put_json(s->subject);
		fputs(", \"issuer\": ", stdout);
		put_json(s->issuer);
		printf(", \"not_before\": \"%s\", \"not_after\": \"%s\"}", nb, na);
	}
	o->count++;
	return SC_OK;
}

int admin_pending(struct admin_ctx *ctx, int argc, char **argv)
{
	struct pending_out o = { 0 };
	sc_queue *q = NULL;
	sc_status st;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			o.json = 1;
		} else {
			admin_err("pending", "unexpected argument '%s'", argv[i]);
			admin_pending_usage(stderr);
			return CLI_USAGE;
		}
	}
	rc = admin_queue_open(ctx, "pending", &q);
	if (rc != CLI_OK)
		return rc;
	if (o.json)
		fputs("[", stdout);
	st = sc_queue_list(q, SC_SUB_PENDING, pending_entry, &o);
	if (o.json)
		fputs(o.count ? "\n]\n" : "]\n", stdout);
	sc_queue_close(q);
	if (st == SC_ERR_TOO_MANY) {
		admin_err("pending", "warning: more than %d pending submissions; only %d are "
			  "shown (decide some to see the rest)", SC_QUEUE_LIST_MAX,
			  SC_QUEUE_LIST_MAX);
	} else if (st != SC_OK) {
		admin_err("pending", "%s", sc_strerror(st));
		rc = cli_exit_for(st);
	}
	if (fflush(stdout) != 0 && rc == CLI_OK)
		rc = CLI_FAILURE;
	return rc;
}

static void show_line(const char *key, const char *value)
{
	printf("%-13s ", key);
	admin_put_text(stdout, value[0] ? value : "-");
	putchar('\n');
}

static void show_time(const char *key, int64_t t)
{
	char b[64];

	admin_iso_time(t, b, sizeof b);
	printf("%-13s %s\n", key, b);
}

static sc_status pem_line(void *arg, const char *line, size_t len)
{
	fwrite(line, 1, len, stdout);
	putchar('\n');
	return SC_OK;
}

int admin_show(struct admin_ctx *ctx, int argc, char **argv)
{
	struct sc_submission s;
	struct sc_addr addr;
	char reason[400], buf[512];
	sc_cert *c = NULL;
	sc_queue *q = NULL;
	sc_status st;
	int rc;

	if (argc != 2 || argv[1][0] == '-') {
		admin_err("show", "%s", argc < 2 ? "no submission id given"
					       : "expected one submission id");
		admin_show_usage(stderr);
		return CLI_USAGE;
	}
	rc = admin_queue_open(ctx, "show", &q);
	if (rc != CLI_OK)
		return rc;
	rc = admin_queue_get("show", q, argv[1], &s, &c);
	sc_queue_close(q);
	if (rc != CLI_OK)
		return rc;
	show_line("id:", s.id);
	show_line("state:", state_name(s.state));
	show_line("address:", s.address);
	show_time("received:", s.received);
	show_line("auth-user:", s.auth_user);
	show_line("client:", s.client);
	if (s.decided)
		show_time("decided:", s.decided);
	if (s.reason[0])
		show_line("reason:", s.reason);
	show_line("fingerprint:", s.fingerprint);
	show_line("subject:", s.subject);
	show_line("issuer:", s.issuer);
	show_time("not-before:", s.not_before);
	show_time("not-after:", s.not_after);
	sc_cert_key_desc(c, buf, sizeof buf);
	show_line("key:", buf);
	st = sc_cert_smime_caps(c, buf, sizeof buf);
	show_line("smime-caps:", st == SC_OK ? buf : st == SC_ERR_NOT_FOUND ? "(none)"
									    : "(undecodable)");
	snprintf(buf, sizeof buf, "%zu", sc_cert_count(c) - 1);
	show_line("chain:", buf);
	st = admin_policy_verdict(ctx, &s, c, &addr, reason, sizeof reason);
	if (st == SC_OK) {
		show_line("policy:", "acceptable now");
	} else {
		snprintf(buf, sizeof buf, "refused now: %s", reason[0] ? reason : sc_strerror(st));
		show_line("policy:", buf);
	}
	putchar('\n');
	for (size_t i = 0; i < sc_cert_count(c) && rc == CLI_OK; i++) {
		const uint8_t *der;
		size_t len;

		if (sc_cert_der(c, i, &der, &len) != SC_OK ||
		    sc_pem_encode_lines(der, len, "CERTIFICATE", pem_line, NULL) != SC_OK)
			rc = CLI_FAILURE;
	}
	sc_cert_free(c);
	if (fflush(stdout) != 0 && rc == CLI_OK)
		rc = CLI_FAILURE;
	return rc;
}
