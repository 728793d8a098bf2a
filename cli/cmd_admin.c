/*
 * cmd_admin.c - `smtpcert admin -c FILE VERB ...`: administration of the
 * certificate repositories named in smtpcertd.conf, while the daemon runs (writes
 * are atomic; the daemon sees them at its next lookup). This file parses the
 * common options, loads the configuration and the CRLs, and dispatches to the
 * verbs in admin_<verb>.c (the review queue verbs: admin_queue.c, admin_decide.c). Runs in the administrator's process.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admin_ctx.h"

struct admin_verb {
	const char *name;
	int (*fn)(struct admin_ctx *ctx, int argc, char **argv);
	void (*usage)(FILE *f);
	const char *summary;
};

static const struct admin_verb admin_verbs[] = {
	{ "import", admin_import, admin_import_usage,
	  "store certificates under the addresses they name" },
	{ "list", admin_list, admin_list_usage, "show every stored certificate and its status" },
	{ "remove", admin_remove, admin_remove_usage,
	  "delete the certificates of an address (or one of them)" },
	{ "pending", admin_pending, admin_pending_usage,
	  "list certificate submissions waiting for review" },
	{ "show", admin_show, admin_show_usage,
	  "show one submission: metadata, policy verdict, PEM" },
	{ "accept", admin_accept, admin_accept_usage,
	  "accept a submission: store its certificate, record the decision" },
	{ "reject", admin_reject, admin_reject_usage, "reject a submission (--reason TEXT)" },
	{ "export-www", admin_export, admin_export_usage,
	  "write the files cert_url points at, for a web server" },
};

static void admin_usage(FILE *f)
{
	fprintf(f, "usage: smtpcert admin -c FILE VERB [ARGS]\n\nverbs:\n");
	for (size_t i = 0; i < sizeof admin_verbs / sizeof admin_verbs[0]; i++)
		fprintf(f, "  %-10s %s\n", admin_verbs[i].name, admin_verbs[i].summary);
	fprintf(f, "\n  -c FILE  the daemon's configuration (smtpcertd.conf(5)): repository,\n"
		   "           domains, gateway_domains and crl_file are read from it (the\n"
		   "           review verbs also use state_dir, delivery, notify_submitter)\n"
		   "\n'smtpcert admin VERB --help' describes a verb.\n"
		   "example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf import alice.pem\n");
}

void admin_err(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "smtpcert: admin%s%s: ", verb ? " " : "", verb ? verb : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void admin_repo_warn(void *arg, const char *msg)
{
	admin_err((const char *)arg, "warning: %s", msg);
}

void admin_iso_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((int64_t)tt != t || !gmtime_r(&tt, &tm) ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "@%lld", (long long)t);
}

const char *admin_status_word(sc_status usable)
{
	switch (usable) {
	case SC_OK: return "valid";
	case SC_ERR_EXPIRED: return "expired";
	case SC_ERR_NOT_YET_VALID: return "not-yet-valid";
	case SC_ERR_REVOKED: return "revoked";
	default: return "unusable";
	}
}

int admin_repo_local(const char *verb, const char *spec)
{
	if (sc_repo_scheme_known(spec))
		return 1;
	admin_err(verb, "%s: skipped: unknown repository type (lmdb:, dir:, ldap://, ldaps://, "
		  "ldapi:// or pgsql:)", spec);
	return 0;
}

static int admin_load(struct admin_ctx *ctx, const char *verb)
{
	const char *const *crls;
	size_t ncrl;
	char err[1024] = "";
	sc_status st;

	st = sc_config_load(ctx->config_path, &ctx->cfg, err, sizeof err);
	if (st != SC_OK) {
		admin_err(verb, "%s", err[0] ? err : sc_strerror(st));
		return CLI_FAILURE;
	}
	st = sc_crlset_new(&ctx->crls);
	if (st != SC_OK) {
		admin_err(verb, "%s", sc_strerror(st));
		return CLI_FAILURE;
	}
	/* A configured CRL that does not load is an error, never "nothing revoked". */
	ncrl = sc_config_list(ctx->cfg, "crl_file", &crls);
	for (size_t i = 0; i < ncrl; i++) {
		err[0] = '\0';
		st = sc_crlset_add_file(ctx->crls, crls[i], err, sizeof err);
		if (st != SC_OK) {
			admin_err(verb, "crl_file %s: %s", crls[i], err[0] ? err : sc_strerror(st));
			return CLI_FAILURE;
		}
	}
	ctx->now = time(NULL);
	return CLI_OK;
}

static int is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

int cmd_admin(int argc, char **argv)
{
	struct admin_ctx ctx = { 0 };
	const struct admin_verb *v = NULL;
	int i = 1, rc;

	/* Options before the verb: -c FILE (also --config FILE / --config=FILE). */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (is_help(argv[i])) {
			admin_usage(stdout);
			return CLI_OK;
		} else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
			   i + 1 < argc) {
			ctx.config_path = argv[++i];
		} else if (!strncmp(argv[i], "--config=", 9)) {
			ctx.config_path = argv[i] + 9;
		} else {
			admin_err(NULL, "unknown or incomplete option '%s'", argv[i]);
			admin_usage(stderr);
			return CLI_USAGE;
		}
	}
	if (i == argc) {
		admin_err(NULL, "no verb given");
		admin_usage(stderr);
		return CLI_USAGE;
	}
	for (size_t k = 0; k < sizeof admin_verbs / sizeof admin_verbs[0]; k++)
		if (!strcmp(argv[i], admin_verbs[k].name))
			v = &admin_verbs[k];
	if (!v) {
		admin_err(NULL, "unknown verb '%s'", argv[i]);
		admin_usage(stderr);
		return CLI_USAGE;
	}
	for (int k = i + 1; k < argc && strcmp(argv[k], "--"); k++)
		if (is_help(argv[k])) {
			v->usage(stdout);
			return CLI_OK;
		}
	if (!ctx.config_path) {
		admin_err(v->name, "no configuration file: give -c FILE");
		v->usage(stderr);
		return CLI_USAGE;
	}
	rc = admin_load(&ctx, v->name);
	if (rc == CLI_OK)
		rc = v->fn(&ctx, argc - i, argv + i);
	sc_crlset_free(ctx.crls);
	sc_config_free(ctx.cfg);
	return rc;
}
