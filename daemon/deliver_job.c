/*
 * deliver_job.c - one complete message from the session to delivery_run() and
 * back (see deliver_job.h). Owns struct deliver_job: the spool descriptor, the
 * copied envelope, the recipients' certificates and a runtime reference.
 * Daemon process: the certificate lookups and the reply on the event loop,
 * delivery_run() on a worker thread (worker.h; the same pattern as CERC's
 * submission job in cmd_cerc.c).
 *
 * Certificates for encryption at rest are looked up on the loop through the
 * current runtime's repositories with the rule CERT applies (cmd_cert.c): the
 * first store that has the address answers, and only with a certificate that
 * is valid now and not revoked by the loaded CRLs; a store that is down while
 * no earlier one had the address makes the message wait (451), because
 * storing it in clear could defeat the recipient's encryption at rest. The
 * repository handles are not thread-safe (one LMDB read transaction each), so
 * the job gets parsed copies and never touches a repository.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver_job.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "transaction.h"
#include "worker.h"

static deliver_job_fn deliver_runner = delivery_run;

void deliver_job_set_runner(deliver_job_fn fn)
{
	deliver_runner = fn ? fn : delivery_run;
}

struct deliver_job {
	struct session *s;          /**< NULL once the session is gone */
	struct runtime *rt;         /**< referenced */
	struct delivery_cfg cfg;
	struct delivery_msg msg;
	struct delivery_rcpt *rcpt;
	size_t nrcpt;
	sc_status rc;               /**< delivery_run()'s */
	char id[40];
	char sid[24];
	char client[64];
	struct timespec t0;         /**< MAIL */
	/* decided before the worker: the whole message waits (451) */
	int early_code;
	char early_reply[200];
};

static long deliver_elapsed_us(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000000L + (t1.tv_nsec - t0->tv_nsec) / 1000L;
}

void deliver_job_detach(struct deliver_job *j)
{
	if (j)
		j->s = NULL;
}

static void deliver_job_free(struct deliver_job *j)
{
	for (size_t i = 0; i < j->nrcpt; i++)
		if (j->rcpt[i].cert)
			sc_cert_free(j->rcpt[i].cert);
	free(j->rcpt);
	if (j->msg.fd >= 0)
		close(j->msg.fd);
	if (j->rt)
		runtime_unref(j->rt);
	free(j);
}

/* sc_repo_lookup() callback: a parsed copy of the leaf. */
static sc_status deliver_cert_entry(void *arg, const struct sc_repo_entry *e)
{
	return sc_cert_parse(e->der[0], e->der_len[0], (sc_cert **)arg);
}

/* sc_repo_entries() callback: the store has the address (any state). */
static sc_status deliver_any_entry(void *arg, const struct sc_repo_entry *e)
{
	(void)e;
	*(int *)arg = 1;
	return SC_ERR_EXISTS;
}

/* The certificate to encrypt @p a's copy to. @return SC_OK (*@p out set);
 * SC_ERR_NOT_FOUND (store in clear); SC_ERR_TEMP (a store is down or holds an
 * unreadable entry: wait). */
static sc_status deliver_cert(struct runtime *rt, const struct sc_addr *a, sc_cert **out,
			      char *why, size_t whylen)
{
	time_t now = time(NULL);
	int unavailable = 0;

	*out = NULL;
	for (size_t i = 0; i < rt->nrepos; i++) {
		sc_repo *r = rt->repos[i]->repo;
		sc_status rc = sc_repo_lookup(r, a, now, rt->crls, deliver_cert_entry, out);
		int found = 0;

		if (rc == SC_OK)
			return SC_OK;
		if (*out) {
			sc_cert_free(*out);
			*out = NULL;
		}
		switch (rc) {
		case SC_ERR_NOT_FOUND:
		case SC_ERR_EXPIRED:
		case SC_ERR_NOT_YET_VALID:
		case SC_ERR_REVOKED:
			/* this store has the address: it answers, even "none usable" */
			if (sc_repo_entries(r, a, deliver_any_entry, &found) != SC_OK && !found)
				found = 0;
			if (found)
				return SC_ERR_NOT_FOUND;
			continue;
		default:
			snprintf(why, whylen, "repository %s: %s", sc_repo_name(r), sc_strerror(rc));
			unavailable = 1;
		}
	}
	return unavailable ? SC_ERR_TEMP : SC_ERR_NOT_FOUND;
}

/* Worker thread. */
static void deliver_job_work(void *arg)
{
	struct deliver_job *j = arg;

	j->rc = deliver_runner(&j->cfg, &j->msg);
}

