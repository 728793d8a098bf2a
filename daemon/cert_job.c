/*
 * cert_job.c - the ordered repository walk of CERT/CERS and the worker job
 * that runs it off the event loop for runtimes with a remote store (see
 * cert_job.h). Owns struct cert_job, its reply body and the FIFO of lookups
 * waiting for a slot on the pool. Daemon process: the walk runs on the loop
 * (local stores) or on a worker thread; start, cancel, done and the FIFO run
 * on the loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert_job.h"
#include "commands.h"
#include "reply.h"
#include "session.h"
#include "worker.h"

static int cert_job_forced;
/* loop thread: lookups on the pool, and those waiting for a slot (FIFO) */
static unsigned cert_inflight;
static struct cert_job *cert_wait_head, *cert_wait_tail;
static size_t cert_nwaiting;

struct cert_emit {
	const struct cert_walk *w;
	const struct cert_sink *sink;
	const char *url;
	int too_big;     /* the reply would not fit the room */
	int sink_failed; /* the sink refused a line (no memory) */
};

/* sc_repo_lookup() callback: the chosen entry's "250-" lines, all or none. */
static sc_status cert_emit_entry(void *arg, const struct sc_repo_entry *e)
{
	struct cert_emit *ce = arg;
	const struct cert_sink *k = ce->sink;
	size_t n = ce->w->chain ? e->n_der : 1, need = 16;
	sc_status rc = SC_OK;

	if (ce->url) {
		char url[SESSION_LINE_MAX - 8];

		/* lib/certurl.c: the same expansion export-www writes files by */
		if (sc_cert_url_expand(ce->url, ce->w->key, url, sizeof url) != SC_OK) {
			ce->too_big = 1;
			return SC_ERR_TOO_LONG;
		}
		rc = k->line(k->arg, url);
		if (rc != SC_OK)
			ce->sink_failed = 1;
		return rc;
	}
	if (n > SC_CHAIN_MAX)
		n = SC_CHAIN_MAX;
	for (size_t i = 0; i < n; i++)
		need += reply_pem_size(e->der_len[i]);
	/* all or nothing: a reply is never cut in the middle of a certificate */
	if (need > k->room(k->arg)) {
		ce->too_big = 1;
		return SC_ERR_TOO_LONG;
	}
	for (size_t i = 0; i < n && rc == SC_OK; i++)
		rc = k->pem(k->arg, e->der[i], e->der_len[i]);
	if (rc != SC_OK)
		ce->sink_failed = 1;
	return rc;
}

/* sc_repo_entries() callback: stop at the first entry, whatever its state. */
static sc_status cert_any_entry(void *arg, const struct sc_repo_entry *e)
{
	(void)e;
	*(int *)arg = 1;
	return SC_ERR_EXISTS;
}

/* Does the store hold the address at all (even only expired or revoked entries)? */
static int cert_store_has(struct runtime_repo *rr, const struct sc_addr *a)
{
	int found = 0;

	if (sc_repo_entries(rr->repo, a, cert_any_entry, &found) != SC_OK && !found)
		return 0;
	return found;
}

/*
 * `repository` is an ordered list: the first store that has the address answers
 * (INTERFACE.md), so an expired or revoked certificate in the first store is
 * never shadowed by an older copy in a later one. A store that is unavailable
 * does not stop the search (a later store may answer), but when no store found
 * the address and one was unavailable the answer is 451, never 550: we cannot
 * know it does not exist.
 */
void cert_walk(struct cert_walk *w, const struct cert_sink *sink)
{
	struct runtime *rt = w->rt;
	struct cert_emit ce = { .w = w, .sink = sink, .url = rt->cert_url };
	int unavailable = 0;
	/* by the key cert_address() made for the log line: the address is not
	 * keyed again for each store (docs/performance.md, sixth round) */
	size_t keylen = strnlen(w->key, SC_ADDR_KEY_MAX);

	for (size_t i = 0; i < RUNTIME_REPOS_MAX; i++)
		w->store_rc[i] = SC_OK;
	for (size_t i = 0; i < rt->nrepos; i++) {
		/* CERT serves the leaf only: the chain is not even read */
		sc_status rc = sc_repo_lookup_key(rt->repos[i]->repo, w->key, keylen, w->now,
						  rt->crls, w->chain ? 0 : SC_REPO_LOOKUP_LEAF,
						  cert_emit_entry, &ce);

		if (rc == SC_OK) {
			w->outcome = CERT_FOUND;
			return;
		}
		if (ce.too_big) {
			w->outcome = CERT_TOO_BIG;
			return;
		}
		switch (rc) {
		case SC_ERR_NOT_FOUND:
		case SC_ERR_EXPIRED:
		case SC_ERR_NOT_YET_VALID:
		case SC_ERR_REVOKED:
			if (cert_store_has(rt->repos[i], w->addr))
				i = rt->nrepos; /* this store has the address: it answers */
			continue;
		default:
			w->store_rc[i] = rc;
			if (ce.sink_failed) {
				w->outcome = CERT_SINK_FAILED;
				return;
			}
			unavailable = 1;
		}
	}
	/* identical for unknown, expired and revoked: answers reveal nothing */
	w->outcome = unavailable ? CERT_UNAVAILABLE : CERT_NOT_FOUND;
}

