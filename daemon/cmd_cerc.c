/*
 * cmd_cerc.c - CERC, the authenticated certificate submission (the certificate
 * service proposal; replies per INTERFACE.md and docs/protocol.md), and DATA
 * after it. Owns the session's struct cerc and the submission jobs. Daemon
 * process: the checks run on the event loop, the blocking parts on the worker
 * pool (daemon/worker.h).
 *
 *   CERC <addr>  off -> 550 5.7.0; in a mail transaction -> 503 5.5.1; not
 *                authenticated -> 530 5.7.0; syntax -> 501 5.5.4; foreign domain
 *                -> 550 5.7.1; identity != address and not in submission_admins
 *                -> 550 5.7.1; else 250 2.0.0 and the CERC is pending.
 *   DATA         354, then the upload (upload.c); after the final "." either an
 *                immediate refusal (552 size, 500 line) or the job below.
 *
 * The job (worker thread): parse (550 5.7.1 Invalid Certificate: ...), the
 * acceptance policy (sc_policy_check, same 550), sc_queue_add (fsync'ed: the
 * 250 means on disk; failure 451 4.3.0), then the postmaster notice: formatted,
 * spooled durably in STATE/notices/ and delivered (notify.c). While it runs the
 * session is in SUBMIT and reads nothing, so pipelined commands keep their order.
 *
 * submissions = auto: after the queue add, the done callback stores the
 * certificate into the first repository ON THE EVENT LOOP THREAD, then records
 * the decision (actor "auto"), then a second job spools and delivers the notice
 * (which says "accepted"). The store is on the loop because the repository
 * handle is shared with every CERT lookup and is not thread-safe (repo_lmdb.c
 * keeps one read transaction per handle), and LMDB forbids a second handle in
 * one process. Cost: one LMDB write transaction with its fsync (a few ms) during
 * which other sessions wait; submissions are rare and authenticated, lookups
 * are not delayed otherwise. If the store fails the submission stays pending
 * (reply "queued") and the administrator decides. A remote first store
 * (sc_repo_is_remote: pgsql: shared by several nodes) is thread-safe and slow,
 * so there the store and the decision run on the worker instead.
 *
 * Privilege separation (writer.h, started as root with `user`): this process
 * holds no queue and no writable store; the worker asks the writer process
 * instead of sc_queue_add (SUBMIT) and, under auto, to store what it queued
 * (STORE by id), both synchronously from the worker thread. No writer
 * answering is a 451 4.3.0 like any failed queue add.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "log.h"
#include "notify.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "upload.h"
#include "worker.h"
#include "writer.h"

/* Largest postmaster notice. */
#define CERC_NOTICE_MAX (16 * 1024)

/* sc_queue is used by worker threads and (auto) the loop: one at a time. */
static pthread_mutex_t cerc_queue_lock = PTHREAD_MUTEX_INITIALIZER;

struct cerc_job;

struct cerc {
	struct sc_addr addr;
	char key[SC_ADDR_KEY_MAX];
	char user[SC_ADDR_KEY_MAX];
	struct upload up;
	unsigned uploading : 1;
	struct cerc_job *job;      /**< in flight (SESSION_SUBMIT) */
	struct timespec t0;        /**< the final "." */
};

/* Shared between the session (loop) and the worker; see worker.h cancellation. */
struct cerc_job {
	struct session *s;         /**< NULL once the session is gone */
	struct runtime *rt;        /**< referenced on the loop thread */
	char *text;                /**< the upload (owned) */
	size_t len;
	struct sc_addr addr;
	char key[SC_ADDR_KEY_MAX];
	char user[SC_ADDR_KEY_MAX];
	char client[64];
	char sid[24];
	struct timespec t0;
	time_t now;
	int auto_accept;
	int auto_done;             /**< remote first store: auto ran on the worker */
	int via_writer;            /**< privilege separation: the writer writes */
	int phase;                 /**< 1: checks + queue (+ notice), 2: notice only */
	/* results */
	sc_cert *cert;
	struct sc_submission sub;
	int code;
	char reply[400];
	char why[512];             /**< for the log: what went wrong */
	sc_status notice_rc;
	char notice_err[512];
};

/* The authenticated identity (AUTH, RFC 4954), or NULL. */
static const char *cerc_session_user(const struct session *s)
{
	return s->auth_user[0] ? s->auth_user : NULL;
}

static long cerc_elapsed_us(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000000L + (t1.tv_nsec - t0->tv_nsec) / 1000L;
}

