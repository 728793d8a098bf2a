/*
 * admin_decide.c - `smtpcert admin -c FILE accept ID [--force]` and `reject ID
 * [--reason TEXT]`: the administrator's decision on a CERC submission, taken while
 * the daemon runs. Accept re-checks the acceptance policy now, stores the
 * certificate in the first repository and only then records the decision (a
 * failed store decides nothing); the queue's rename makes the decision atomic and
 * appends it to the audit log. With notify_submitter = yes the submitter gets a
 * decision notice through the maildir delivery (local domains only). Runs in the
 * administrator's process.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_ctx.h"

/* Room for any notice: the fields are bounded by struct sc_submission. */
#define NOTICE_MAX 16384

void admin_accept_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert admin -c FILE accept ID [--force]\n\n"
		"Accepts a pending submission: checks the acceptance policy again (a\n"
		"certificate may have expired or been revoked since it was submitted),\n"
		"stores it in the first configured repository, where CERT and CERS find it\n"
		"at once, and records the decision in the queue and the audit log. If the\n"
		"policy now refuses it, nothing happens unless --force is given; --force\n"
		"never stores a certificate for an address it does not name or a domain\n"
		"that is not served. With notify_submitter = yes the submitter is told.\n\n"
		"example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf accept "
		"0123456789abcdef0123456789abcdef\n");
}

void admin_reject_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert admin -c FILE reject ID [--reason TEXT]\n\n"
		"Rejects a pending submission: it is kept under rejected/ with the reason\n"
		"and the decision is appended to the audit log. With notify_submitter = yes\n"
		"the submitter is told, reason included.\n\n"
		"example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf reject "
		"0123456789abcdef0123456789abcdef --reason \"not issued by our CA\"\n");
}

/* "admin:NAME" of the real user (sudo keeps the invoking user in SUDO_USER). */
static void actor_name(char *buf, size_t size)
{
	const struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");

	if (pw && sudo && *sudo && strlen(sudo) < 64)
		snprintf(buf, size, "admin:%s(sudo:%s)", pw->pw_name, sudo);
	else if (pw)
		snprintf(buf, size, "admin:%s", pw->pw_name);
	else
		snprintf(buf, size, "admin:uid%ld", (long)getuid());
}

static void host_name(const sc_config *cfg, char *buf, size_t size)
{
	const char *h = sc_config_str(cfg, "hostname");

	if (h)
		snprintf(buf, size, "%s", h);
	else if (gethostname(buf, size) != 0 || !buf[0])
		snprintf(buf, size, "localhost");
	buf[size - 1] = '\0';
}

/* postmaster, or postmaster@<first domain> as smtpcertd.conf(5) says. */
static void postmaster(const sc_config *cfg, char *buf, size_t size)
{
	const char *pm = sc_config_str(cfg, "postmaster");
	const char *const *domains;

	if (pm)
		snprintf(buf, size, "%s", pm);
	else if (sc_config_list(cfg, "domains", &domains) > 0)
		snprintf(buf, size, "postmaster@%s", domains[0]);
	else
		snprintf(buf, size, "postmaster");
}

/*
 * The optional decision notice. A failure is reported and audited but does not
 * undo the decision: the submitter can still ask, the postmaster knows.
 */
static void notify_submitter(struct admin_ctx *ctx, sc_queue *q, const char *verb,
			     const char *id, const char *actor)
{
	const char *delivery = sc_config_str(ctx->cfg, "delivery");
	struct sc_submission s;
	struct sc_addr addr;
	char host[256], pm[SC_ADDR_KEY_MAX + 16], err[1024] = "", *msg = NULL;
	size_t len;
	sc_status st;

	if (!sc_config_bool(ctx->cfg, "notify_submitter"))
		return;
	if (sc_queue_get(q, id, &s, NULL) != SC_OK ||
	    sc_addr_parse(s.address, strlen(s.address), SC_ADDR_UTF8, &addr, NULL) != SC_OK)
		return;
	/* Only our own users' mailboxes are here; gateway domains deliver elsewhere. */
	if (sc_config_domain_kind(ctx->cfg, addr.domain) != SC_DOMAIN_LOCAL)
		return;
	if (!delivery || strncmp(delivery, "maildir:", 8)) {
		admin_err(verb, "warning: notify_submitter: no maildir: delivery configured; %s "
			  "not notified", s.address);
		st = SC_ERR_CONFIG;
		goto audit;
	}
	host_name(ctx->cfg, host, sizeof host);
	postmaster(ctx->cfg, pm, sizeof pm);
	msg = malloc(NOTICE_MAX);
	st = msg ? sc_notice_format_decision(&s, host, pm, msg, NOTICE_MAX, &len) : SC_ERR_NOMEM;
	if (st == SC_OK)
		st = sc_maildir_deliver(delivery, &addr, msg, len, err, sizeof err);
	free(msg);
	if (st == SC_OK) {
		printf("notified %s\n", s.address);
		if (sc_queue_audit(q, actor, "notify", id, s.address, "decision notice delivered") !=
		    SC_OK)
			admin_err(verb, "warning: cannot append to the audit log");
		return;
	}
	admin_err(verb, "warning: the decision notice to %s was not delivered: %s", s.address,
		  err[0] ? err : sc_strerror(st));
audit:
	if (sc_queue_audit(q, actor, "notify-failed", id, s.address,
			   err[0] ? err : sc_strerror(st)) != SC_OK)
		admin_err(verb, "warning: cannot append to the audit log");
}