/* CERT or CERS, as command_dispatch() will find it (commands.c: by bytes,
 * CERT and CERS its first rows, so this costs no libc call per line). */
static int cert_verb(const char *v, size_t n)
{
	const struct command *c = command_lookup(v, n);

	return c && (c->fn == cmd_cert || c->fn == cmd_cers);
}

size_t cert_prefetch_scan(const char *p, size_t len, const char **args, size_t *lens,
			  size_t max)
{
	const char *end = p + len;
	size_t n = 0;

	while (n < max) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct command_line cl;
		size_t l;

		if (!nl)
			break;
		l = (size_t)(nl - p);
		if (l && p[l - 1] == '\r')
			l--;
		/* split as command_dispatch() will: the same verb, the same argument */
		if (command_split(p, l, &cl) == SC_OK && cl.arg && cert_verb(cl.verb, cl.verb_len)) {
			args[n] = cl.arg;
			lens[n++] = cl.arg_len;
		}
		p = nl + 1;
	}
	return n;
}

void cert_prefetch_args(const struct runtime *rt, const char *const *args,
			const size_t *lens, size_t n)
{
	/* lookups of a runtime with a remote store run on worker threads
	 * (cert_job.c): loads here would warm the wrong core; every store is
	 * local otherwise */
	if (cert_job_wanted(rt))
		return;
	for (size_t i = 0; i < rt->nrepos; i++)
		sc_repo_prefetch(rt->repos[i]->repo, args, lens, n);
}

void cert_prefetch(const struct runtime *rt, const char *p, size_t len)
{
	const char *args[SC_REPO_PREFETCH_MAX];
	size_t lens[SC_REPO_PREFETCH_MAX], n;

	/* no index to load from, or lookups on workers: not even the scan */
	if (!rt->repository_index || cert_job_wanted(rt))
		return;
	n = cert_prefetch_scan(p, len, args, lens, SC_REPO_PREFETCH_MAX);
	/* a single command is looked up at once: nothing to overlap with */
	if (n >= 2)
		cert_prefetch_args(rt, args, lens, n);
}

int cert_job_wanted(const struct runtime *rt)
{
	if (cert_job_forced)
		return 1;
	for (size_t i = 0; i < rt->nrepos; i++)
		if (sc_repo_is_remote(rt->repos[i]->repo))
			return 1;
	return 0;
}

void cert_job_force_async(int on)
{
	cert_job_forced = on;
}

/* The job's sink: the body buffer, at most j->room bytes. */
static size_t cert_job_room(void *arg)
{
	struct cert_job *j = arg;

	if (!j->room)
		return 0;
	if (!j->body && sc_buf_new(j->room, &j->body) != SC_OK) {
		j->body = NULL;
		j->body_failed = 1;
		return 0;
	}
	return sc_buf_room(j->body);
}

static sc_status cert_job_line(void *arg, const char *text)
{
	struct cert_job *j = arg;
	size_t len = strnlen(text, SESSION_LINE_MAX - 6);

	/* the same 250- line reply() makes, never longer than a reply line */
	if (cert_job_room(j) < len + 6)
		return j->body_failed ? SC_ERR_NOMEM : SC_ERR_TOO_LONG;
	SC_TRY(sc_buf_append(j->body, "250-", 4));
	SC_TRY(sc_buf_append(j->body, text, len));
	return sc_buf_append(j->body, "\r\n", 2);
}

static sc_status cert_job_pem(void *arg, const uint8_t *der, size_t der_len)
{
	struct cert_job *j = arg;

	if (!j->body)
		return SC_ERR_NOMEM; /* room() made it, or said 0 */
	return reply_pem_buf(j->body, der, der_len);
}

/* Worker thread: never touches the session. */
static void cert_job_work(void *arg)
{
	struct cert_job *j = arg;
	struct cert_sink sink = { cert_job_room, cert_job_line, cert_job_pem, j };

	/* the session is gone before the walk began: spare the directory */
	if (__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE))
		return;
	/* validity is judged when the walk runs (it may have waited for a slot) */
	j->walk.now = time(NULL);
	cert_walk(&j->walk, &sink);
	if (j->body_failed && j->walk.outcome == CERT_TOO_BIG)
		j->walk.outcome = CERT_SINK_FAILED;
}

