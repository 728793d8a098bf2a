/*
 * admin_import.c - `smtpcert admin -c FILE import CERT.pem...`: store each file's
 * certificate (leaf, then the chain certificates in the same file) under every
 * address it names that is in a served domain, in the first configured repository.
 * Each file is accepted or refused on its own, with the reason; the exit status is
 * that of the first refusal (the other files are still imported). Runs in the
 * administrator's process.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin_ctx.h"

void admin_import_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert admin -c FILE import CERT.pem...\n\n"
		"Stores each certificate (PEM or DER; the leaf first, then any chain\n"
		"certificates in the same file, which CERS sends after it) in the first\n"
		"repository of the configuration, under every email address it names\n"
		"(subjectAltName rfc822Name, SmtpUTF8Mailbox, subject emailAddress) whose\n"
		"domain is in domains or gateway_domains. Refused, with the reason: no email\n"
		"address, no address in a served domain, expired, revoked by a configured\n"
		"crl_file. A not yet valid certificate is stored with a warning (it is\n"
		"served from its notBefore on). Importing the same certificate again\n"
		"replaces it. Exit 0 when every file was imported.\n\n"
		"example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf import alice.pem bob.pem\n");
}

/* "a, b and c" of a config list, for messages. */
static void join_list(const sc_config *cfg, const char *key, char *buf, size_t size)
{
	const char *const *items;
	size_t n = sc_config_list(cfg, key, &items), off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < size; i++) {
		int w = snprintf(buf + off, size - off, "%s%s", i ? ", " : "", items[i]);

		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (n == 0)
		snprintf(buf, size, "(none)");
}

/* Import one file. @return CLI_OK or the exit code of its refusal (reported). */
static int import_file(struct admin_ctx *ctx, sc_repo *repo, const char *path)
{
	struct sc_addr addrs[SC_CERT_EMAILS_MAX];
	char when[64], fp_hex[65], key[SC_ADDR_KEY_MAX], foreign[1024] = "";
	uint8_t fp[32];
	size_t n, stored = 0, off = 0;
	sc_cert *c = NULL;
	sc_status st;

	st = sc_cert_load_file(path, &c);
	if (st != SC_OK) {
		if (st == SC_ERR_IO)
			admin_err("import", "%s: cannot read the file", path);
		else
			admin_err("import", "%s: refused: not a certificate file (%s)", path,
				  sc_strerror(st));
		return CLI_DATA;
	}
	st = sc_cert_check_time(c, ctx->now);
	if (st == SC_ERR_EXPIRED) {
		admin_iso_time(sc_cert_not_after(c), when, sizeof when);
		admin_err("import", "%s: refused: the certificate expired on %s", path, when);
		goto out;
	}
	if (st == SC_ERR_NOT_YET_VALID) {
		admin_iso_time(sc_cert_not_before(c), when, sizeof when);
		admin_err("import", "%s: warning: not valid before %s; stored anyway, served "
			  "from then on", path, when);
	}
	st = sc_crlset_check_cert(ctx->crls, c);
	if (st != SC_OK) {
		char serial[128];

		sc_cert_serial_hex(c, serial, sizeof serial);
		admin_err("import", "%s: refused: revoked by a configured CRL (serial %s)",
			  path, serial);
		goto out;
	}
	n = sc_cert_emails(c, addrs, SC_CERT_EMAILS_MAX);
	if (n == 0) {
		admin_err("import", "%s: refused: the certificate names no email address "
			  "(subjectAltName rfc822Name or SmtpUTF8Mailbox, or subject "
			  "emailAddress)", path);
		st = SC_ERR_MISMATCH;
		goto out;
	}
	sc_cert_fingerprint(c, fp);
	sc_hex(fp, 32, fp_hex);
	for (size_t i = 0; i < n; i++) {
		if (sc_addr_key(&addrs[i], key, sizeof key, NULL) != SC_OK)
			continue;
		/* design.md: only addresses of served domains are stored. */
		if (sc_config_domain_kind(ctx->cfg, addrs[i].domain) == SC_DOMAIN_FOREIGN) {
			int w = snprintf(foreign + off, sizeof foreign - off, "%s%s",
					 off ? ", " : "", key);

			if (w > 0 && (size_t)w < sizeof foreign - off)
				off += (size_t)w;
			continue;
		}
		st = sc_repo_store(repo, &addrs[i], c);
		if (st != SC_OK) {
			admin_err("import", "%s: %s: cannot store in %s: %s", path, key,
				  sc_repo_name(repo),
				  st == SC_ERR_TOO_MANY ? "too many certificates for this "
							  "address (remove some first)"
							: sc_strerror(st));
			goto out;
		}
		printf("%s: imported for %s (sha256 %s)\n", path, key, fp_hex);
		stored++;
	}
	if (stored == 0) {
		char domains[512], gateways[512];

		join_list(ctx->cfg, "domains", domains, sizeof domains);
		join_list(ctx->cfg, "gateway_domains", gateways, sizeof gateways);
		admin_err("import", "%s: refused: no address in a served domain (%s; served: "
			  "domains %s; gateway_domains %s)", path, foreign, domains, gateways);
		st = SC_ERR_FOREIGN_DOMAIN;
		goto out;
	}
	if (off)
		admin_err("import", "%s: note: not stored for %s (domain not served)", path,
			  foreign);
	st = SC_OK;
out:
	sc_cert_free(c);
	return cli_exit_for(st);
}

int admin_import(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *const *specs;
	size_t nspec = sc_config_list(ctx->cfg, "repository", &specs);
	sc_repo *repo = NULL;
	char err[1024] = "";
	int i = 1, nfiles, first = CLI_OK, rc, progress;
	sc_status st;

	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	nfiles = argc - i;
	if (nfiles <= 0) {
		admin_err("import", "no certificate file given");
		admin_import_usage(stderr);
		return CLI_USAGE;
	}
	if (nspec == 0) {
		admin_err("import", "%s: no repository configured", ctx->config_path);
		return CLI_FAILURE;
	}
	/* The first repository is the one import writes (smtpcertd.conf(5)). */
	if (!admin_repo_local("import", specs[0]))
		return CLI_FAILURE;
	st = sc_repo_open(specs[0], SC_REPO_CREATE, &repo, err, sizeof err);
	if (st != SC_OK) {
		admin_err("import", "%s", err[0] ? err : sc_strerror(st));
		return cli_exit_for(st);
	}
	sc_repo_set_warn(repo, admin_repo_warn, "import");
	/* A progress line for a bulk import on a terminal whose report goes to a
	 * file: ends in \r, so the next message (or the next update) covers it. */
	progress = nfiles > 1 && isatty(2) && !isatty(1);
	for (int done = 0; i < argc; i++) {
		rc = import_file(ctx, repo, argv[i]);
		if (rc != CLI_OK && first == CLI_OK)
			first = rc;
		done++;
		if (progress && (done == nfiles || done % 100 == 0)) {
			fflush(stdout);
			fprintf(stderr, "import: %d/%d files (%d%%)\r", done, nfiles,
				(int)((long)done * 100 / nfiles));
		}
	}
	if (progress)
		fputc('\n', stderr);
	sc_repo_close(repo);
	return first;
}