struct has_fp {
	uint8_t fp[32];
	int found;
};

static sc_status has_fp_fn(void *arg, const struct sc_repo_entry *e)
{
	struct has_fp *h = arg;

	if (!memcmp(e->fingerprint, h->fp, 32))
		h->found = 1;
	return SC_OK;
}

/* Store @p c under @p addr; *@p added says whether the entry is new (for undo). */
static int store(struct admin_ctx *ctx, const struct sc_addr *addr, const sc_cert *c,
		 sc_repo **repo, int *added)
{
	const char *const *specs;
	size_t nspec = sc_config_list(ctx->cfg, "repository", &specs);
	struct has_fp h = { .found = 0 };
	char err[1024] = "";
	sc_status st;

	if (nspec == 0) {
		admin_err("accept", "%s: no repository configured", ctx->config_path);
		return CLI_FAILURE;
	}
	/* The first repository is the one the admin tool writes (smtpcertd.conf(5)). */
	if (!admin_repo_local("accept", specs[0]))
		return CLI_FAILURE;
	/* A queue shared by several nodes with a first store only this node reads:
	 * the others will not serve it (docs/scaling.md). No spec in the message: a
	 * conninfo may hold a password. */
	if (sc_queue_db_spec(ctx->cfg) && sc_queue_db_spec(ctx->cfg) != specs[0])
		admin_err("accept", "warning: the submission queue is in the pgsql: database, "
			  "but the certificate goes to the first repository, which other nodes "
			  "may not read; put the pgsql: store first");
	st = sc_repo_open(specs[0], SC_REPO_CREATE, repo, err, sizeof err);
	if (st != SC_OK) {
		admin_err("accept", "%s", err[0] ? err : sc_strerror(st));
		return cli_exit_for(st);
	}
	sc_repo_set_warn(*repo, admin_repo_warn, "accept");
	sc_cert_fingerprint(c, h.fp);
	st = sc_repo_entries(*repo, addr, has_fp_fn, &h);
	if (st == SC_OK)
		st = sc_repo_store(*repo, addr, c);
	if (st != SC_OK) {
		admin_err("accept", "cannot store in %s: %s; nothing was decided", specs[0],
			  st == SC_ERR_TOO_MANY ? "too many certificates for this address "
						  "(remove some first)"
						: sc_strerror(st));
		return cli_exit_for(st);
	}
	*added = !h.found;
	return CLI_OK;
}