/* One line per recipient: what happened to its copy. */
static void deliver_log_rcpt(const struct deliver_job *j, const struct delivery_rcpt *r)
{
	char key[SC_ADDR_KEY_MAX];
	const char *outcome = r->code / 100 == 2 ? "delivered" : r->code / 100 == 4 ? "deferred" :
			      "rejected";

	if (sc_addr_key(&r->addr, key, sizeof key, NULL) != SC_OK)
		snprintf(key, sizeof key, "?");
	log_msg(r->code / 100 == 2 ? LOG_INFO : r->code / 100 == 4 ? LOG_WARNING : LOG_ERR,
		"client=%s session=%s id=%s from=<%s> to=<%s> result=%d status=%s %s encrypted=%s%s%s%s",
		j->client, j->sid, j->id, j->msg.from, key, r->code, r->enhanced[0] ? r->enhanced : "-",
		outcome, r->encrypted ? "yes" : "no", r->code / 100 != 2 ? " reason=\"" : "",
		r->code / 100 != 2 ? (r->detail[0] ? r->detail : r->text) : "",
		r->code / 100 != 2 ? "\"" : "");
}

/* Printable, short text for a reply line. */
static void deliver_clean(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; in && *in && n + 1 < size && n < 120; in++) {
		unsigned char ch = (unsigned char)*in;

		out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[n] = '\0';
}

/* The one reply for the message (deliver_job.h); @p reply_out holds it. */
static int deliver_reply_text(struct deliver_job *j, char *out, size_t size)
{
	size_t ok = 0, temp = 0, first_fail = j->nrcpt;
	const struct delivery_rcpt *f;
	char text[130];

	for (size_t i = 0; i < j->nrcpt; i++) {
		struct delivery_rcpt *r = &j->rcpt[i];

		if (r->code < 200 || r->code > 599) {
			/* no result: the delivery could not run for it */
			r->code = 451;
			snprintf(r->enhanced, sizeof r->enhanced, "4.3.0");
			snprintf(r->text, sizeof r->text, "Delivery failed, try again later");
			if (!r->detail[0])
				snprintf(r->detail, sizeof r->detail, "%s", sc_strerror(j->rc));
		}
		if (r->code / 100 == 2) {
			ok++;
			continue;
		}
		if (r->code / 100 == 4)
			temp++;
		if (first_fail == j->nrcpt || (r->code / 100 == 4 && j->rcpt[first_fail].code / 100 != 4))
			first_fail = i;
	}
	if (ok == j->nrcpt) {
		snprintf(out, size, "250 2.0.0 %s delivered", j->id);
		return 250;
	}
	f = &j->rcpt[first_fail];
	deliver_clean(f->text, text, sizeof text);
	if (j->nrcpt == 1) {
		/* one recipient: its own reply (an LMTP server's 552 5.2.2 ...) */
		snprintf(out, size, "%d %s %s", f->code, f->enhanced[0] ? f->enhanced :
			 f->code / 100 == 4 ? "4.3.0" : "5.3.0", text[0] ? text : "Not delivered");
		return f->code;
	}
	if (temp) {
		/* retry the whole message: never lost, perhaps delivered twice */
		snprintf(out, size, "451 %s Not delivered to %zu of %zu recipients, try again later: %s",
			 f->enhanced[0] == '4' ? f->enhanced : "4.3.0", j->nrcpt - ok, j->nrcpt, text);
		return 451;
	}
	snprintf(out, size, "554 %s Not delivered to %zu of %zu recipients: %s",
		 f->enhanced[0] == '5' ? f->enhanced : "5.3.0", j->nrcpt - ok, j->nrcpt, text);
	return 554;
}

/* Event loop: the delivery finished (or never started). */
static void deliver_job_done(void *arg)
{
	struct deliver_job *j = arg;
	struct session *s = j->s;
	char out[400], status[12] = "-";
	int code;

	if (j->early_code) {
		code = j->early_code;
		snprintf(out, sizeof out, "%s", j->early_reply);
	} else {
		code = deliver_reply_text(j, out, sizeof out);
		for (size_t i = 0; i < j->nrcpt; i++)
			deliver_log_rcpt(j, &j->rcpt[i]);
	}
	sscanf(out, "%*d %11s", status);
	log_msg(code >= 400 ? LOG_NOTICE : LOG_INFO,
		"client=%s session=%s id=%s from=<%s> nrcpt=%zu size=%llu result=%d status=%s %s%s us=%ld",
		j->client, j->sid, j->id, j->msg.from, j->nrcpt, (unsigned long long)j->msg.size,
		code, status, code < 300 ? "delivered" : code < 500 ? "deferred" : "rejected",
		s ? "" : " (the client left before the reply)", deliver_elapsed_us(&j->t0));
	if (s && s->tx && s->tx->job == j) {
		s->tx->job = NULL;
		reply(s, "%s", out);
		transaction_reset(s);
		if (s->state == SESSION_DELIVER)
			session_enter(s, SESSION_READY);
		if (code >= 500)
			session_count_error(s);
		if (s->wake)
			s->wake(s);
	}
	deliver_job_free(j);
}

