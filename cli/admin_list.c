/*
 * admin_list.c - `smtpcert admin -c FILE list [--json]`: every certificate stored
 * in the configured repositories (any type, through sc_repo_list(); ldap:// with
 * the configured ldap_* settings), valid or not, with the status the
 * server applies to it (repo.h sc_repo_entry_usable: validity window and the
 * configured CRLs). Text: one line per entry; --json: one array of objects.
 * Runs in the administrator's process; opens the stores read-only.
 */
#include <stdio.h>
#include <string.h>

#include "admin_ctx.h"

void admin_list_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert admin -c FILE list [--json]\n\n"
		"Prints every certificate stored in the configured repositories\n"
		"(lmdb:, dir:, ldap://, ...), one line each:\n"
		"  ADDRESS  STATUS  NOT-AFTER  SHA256-FINGERPRINT  SUBJECT\n"
		"STATUS is valid, expired, not-yet-valid or revoked (by a configured\n"
		"crl_file); the server serves only valid ones. With --json: an array of\n"
		"objects with address, status, not_before, not_after, fingerprint_sha256,\n"
		"subject, issuer, chain_length (certificates stored after the leaf) and\n"
		"repository. Times are ISO 8601 UTC.\n\n"
		"example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf list --json\n");
}

struct list_out {
	struct admin_ctx *ctx;
	const char *spec;
	int json;
	size_t count;
};

/* Text output: control characters would let a certificate forge list lines. */
static void put_text(const char *s)
{
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* Length of a valid UTF-8 sequence at @p s (RFC 3629), 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned min, cp;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A JSON string (RFC 8259 7); invalid UTF-8 becomes U+FFFD so output stays valid. */
static void put_json(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	putchar('"');
	while (*s) {
		if (*s == '"' || *s == '\\') {
			printf("\\%c", *s++);
		} else if (*s < 0x20 || *s == 0x7f) {
			printf("\\u%04x", *s++);
		} else if (*s < 0x80) {
			putchar(*s++);
		} else {
			size_t n = utf8_len(s);

			if (n == 0) {
				fputs("\\ufffd", stdout);
				s++;
			} else {
				fwrite(s, 1, n, stdout);
				s += n;
			}
		}
	}
	putchar('"');
}

static sc_status list_entry(void *arg, const struct sc_repo_entry *e)
{
	struct list_out *o = arg;
	const char *status = admin_status_word(sc_repo_entry_usable(e, o->ctx->now,
								     o->ctx->crls));
	char nb[64], na[64], fp[65], subject[1024] = "(unparsable)", issuer[1024] = "";
	sc_cert *c = NULL;

	admin_iso_time(e->not_before, nb, sizeof nb);
	admin_iso_time(e->not_after, na, sizeof na);
	sc_hex(e->fingerprint, 32, fp);
	if (sc_cert_parse(e->der[0], e->der_len[0], &c) == SC_OK) {
		sc_cert_subject(c, subject, sizeof subject);
		sc_cert_issuer(c, issuer, sizeof issuer);
		sc_cert_free(c);
	}
	if (!o->json) {
		put_text(e->key);
		printf("  %s  %s  %s  ", status, na, fp);
		put_text(subject);
		putchar('\n');
	} else {
		fputs(o->ctx->json_count++ ? ",\n  {" : "\n  {", stdout);
		fputs("\"address\": ", stdout);
		put_json(e->key);
		printf(", \"status\": \"%s\", \"not_before\": \"%s\", \"not_after\": \"%s\", "
		       "\"fingerprint_sha256\": \"%s\", \"subject\": ", status, nb, na, fp);
		put_json(subject);
		fputs(", \"issuer\": ", stdout);
		put_json(issuer);
		printf(", \"chain_length\": %zu, \"repository\": ", e->n_der - 1);
		put_json(o->spec);
		putchar('}');
	}
	o->count++;
	return SC_OK;
}

int admin_list(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *const *specs;
	size_t nspec = sc_config_list(ctx->cfg, "repository", &specs);
	struct list_out o = { .ctx = ctx };
	struct sc_repo_ldap_opts remote;
	int rc = CLI_OK;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			o.json = 1;
		} else {
			admin_err("list", "unexpected argument '%s'", argv[i]);
			admin_list_usage(stderr);
			return CLI_USAGE;
		}
	}
	sc_repo_ldap_opts_from_config(ctx->cfg, &remote);
	if (o.json)
		fputs("[", stdout);
	for (size_t i = 0; i < nspec; i++) {
		sc_repo *repo = NULL;
		char err[1024] = "";
		sc_status st;

		if (!admin_repo_local("list", specs[i]))
			continue;
		st = sc_repo_open_ex(specs[i], SC_REPO_RDONLY, &remote, &repo, err, sizeof err);
		if (st == SC_ERR_NOT_FOUND)
			continue; /* nothing imported yet: an empty store */
		if (st == SC_OK) {
			sc_repo_set_warn(repo, admin_repo_warn, "list");
			o.spec = specs[i];
			st = sc_repo_list(repo, list_entry, &o);
			sc_repo_close(repo);
		}
		if (st != SC_OK) {
			char name[256];

			sc_repo_spec_redact(specs[i], name, sizeof name);
			if (err[0])
				admin_err("list", "%s", err);
			else
				admin_err("list", "%s: %s", name, sc_strerror(st));
			if (rc == CLI_OK)
				rc = cli_exit_for(st);
		}
	}
	if (o.json)
		fputs(ctx->json_count ? "\n]\n" : "]\n", stdout);
	if (fflush(stdout) != 0 && rc == CLI_OK)
		rc = CLI_FAILURE;
	return rc;
}