int admin_accept(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *id = NULL;
	struct sc_submission s;
	struct sc_addr addr;
	char reason[512], actor[160];
	sc_repo *repo = NULL;
	sc_queue *q = NULL;
	sc_cert *c = NULL;
	int force = 0, added = 0, rc;
	sc_status st;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force")) {
			force = 1;
		} else if (argv[i][0] == '-' || id) {
			admin_err("accept", "unexpected argument '%s'", argv[i]);
			admin_accept_usage(stderr);
			return CLI_USAGE;
		} else {
			id = argv[i];
		}
	}
	if (!id) {
		admin_err("accept", "no submission id given");
		admin_accept_usage(stderr);
		return CLI_USAGE;
	}
	rc = admin_queue_open(ctx, "accept", &q);
	if (rc != CLI_OK)
		return rc;
	rc = admin_queue_get("accept", q, id, &s, &c);
	if (rc != CLI_OK)
		goto out;
	if (s.state != SC_SUB_PENDING) {
		admin_err("accept", "%s: already %s", id,
			  s.state == SC_SUB_ACCEPTED ? "accepted" : "rejected");
		rc = cli_exit_for(SC_ERR_EXISTS);
		goto out;
	}
	st = admin_policy_verdict(ctx, &s, c, &addr, reason, sizeof reason);
	if (st == SC_ERR_SYNTAX) {
		admin_err("accept", "%s: %s", id, reason);
		rc = CLI_DATA;
		goto out;
	}
	/* --force overrides the policy, never the identity: the address is the key. */
	if (!sc_cert_has_email(c, &addr) ||
	    sc_config_domain_kind(ctx->cfg, addr.domain) == SC_DOMAIN_FOREIGN) {
		admin_err("accept", "%s: refused: the certificate does not name %s in a served "
			  "domain", id, s.address);
		rc = CLI_DATA;
		goto out;
	}
	if (st != SC_OK && !force) {
		admin_err("accept", "%s: refused: %s (--force accepts it anyway)", id,
			  reason[0] ? reason : sc_strerror(st));
		rc = CLI_DATA;
		goto out;
	}
	if (st != SC_OK)
		admin_err("accept", "%s: warning: accepted despite the policy: %s", id, reason);
	rc = store(ctx, &addr, c, &repo, &added);
	if (rc != CLI_OK)
		goto out;
	actor_name(actor, sizeof actor);
	st = sc_queue_decide(q, id, 1, st != SC_OK ? "forced" : NULL, actor);
	if (st != SC_OK) {
		/* Someone decided first (the other admin, or auto): undo our store. */
		uint8_t fp[32];
		size_t n;

		sc_cert_fingerprint(c, fp);
		if (added && sc_repo_remove(repo, &addr, fp, &n) != SC_OK)
			admin_err("accept", "%s: warning: could not remove the certificate "
				  "stored a moment ago from %s", id, sc_repo_name(repo));
		admin_err("accept", "%s: %s", id,
			  st == SC_ERR_EXISTS ? "decided meanwhile by someone else; not accepted"
					      : sc_strerror(st));
		rc = cli_exit_for(st);
		goto out;
	}
	printf("accepted %s: certificate for %s stored in %s (sha256 %s)\n", id, s.address,
	       sc_repo_name(repo), s.fingerprint);
	notify_submitter(ctx, q, "accept", id, actor);
out:
	sc_repo_close(repo);
	sc_cert_free(c);
	sc_queue_close(q);
	return rc;
}

int admin_reject(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *id = NULL, *reason = NULL;
	struct sc_submission s;
	char actor[160];
	sc_queue *q = NULL;
	sc_status st;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reason") && i + 1 < argc) {
			reason = argv[++i];
		} else if (!strncmp(argv[i], "--reason=", 9)) {
			reason = argv[i] + 9;
		} else if (argv[i][0] == '-' || id) {
			admin_err("reject", "unexpected argument '%s'", argv[i]);
			admin_reject_usage(stderr);
			return CLI_USAGE;
		} else {
			id = argv[i];
		}
	}
	if (!id) {
		admin_err("reject", "no submission id given");
		admin_reject_usage(stderr);
		return CLI_USAGE;
	}
	if (reason && strlen(reason) >= sizeof s.reason) {
		admin_err("reject", "--reason: at most %zu bytes", sizeof s.reason - 1);
		return CLI_USAGE;
	}
	if (!sc_queue_id_valid(id)) {
		admin_err("reject", "'%s' is not a submission id (32 lower-case hex digits, as "
			  "'pending' prints them)", id);
		return CLI_USAGE;
	}
	rc = admin_queue_open(ctx, "reject", &q);
	if (rc != CLI_OK)
		return rc;
	actor_name(actor, sizeof actor);
	/* A damaged entry can still be rejected: decide without reading it first. */
	st = sc_queue_decide(q, id, 0, reason, actor);
	switch (st) {
	case SC_OK:
		printf("rejected %s\n", id);
		notify_submitter(ctx, q, "reject", id, actor);
		break;
	case SC_ERR_EXISTS:
		admin_err("reject", "%s: already %s", id,
			  sc_queue_get(q, id, &s, NULL) != SC_OK ? "decided"
			  : s.state == SC_SUB_REJECTED		 ? "rejected"
								 : "accepted");
		rc = cli_exit_for(st);
		break;
	case SC_ERR_NOT_FOUND:
		admin_err("reject", "%s: no such submission", id);
		rc = CLI_NOT_FOUND;
		break;
	default:
		admin_err("reject", "%s: %s", id, sc_strerror(st));
		rc = cli_exit_for(st);
	}
	sc_queue_close(q);
	return rc;
}
