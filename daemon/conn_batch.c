/*
 * conn_batch.c - the commands of the connections that became readable in one
 * round of the event loop are read first and answered after, together.
 * Serving process, event loop thread.
 *
 * Why: without pipelining each connection brings one CERT per round, and its
 * lookup's memory miss (about 1 us on the bench machine, docs/performance.md)
 * came after the previous connection's one. Read first, the commands of all
 * ready connections are known before the first is answered, and one
 * sc_repo_prefetch() lets their misses overlap. The batch's event is made
 * active by the first connection that joins it, so libevent runs it after the
 * read callbacks of everything epoll reported in the same round; a full batch
 * runs at once, so connections are answered in the order they were read.
 */
#include <stdlib.h>

#include "cert_job.h"
#include "conn.h"
#include "runtime.h"

#define CONN_BATCH_MAX SC_REPO_PREFETCH_MAX

static struct conn *batch[CONN_BATCH_MAX];
static size_t batch_n;
static struct event *batch_ev;

static void conn_batch_run(evutil_socket_t fd, short what, void *arg)
{
	const char *args[SC_REPO_PREFETCH_MAX];
	size_t lens[SC_REPO_PREFETCH_MAX], n = 0, taken = batch_n;
	const struct runtime *rt = NULL;
	struct conn *run[CONN_BATCH_MAX];
	unsigned char whole[CONN_BATCH_MAX] = { 0 }; /* all its lines were scanned */

	(void)fd;
	(void)what;
	(void)arg;
	/* a connection closed meanwhile left a NULL (conn_batch_forget()) */
	for (size_t i = 0; i < taken; i++) {
		struct conn *c = batch[i];

		run[i] = c;
		if (!c)
			continue;
		/* sessions that started before a reload may hold the old runtime;
		 * theirs are not prefetched (a hint only) */
		if (!rt)
			rt = c->s.rt;
		if (c->s.rt == rt) {
			size_t got = cert_prefetch_scan(sc_buf_data(c->in), sc_buf_len(c->in),
							args + n, lens + n,
							SC_REPO_PREFETCH_MAX - n);

			n += got;
			whole[i] = n < SC_REPO_PREFETCH_MAX;
		}
	}
	batch_n = 0;
	if (rt && n >= 2)
		cert_prefetch_args(rt, args, lens, n);
	for (size_t i = 0; i < taken; i++) {
		struct conn *c = run[i];

		if (!c || c->closed)
			continue;
		c->batched = 0;
		/* input_process() need not scan its lines again: they were
		 * prefetched, or were too few to overlap */
		c->inp.prefetched = whole[i];
		conn_step_read(c, c->drained);
		if (!c->closed)
			c->inp.prefetched = 0; /* for this round's lines only */
	}
}

int conn_batch_add(struct conn *c, int drained)
{
	/* nothing to overlap with `repository_index = no` or lookups on workers
	 * (a runtime of dir: stores only, or one whose index is still being
	 * built, is batched all the same: the prefetch then does nothing) */
	if (!batch_ev || !c->s.rt->repository_index || cert_job_wanted(c->s.rt))
		return 0;
	/* Full: its connections are answered now, before this one, which starts
	 * the next batch. Answered after the round instead, the connections that
	 * epoll reported first would wait for all the others: at 256 x 16 an
	 * eighth of the connections waited a whole round more, which set the
	 * p99 (docs/performance.md, sixth round). */
	if (batch_n == CONN_BATCH_MAX)
		conn_batch_run(-1, 0, NULL);
	if (batch_n == 0)
		event_active(batch_ev, EV_TIMEOUT, 0);
	batch[batch_n++] = c;
	c->batched = 1;
	c->drained = drained != 0;
	return 1;
}

void conn_batch_forget(struct conn *c)
{
	for (size_t i = 0; i < batch_n; i++)
		if (batch[i] == c)
			batch[i] = NULL;
	c->batched = 0;
}

sc_status conn_batch_init(struct event_base *base)
{
	batch_n = 0;
	batch_ev = event_new(base, -1, 0, conn_batch_run, NULL);
	return batch_ev ? SC_OK : SC_ERR_NOMEM;
}

void conn_batch_fini(void)
{
	/* conn_close_all() took every connection out of the batch */
	batch_n = 0;
	if (batch_ev)
		event_free(batch_ev);
	batch_ev = NULL;
}
