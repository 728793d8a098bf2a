/*
 * queue.c - the front of the review queue of CERC submissions
 * (include/smtpcert/queue.h): choosing the backend (directories under state_dir,
 * lib/queue_dir.c, or the tables of a PostgreSQL database shared by several
 * nodes, lib/queue_pgsql.c), and what both share: argument and id checks, new
 * ids, the metadata of a submission (text from a peer cleaned to UTF-8, the
 * certificate's fingerprint, names and validity), the warn callback. The vtable
 * is in queue_int.h. Runs in the daemon (its CERC workers serialise calls on one
 * handle) and in `smtpcert admin`.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "queue_int.h"

void sc_queue_set_warn(sc_queue *q, sc_queue_warn_fn fn, void *arg)
{
	q->warn = fn;
	q->warn_arg = arg;
}

void sc_queue_set_node(sc_queue *q, const char *node)
{
	if (q && node && *node)
		sc_queue_copy_text(q->node, sizeof q->node, node);
}

void sc_queue_warnf(sc_queue *q, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!q->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	q->warn(q->warn_arg, msg);
}

sc_status sc_queue_new_id(char id[SC_QUEUE_ID_LEN + 1])
{
	uint8_t rnd[SC_QUEUE_ID_LEN / 2];
	ssize_t n;

	do
		n = getrandom(rnd, sizeof rnd, 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof rnd)
		return SC_ERR_INTERNAL;
	sc_hex(rnd, sizeof rnd, id);
	return SC_OK;
}

static int is_pgsql(const char *spec)
{
	return spec && strncasecmp(spec, "pgsql:", 6) == 0;
}

const char *sc_queue_db_spec(const sc_config *cfg)
{
	const char *const *specs;
	size_t n;

	if (!cfg)
		return NULL;
	n = sc_config_list(cfg, "repository", &specs);
	for (size_t i = 0; i < n; i++)
		if (is_pgsql(specs[i]))
			return specs[i];
	return NULL;
}

sc_status sc_queue_open(const char *state_dir, sc_queue **out, char *err, size_t errlen)
{
	return sc_queue_open_ex(state_dir, NULL, out, err, errlen);
}

static sc_status queue_open(const char *state_dir, const char *db_spec, int lazy,
			    sc_queue **out, char *err, size_t errlen)
{
	char host[256];
	sc_status st;

	SC_ENSURE_ARG(out);
	if (err && errlen)
		err[0] = '\0';
	if (!db_spec) {
		SC_ENSURE_ARG(state_dir);
		st = sc_queue_dir_open(state_dir, out, err, errlen);
	} else if (is_pgsql(db_spec)) {
		st = sc_queue_pg_open(db_spec + 6, lazy, out, err, errlen);
	} else {
		if (err && errlen)
			snprintf(err, errlen, "%.200s: the submission queue lives in a pgsql: "
				 "database or under state_dir", db_spec);
		return SC_ERR_CONFIG;
	}
	if (st != SC_OK)
		return st;
	if (gethostname(host, sizeof host) != 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	sc_queue_set_node(*out, host);
	return SC_OK;
}

sc_status sc_queue_open_ex(const char *state_dir, const char *db_spec, sc_queue **out,
			   char *err, size_t errlen)
{
	return queue_open(state_dir, db_spec, 0, out, err, errlen);
}

sc_status sc_queue_open_lazy(const char *state_dir, const char *db_spec, sc_queue **out,
			     char *err, size_t errlen)
{
	return queue_open(state_dir, db_spec, 1, out, err, errlen);
}

void sc_queue_close(sc_queue *q)
{
	if (q)
		q->ops->close(q);
}

sc_status sc_queue_audit(sc_queue *q, const char *actor, const char *action, const char *id,
			 const char *address, const char *detail)
{
	SC_ENSURE_ARG(q && action);
	return q->ops->audit(q, actor, action, id, address, detail);
}

sc_status sc_queue_add(sc_queue *q, const sc_cert *c, const struct sc_addr *addr,
		       const char *auth_user, const char *client, struct sc_submission *out)
{
	struct sc_submission s;
	uint8_t fp[32];
	char name[sizeof s.subject];

	SC_ENSURE_ARG(q && c && addr);
	memset(&s, 0, sizeof s);
	s.state = SC_SUB_PENDING;
	SC_TRY(sc_addr_key(addr, s.address, sizeof s.address, NULL));
	sc_queue_copy_text(s.auth_user, sizeof s.auth_user, auth_user);
	sc_queue_copy_text(s.client, sizeof s.client, client);
	s.received = (int64_t)time(NULL);
	sc_cert_fingerprint(c, fp);
	sc_hex(fp, 32, s.fingerprint);
	/* Through sc_queue_copy_text too: whatever the certificate holds, the entry
	 * encodes (as a file header or as a PostgreSQL text value). */
	sc_cert_subject(c, name, sizeof name);
	sc_queue_copy_text(s.subject, sizeof s.subject, name);
	sc_cert_issuer(c, name, sizeof name);
	sc_queue_copy_text(s.issuer, sizeof s.issuer, name);
	s.not_before = sc_cert_not_before(c);
	s.not_after = sc_cert_not_after(c);
	SC_TRY(q->ops->add(q, &s, c));
	if (out)
		*out = s;
	return SC_OK;
}

sc_status sc_queue_get(sc_queue *q, const char *id, struct sc_submission *out, sc_cert **cert)
{
	SC_ENSURE_ARG(q && id && out);
	SC_ENSURE(sc_queue_id_valid(id), SC_ERR_SYNTAX);
	if (cert)
		*cert = NULL;
	return q->ops->get(q, id, out, cert);
}

sc_status sc_queue_list(sc_queue *q, enum sc_submission_state state, sc_queue_fn fn, void *arg)
{
	SC_ENSURE_ARG(q && fn);
	return q->ops->list(q, state, fn, arg);
}

sc_status sc_queue_decide(sc_queue *q, const char *id, int accept, const char *reason,
			  const char *actor)
{
	SC_ENSURE_ARG(q && id);
	SC_ENSURE(sc_queue_id_valid(id), SC_ERR_SYNTAX);
	return q->ops->decide(q, id, accept, reason, actor);
}