/* Fill the recipients; on the loop. @return 0 when the message must wait. */
static int deliver_job_rcpts(struct deliver_job *j, const struct transaction *tx)
{
	char why[300] = "";

	for (size_t i = 0; i < tx->nrcpt; i++) {
		struct delivery_rcpt *r = &j->rcpt[i];

		r->addr = tx->rcpt[i].addr;
		if (!j->rt->encrypt_at_rest)
			continue;
		if (deliver_cert(j->rt, &r->addr, &r->cert, why, sizeof why) == SC_ERR_TEMP) {
			log_msg(LOG_WARNING, "client=%s session=%s id=%s to=<%s> deferred: "
				"encrypt_at_rest: certificate lookup failed: %s",
				j->client, j->sid, j->id, tx->rcpt[i].key, why);
			j->early_code = 451;
			snprintf(j->early_reply, sizeof j->early_reply,
				 "451 4.3.0 Certificate repository temporarily unavailable, try again later");
			return 0;
		}
	}
	return 1;
}

void deliver_job_start(struct session *s)
{
	struct transaction *tx = s->tx;
	struct runtime *rt = runtime_current() ? runtime_current() : s->rt;
	const char *state_dir = sc_config_str(rt->cfg, "state_dir");
	struct deliver_job *j = calloc(1, sizeof *j);
	struct worker *w = worker_default();

	if (j)
		j->rcpt = calloc(tx->nrcpt, sizeof *j->rcpt);
	if (!j || !j->rcpt) {
		free(j);
		mail_log_message(s, 451, "4.3.0", "deferred", "no memory");
		reply(s, "451 4.3.0 Out of memory, try again later");
		transaction_reset(s);
		session_enter(s, SESSION_READY);
		return;
	}
	j->s = s;
	j->rt = rt;
	runtime_ref(rt);
	j->nrcpt = tx->nrcpt;
	snprintf(j->id, sizeof j->id, "%s", tx->id);
	snprintf(j->sid, sizeof j->sid, "%s", s->id);
	snprintf(j->client, sizeof j->client, "%s", s->peer);
	j->t0 = tx->t0;
	/* the job owns the spool from here: a session that goes away does not
	 * pull the message from under the worker */
	j->msg.fd = tx->spool_fd;
	tx->spool_fd = -1;
	j->msg.size = tx->data->written;
	snprintf(j->msg.from, sizeof j->msg.from, "%s", tx->from_key);
	j->msg.rcpt = j->rcpt;
	j->msg.nrcpt = j->nrcpt;
	j->msg.body_8bit = tx->body_8bit;
	j->msg.smtputf8 = tx->smtputf8;
	snprintf(j->cfg.spec, sizeof j->cfg.spec, "%s", rt->delivery_spec ? rt->delivery_spec : "");
	snprintf(j->cfg.hostname, sizeof j->cfg.hostname, "%s", rt->hostname);
	snprintf(j->cfg.tmp_dir, sizeof j->cfg.tmp_dir, "%s", state_dir ? state_dir : "");
	j->cfg.timeout_ms = (int)(rt->delivery_timeout > 0 ? rt->delivery_timeout * 1000 : 60000);
	j->cfg.encrypt_at_rest = rt->encrypt_at_rest;
	tx->job = j;
	session_enter(s, SESSION_DELIVER);
	if (!deliver_job_rcpts(j, tx)) {
		deliver_job_done(j);
		return;
	}
	if (!w) {
		/* no pool (unit tests): deliver here */
		deliver_job_work(j);
		deliver_job_done(j);
		return;
	}
	if (worker_submit(w, deliver_job_work, deliver_job_done, j) != SC_OK) {
		/* the pool's queue is full: a message is too big to write on the loop */
		j->early_code = 451;
		snprintf(j->early_reply, sizeof j->early_reply,
			 "451 4.3.0 Server busy, try again later");
		deliver_job_done(j);
	}
}