/* Reasons may quote certificate content: printable ASCII only, no quotes. */
static void cerc_clean(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; in && *in && n + 1 < size; in++) {
		unsigned char ch = (unsigned char)*in;

		out[n++] = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
	}
	out[n] = '\0';
}

/* The one log line per submission (docs/design.md format). */
static void cerc_log(const struct session *s, const char *key, const char *user, int code,
		     const char *status, const char *id, size_t size, long us, const char *why)
{
	char reason[300];

	cerc_clean(why, reason, sizeof reason);
	log_msg(code >= 400 ? LOG_NOTICE : LOG_INFO,
		"client=%s session=%s cmd=CERC addr=%s user=%s result=%d status=%s id=%s size=%zu us=%ld%s%s%s",
		s->peer, s->id, key, user && *user ? user : "-", code, status, id && *id ? id : "-",
		size, us, reason[0] ? " reason=\"" : "", reason, reason[0] ? "\"" : "");
}

/* May @p user submit for the address with lookup key @p key? */
static int cerc_authorized(const struct runtime *rt, const char *user, const char *key)
{
	const char *const *admins;
	size_t n = sc_config_list(rt->cfg, "submission_admins", &admins);
	char ukey[SC_ADDR_KEY_MAX];
	struct sc_addr ua;
	const char *why;

	/* identities compare as lookup keys (docs/design.md): case of the local
	 * part, quoting and a trailing dot do not matter */
	if (sc_addr_parse(user, strlen(user), SC_ADDR_UTF8, &ua, &why) != SC_OK ||
	    sc_addr_key(&ua, ukey, sizeof ukey, NULL) != SC_OK)
		return 0;
	if (strcmp(ukey, key) == 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		char akey[SC_ADDR_KEY_MAX];
		struct sc_addr aa;

		if (sc_addr_parse(admins[i], strlen(admins[i]), SC_ADDR_UTF8, &aa, &why) == SC_OK &&
		    sc_addr_key(&aa, akey, sizeof akey, NULL) == SC_OK && strcmp(akey, ukey) == 0)
			return 1;
	}
	return 0;
}

