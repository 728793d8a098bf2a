/*
 * admin_remove.c - `smtpcert admin -c FILE remove ADDRESS [--fingerprint HEX]`:
 * delete every certificate of an address, or the one whose leaf has the given
 * SHA-256 fingerprint, from every configured repository that can be written. Each
 * removal is atomic; the daemon stops serving the certificate at its next lookup.
 * Runs in the administrator's process.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "admin_ctx.h"

void admin_remove_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert admin -c FILE remove ADDRESS [--fingerprint HEX]\n\n"
		"Removes the certificates stored for ADDRESS in every configured lmdb:\n"
		"and dir: repository; with --fingerprint only the one whose leaf has that\n"
		"SHA-256 fingerprint (64 hex digits as 'list' prints them; colons and\n"
		"upper case are accepted). Exit 1 when nothing matched.\n\n"
		"example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf remove bob@example.test\n");
}

static int hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 64 hex digits, optionally separated by colons. @return 0 on success. */
static int parse_fingerprint(const char *s, uint8_t out[32])
{
	size_t n = 0;

	while (*s) {
		int hi, lo;

		if (*s == ':') {
			s++;
			continue;
		}
		hi = hexdigit((unsigned char)s[0]);
		lo = hi < 0 ? -1 : hexdigit((unsigned char)s[1]);
		if (lo < 0 || n == 32)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return n == 32 ? 0 : -1;
}

int admin_remove(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *const *specs;
	size_t nspec = sc_config_list(ctx->cfg, "repository", &specs), total = 0;
	const char *address = NULL, *fp_arg = NULL, *why = NULL;
	uint8_t fp[32];
	char key[SC_ADDR_KEY_MAX];
	struct sc_addr addr;
	int rc = CLI_OK;
	sc_status st;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fingerprint") && i + 1 < argc) {
			fp_arg = argv[++i];
		} else if (!strncmp(argv[i], "--fingerprint=", 14)) {
			fp_arg = argv[i] + 14;
		} else if (argv[i][0] == '-' || address) {
			admin_err("remove", "unexpected argument '%s'", argv[i]);
			admin_remove_usage(stderr);
			return CLI_USAGE;
		} else {
			address = argv[i];
		}
	}
	if (!address) {
		admin_err("remove", "no address given");
		admin_remove_usage(stderr);
		return CLI_USAGE;
	}
	st = sc_addr_parse(address, strlen(address), SC_ADDR_UTF8, &addr, &why);
	if (st != SC_OK || sc_addr_key(&addr, key, sizeof key, NULL) != SC_OK) {
		admin_err("remove", "'%s' is not an email address: %s", address,
			  why ? why : sc_strerror(st));
		return CLI_USAGE;
	}
	if (fp_arg && parse_fingerprint(fp_arg, fp) != 0) {
		admin_err("remove", "--fingerprint: expected 64 hex digits (SHA-256), got '%s'",
			  fp_arg);
		return CLI_USAGE;
	}
	for (size_t i = 0; i < nspec; i++) {
		sc_repo *repo = NULL;
		char err[1024] = "", name[256];
		size_t n = 0;

		if (!admin_repo_local("remove", specs[i]))
			continue;
		sc_repo_spec_redact(specs[i], name, sizeof name);
		st = sc_repo_open(specs[i], 0, &repo, err, sizeof err);
		if (st == SC_ERR_NOT_FOUND)
			continue; /* no store there yet: nothing to remove */
		if (st == SC_OK) {
			sc_repo_set_warn(repo, admin_repo_warn, "remove");
			st = sc_repo_remove(repo, &addr, fp_arg ? fp : NULL, &n);
			sc_repo_close(repo);
			if (st == SC_ERR_NOT_FOUND)
				st = SC_OK;
		}
		if (st != SC_OK) {
			if (err[0])
				admin_err("remove", "%s", err);
			else
				admin_err("remove", "%s: %s", name, sc_strerror(st));
			if (rc == CLI_OK)
				rc = cli_exit_for(st);
			continue;
		}
		if (n)
			printf("removed %zu certificate%s of %s from %s\n", n, n == 1 ? "" : "s",
			       key, name);
		total += n;
	}
	if (rc == CLI_OK && total == 0) {
		admin_err("remove", "%s: no certificate%s stored", key,
			  fp_arg ? " with that fingerprint" : "");
		rc = CLI_NOT_FOUND;
	}
	return rc;
}