static void cert_job_free(struct cert_job *j)
{
	if (j->body)
		sc_buf_free(j->body);
	runtime_unref(j->rt);
	free(j);
}

/* Loop thread: answer the session if it still waits, free the job. */
static void cert_job_finish(struct cert_job *j)
{
	struct session *s = j->s;

	if (s) {
		s->lookup = NULL;
		/* a timeout or shutdown may have closed the session meanwhile (421
		 * queued): the answer is dropped */
		if (s->state == SESSION_LOOKUP)
			j->answered(s, j);
	}
	cert_job_free(j);
}

static void cert_job_done(void *arg);

/* All but one of the pool's threads (worker_threads, smtpcertd.conf(5)). */
static unsigned cert_job_slots(void)
{
	struct worker *w = worker_default();
	unsigned n = w ? worker_threads(w) : WORKER_THREADS_DEFAULT;

	return n > 1 ? n - 1 : 1;
}

/* Hand waiting lookups to the pool while slots are free; one the pool refuses
 * is answered 451 (no store was asked). A job whose session ended while it
 * waited is not in the line any more (cert_job_cancel() took it out). */
static void cert_job_pump(void)
{
	while (cert_wait_head && cert_inflight < cert_job_slots()) {
		struct cert_job *j = cert_wait_head;
		struct worker *w = worker_default();

		cert_wait_head = j->next;
		if (!cert_wait_head)
			cert_wait_tail = NULL;
		cert_nwaiting--;
		j->next = NULL;
		if (w && worker_submit(w, cert_job_work, cert_job_done, j) == SC_OK) {
			cert_inflight++;
			continue;
		}
		j->walk.outcome = CERT_UNAVAILABLE;
		cert_job_finish(j);
	}
}

/* Loop thread (or worker_destroy()'s thread at exit, sessions all gone). */
static void cert_job_done(void *arg)
{
	cert_inflight--;
	cert_job_finish(arg);
	cert_job_pump();
}

sc_status cert_job_start(struct session *s, struct runtime *rt, const struct sc_addr *addr,
			 const char *key, int chain, const char *verb, long delayed, size_t room,
			 cert_job_answered_fn answered)
{
	struct worker *w = worker_default();
	struct cert_job *j;
	sc_status rc = SC_OK;

	if (!w || s->lookup)
		return SC_ERR_TEMP;
	if (cert_inflight >= cert_job_slots() && cert_nwaiting >= CERT_JOB_WAITING_MAX)
		return SC_ERR_TEMP;
	j = calloc(1, sizeof *j);
	if (!j)
		return SC_ERR_NOMEM;
	j->s = s;
	j->rt = rt;
	runtime_ref(rt);
	j->addr = *addr;
	snprintf(j->key, sizeof j->key, "%s", key);
	j->verb = verb;
	j->delayed = delayed;
	j->room = room;
	j->answered = answered;
	clock_gettime(CLOCK_MONOTONIC, &j->t0);
	j->walk.rt = rt;
	j->walk.addr = &j->addr;
	j->walk.key = j->key;
	j->walk.chain = chain;
	j->walk.now = time(NULL);
	j->walk.outcome = CERT_UNAVAILABLE;
	if (cert_inflight < cert_job_slots()) {
		rc = worker_submit(w, cert_job_work, cert_job_done, j);
		if (rc != SC_OK) {
			cert_job_free(j);
			return rc;
		}
		cert_inflight++;
	} else {
		/* every slot is taken (a slow directory): wait in line */
		if (cert_wait_tail)
			cert_wait_tail->next = j;
		else
			cert_wait_head = j;
		cert_wait_tail = j;
		cert_nwaiting++;
	}
	s->lookup = j;
	return SC_OK;
}

void cert_job_cancel(struct session *s)
{
	struct cert_job *j = s->lookup;

	if (!j)
		return;
	s->lookup = NULL;
	/* still waiting for a slot: out of the line at once, so that clients
	 * that ask and leave while a directory hangs do not fill the line (at
	 * most CERT_JOB_WAITING_MAX to walk) */
	for (struct cert_job **p = &cert_wait_head, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
		if (*p != j)
			continue;
		*p = j->next;
		if (cert_wait_tail == j)
			cert_wait_tail = prev;
		cert_nwaiting--;
		cert_job_free(j);
		return;
	}
	/* worker.h: done finds no session and frees the job */
	__atomic_store_n(&j->cancelled, 1, __ATOMIC_RELEASE);
	j->s = NULL;
}