void cmd_cerc(struct session *s, struct request *rq)
{
	const char *user = cerc_session_user(s);
	struct sc_addr a;
	struct cerc *c;

	if (s->rt->submissions == RUNTIME_SUBMIT_OFF) {
		reply(s, "550 5.7.0 Service Unavailable");
		return;
	}
	/* RFC 5321 4.1.4: like MAIL, not inside a mail transaction */
	if (s->tx) {
		reply(s, "503 5.5.1 CERC not allowed inside a mail transaction");
		return;
	}
	/* The security-critical write path: nobody unauthenticated may plant a
	 * certificate (RFC 4954 6: 530 5.7.0). */
	if (!user) {
		reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (!cert_address(s, rq, &a))
		return;
	if (!cerc_authorized(s->rt, user, rq->logaddr)) {
		log_msg(LOG_NOTICE, "client=%s session=%s cmd=CERC addr=%s user=%s refused: not authorized",
			s->peer, s->id, rq->logaddr, user);
		reply(s, "550 5.7.1 Not authorized to submit a certificate for this address");
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		reply(s, "451 4.3.0 Out of memory, try again later");
		return;
	}
	c->addr = a;
	snprintf(c->key, sizeof c->key, "%s", rq->logaddr);
	snprintf(c->user, sizeof c->user, "%s", user);
	s->cerc = c;
	reply(s, "250 2.0.0 Send the certificate with DATA");
}

void cmd_data(struct session *s, struct request *rq)
{
	struct cerc *c = s->cerc;

	if (!c) {
		/* mail reception is a later issue */
		reply(s, "502 5.5.1 Command not implemented");
		return;
	}
	upload_init(&c->up, (size_t)s->rt->submission_max);
	c->uploading = 1;
	s->bulk_input = cerc_upload_input;
	session_enter(s, SESSION_UPLOAD);
	/* RFC 5321 4.1.1.4 / 4.3.2: 354 intermediate reply */
	reply(s, "354 End certificate with <CR><LF>.<CR><LF>");
}

void cerc_reset(struct session *s)
{
	struct cerc *c = s->cerc;

	if (!c || c->job)
		return;
	upload_fini(&c->up);
	free(c);
	s->cerc = NULL;
}

void cerc_free(struct session *s)
{
	struct cerc *c = s->cerc;

	if (!c)
		return;
	if (c->job)
		c->job->s = NULL; /* it completes without us */
	c->job = NULL;
	cerc_reset(s);
}

static void cerc_job_free(struct cerc_job *j)
{
	if (j->cert)
		sc_cert_free(j->cert);
	free(j->text);
	if (j->rt)
		runtime_unref(j->rt);
	free(j);
}

/* Worker thread: spool the notice durably, then try to deliver it. */
static void cerc_job_notice(struct cerc_job *j)
{
	const struct runtime *rt = j->rt;
	const char *state_dir = sc_config_str(rt->cfg, "state_dir");
	char *msg = malloc(CERC_NOTICE_MAX), pm[SC_ADDR_KEY_MAX];
	struct notify_target *t = calloc(1, sizeof *t);
	size_t len = 0;

	j->notice_rc = SC_ERR_NOMEM;
	if (!msg || !t)
		goto out;
	if (sc_addr_key(&rt->postmaster, pm, sizeof pm, NULL) != SC_OK)
		snprintf(pm, sizeof pm, "postmaster");
	j->notice_rc = sc_notice_format(&j->sub, rt->hostname, pm, sc_config_source(rt->cfg), msg,
					CERC_NOTICE_MAX, &len);
	if (j->notice_rc != SC_OK) {
		snprintf(j->notice_err, sizeof j->notice_err, "cannot format: %s",
			 sc_strerror(j->notice_rc));
		goto out;
	}
	/* the same delivery settings (hostname, timeout) as the retry passes */
	notify_target_fill(t, rt);
	j->notice_rc = notify_save(state_dir, j->sub.id, msg, len, j->notice_err,
				   sizeof j->notice_err);
	if (j->notice_rc != SC_OK) {
		/* not spooled: try to deliver it at once rather than lose it */
		if (notify_send(t, msg, len, j->notice_err, sizeof j->notice_err) == SC_OK)
			j->notice_rc = SC_OK;
		goto out;
	}
	j->notice_rc = notify_deliver(t, j->sub.id, j->notice_err, sizeof j->notice_err);
out:
	free(msg);
	free(t);
}

/* Worker thread, submissions = auto under privilege separation: the writer
 * stores the certificate it queued under the id (writer.h), so no repository
 * handle of this process is involved. Failure leaves it pending, as below. */
static void cerc_job_auto_writer(struct cerc_job *j)
{
	struct sc_submission acc;
	char why[512];

	if (writer_store(j->sub.id, &acc, why, sizeof why) != SC_OK) {
		log_msg(LOG_WARNING, "session=%s id=%s addr=%s submissions=auto: %s; "
			"left pending for the administrator", j->sid, j->sub.id, j->key, why);
		return;
	}
	j->sub = acc;
	snprintf(j->reply, sizeof j->reply, "250 2.0.0 %s accepted", j->sub.id);
}

static void cerc_job_auto(struct cerc_job *j);

/* Worker thread, phase 1: parse, policy, queue; the notice too unless auto. */
static void cerc_job_work(void *arg)
{
	struct cerc_job *j = arg;
	const struct runtime *rt = j->rt;
	struct sc_policy pol = { .cfg = rt->cfg, .crls = rt->crls,
				 .ca_file = sc_config_str(rt->cfg, "submission_ca_file"),
				 .now = j->now };
	char reason[256] = "";
	sc_status rc;

	if (j->phase == 2) {
		cerc_job_notice(j);
		return;
	}
	rc = sc_cert_parse(j->text, j->len, &j->cert);
	if (rc != SC_OK) {
		snprintf(j->why, sizeof j->why, "parse: %s", sc_strerror(rc));
		if (rc == SC_ERR_NOMEM) {
			j->code = 451;
			snprintf(j->reply, sizeof j->reply, "451 4.3.0 Out of memory, try again later");
		} else if (rc == SC_ERR_TOO_LONG || rc == SC_ERR_TOO_MANY) {
			/* docs/protocol.md 6.1: over 64 KiB or eight certificates */
			j->code = 552;
			snprintf(j->reply, sizeof j->reply, "552 5.3.4 %s",
				 rc == SC_ERR_TOO_LONG ? "Certificate upload too large" :
				 "Too many certificates in the upload");
		} else {
			j->code = 550;
			snprintf(j->reply, sizeof j->reply,
				 "550 5.7.1 Invalid Certificate: not a certificate");
		}
		return;
	}
	rc = sc_policy_check(&pol, j->cert, &j->addr, reason, sizeof reason);
	if (rc != SC_OK) {
		snprintf(j->why, sizeof j->why, "policy: %s", reason[0] ? reason : sc_strerror(rc));
		if (rc == SC_ERR_POLICY) {
			j->code = 550;
			snprintf(j->reply, sizeof j->reply, "550 5.7.1 Invalid Certificate: %s",
				 reason[0] ? reason : "refused by policy");
		} else {
			/* the policy could not be applied (anchors unreadable, ...) */
			j->code = 451;
			snprintf(j->reply, sizeof j->reply,
				 "451 4.3.0 Submission could not be checked, try again later");
		}
		return;
	}
	if (j->via_writer) {
		/* the writer process queues it (writer.h); its why is the reason */
		rc = writer_submit(j->cert, &j->addr, j->user, j->client, &j->sub, j->why,
				   sizeof j->why);
	} else {
		pthread_mutex_lock(&cerc_queue_lock);
		rc = sc_queue_add(rt->queue, j->cert, &j->addr, j->user, j->client, &j->sub);
		pthread_mutex_unlock(&cerc_queue_lock);
	}
	if (rc != SC_OK) {
		/* never 250 without the data on disk */
		j->code = 451;
		if (!j->via_writer)
			snprintf(j->why, sizeof j->why, "queue: %s", sc_strerror(rc));
		snprintf(j->reply, sizeof j->reply,
			 "451 4.3.0 Submission could not be stored, try again later");
		return;
	}
	j->code = 250;
	snprintf(j->reply, sizeof j->reply, "250 2.0.0 %s queued", j->sub.id);
	if (j->auto_accept && j->via_writer)
		cerc_job_auto_writer(j);
	/* a remote first store (pgsql:, shared by several nodes) is written from
	 * this worker, never from the event loop: the store and the shared
	 * queue's decision both go over the network */
	if (j->auto_accept && !j->via_writer && j->rt->nrepos &&
	    sc_repo_is_remote(j->rt->repos[0]->repo)) {
		cerc_job_auto(j);
		j->auto_done = 1;
	}
	if (!j->auto_accept)
		cerc_job_notice(j);
}

/* Event loop (worker for a remote first store): submissions = auto, after the
 * durable queue add. */
static void cerc_job_auto(struct cerc_job *j)
{
	struct runtime_repo *rr = j->rt->nrepos ? j->rt->repos[0] : NULL;
	sc_status rc = SC_ERR_PERM;

	if (rr && rr->writable)
		rc = sc_repo_store(rr->repo, &j->addr, j->cert);
	if (rc != SC_OK) {
		log_msg(LOG_WARNING, "session=%s id=%s addr=%s submissions=auto: cannot store into %s: %s; "
			"left pending for the administrator%s", j->sid, j->sub.id, j->key,
			rr ? sc_repo_name(rr->repo) : "(no repository)", sc_strerror(rc),
			rr && !rr->writable ? " (the store was opened read-only: restart smtpcertd)" : "");
		return;
	}
	pthread_mutex_lock(&cerc_queue_lock);
	rc = sc_queue_decide(j->rt->queue, j->sub.id, 1, NULL, "auto");
	pthread_mutex_unlock(&cerc_queue_lock);
	if (rc != SC_OK)
		log_msg(LOG_ERR, "session=%s id=%s addr=%s stored, but recording the decision failed: %s",
			j->sid, j->sub.id, j->key, sc_strerror(rc));
	else
		j->sub.state = SC_SUB_ACCEPTED;
	snprintf(j->reply, sizeof j->reply, "250 2.0.0 %s accepted", j->sub.id);
}

static void cerc_job_done(void *arg);

static void cerc_job_run(struct cerc_job *j)
{
	struct worker *w = worker_default();

	if (w && worker_submit(w, cerc_job_work, cerc_job_done, j) == SC_OK)
		return;
	/* no pool (unit tests), or its queue is full: do it here */
	cerc_job_work(j);
	cerc_job_done(j);
}

/* Event loop: a phase finished. */
static void cerc_job_done(void *arg)
{
	struct cerc_job *j = arg;
	struct session *s = j->s;
	char status[12] = "-";

	if (j->phase == 1 && j->code == 250 && j->auto_accept) {
		if (!j->via_writer && !j->auto_done)
			cerc_job_auto(j);
		j->phase = 2;
		cerc_job_run(j);
		return;
	}
	if (j->code == 250 && j->notice_rc != SC_OK)
		log_msg(j->notice_rc == SC_ERR_CONFIG ? LOG_WARNING : LOG_ERR,
			"session=%s id=%s postmaster notice not delivered (retried every %d s): %s",
			j->sid, j->sub.id, NOTIFY_RETRY_SECONDS, j->notice_err);
	/* The idle timer runs during SESSION_SUBMIT: a timeout may have closed
	 * the session meanwhile. Either way it must not keep the freed job. */
	if (s)
		s->cerc->job = NULL;
	if (s && s->state == SESSION_SUBMIT) {
		sscanf(j->reply, "%*d %11s", status);
		cerc_log(s, j->key, j->user, j->code, status, j->sub.id, j->len,
			 cerc_elapsed_us(&j->t0), j->why);
		reply(s, "%s", j->reply);
		cerc_reset(s);
		session_enter(s, SESSION_READY);
		if (j->code >= 500)
			session_count_error(s);
		if (s->wake)
			s->wake(s);
	} else {
		if (s)
			cerc_reset(s);
		if (j->code == 250)
			log_msg(LOG_INFO, "session=%s id=%s addr=%s submitted; the client left before the reply",
				j->sid, j->sub.id, j->key);
	}
	cerc_job_free(j);
}

/* The final "." arrived with an acceptable size: hand the text to a job. */
static void cerc_submit(struct session *s, struct cerc *c)
{
	struct cerc_job *j = calloc(1, sizeof *j);
	size_t len;
	const char *text = upload_data(&c->up, &len);

	if (!j || !(j->text = malloc(len ? len : 1))) {
		free(j);
		cerc_log(s, c->key, c->user, 451, "4.3.0", NULL, len, cerc_elapsed_us(&c->t0),
			 "no memory");
		reply(s, "451 4.3.0 Out of memory, try again later");
		cerc_reset(s);
		session_enter(s, SESSION_READY);
		return;
	}
	if (len)
		memcpy(j->text, text, len);
	j->len = len;
	upload_fini(&c->up);
	j->s = s;
	/* the job sees the configuration of the moment, kept alive across a reload */
	j->rt = runtime_current() ? runtime_current() : s->rt;
	runtime_ref(j->rt);
	j->addr = c->addr;
	snprintf(j->key, sizeof j->key, "%s", c->key);
	snprintf(j->user, sizeof j->user, "%s", c->user);
	snprintf(j->client, sizeof j->client, "%s", s->peer);
	snprintf(j->sid, sizeof j->sid, "%s", s->id);
	j->t0 = c->t0;
	j->now = time(NULL);
	j->phase = 1;
	j->auto_accept = j->rt->submissions == RUNTIME_SUBMIT_AUTO;
	j->via_writer = writer_enabled() && j->rt->submissions != RUNTIME_SUBMIT_OFF;
	if (!j->rt->queue && !j->via_writer) {
		/* submissions were switched off by a reload meanwhile */
		j->code = 550;
		snprintf(j->reply, sizeof j->reply, "550 5.7.0 Service Unavailable");
		j->auto_accept = 0;
	}
	c->job = j;
	session_enter(s, SESSION_SUBMIT);
	if (j->code)
		cerc_job_done(j);
	else
		cerc_job_run(j);
}

void cerc_upload_input(struct session *s, sc_buf *in)
{
	struct cerc *c = s->cerc;
	sc_status rc;

	if (s->state != SESSION_UPLOAD || !c)
		return;
	rc = upload_feed(&c->up, in);
	if (rc == SC_AGAIN)
		return;
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	if (rc != SC_OK || c->up.verdict != UPLOAD_OK) {
		/* the upload was read to its end: the session is in sync */
		int code = rc != SC_OK ? 451 : c->up.verdict == UPLOAD_TOO_BIG ? 552 : 500;
		const char *status = code == 451 ? "4.3.0" : code == 552 ? "5.3.4" : "5.5.2";
		const char *text = code == 451 ? "Out of memory, try again later" :
				   code == 552 ? "Certificate upload too large" :
				   "Line too long in certificate upload"; /* RFC 5321 4.5.3.1.6 */

		cerc_log(s, c->key, c->user, code, status, NULL, c->up.seen, 0, text);
		reply(s, "%d %s %s", code, status, text);
		cerc_reset(s);
		session_enter(s, SESSION_READY);
		if (code >= 500)
			session_count_error(s);
		return;
	}
	cerc_submit(s, c);
}
