/*
 * repo_index.c - the lookup indexes of the local stores (see repo_index.h).
 * Serving process; the check runs on the event loop thread, the build on a
 * thread of its own (main.c gives the index a pool of one), its result is
 * logged back on the loop.
 */
#include <stdint.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "repo_index.h"
#include "runtime.h"
#include "worker.h"

struct index_job {
	struct runtime_repo *rr; /* referenced: the store stays open during the build */
	size_t copy_limit;       /* bytes of copies this build may make */
	int huge;                /* repository_index_huge_pages */
	sc_status st;
	size_t count, bytes, copy_bytes, huge_bytes;
	long long ms;
};

static struct event *index_ev;
static struct worker *index_worker;
static int index_building;      /* one build at a time, whatever the number of stores */
static long long index_next_ms; /* no build before this (REPO_INDEX_BACKOFF) */
static size_t index_turn;       /* the store the next check looks at first */
static struct runtime_repo *index_running; /* the store being indexed (referenced) */

static long long index_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void index_work(void *arg)
{
	struct index_job *j = arg;
	long long t0 = index_now_ms();

	sc_repo_index_copy_limit(j->rr->repo, j->copy_limit);
	sc_repo_index_huge_pages(j->rr->repo, j->huge);
	j->st = sc_repo_index_refresh(j->rr->repo, &j->count, &j->bytes);
	if (j->st == SC_OK) {
		j->copy_bytes = sc_repo_index_copy_bytes(j->rr->repo);
		j->huge_bytes = sc_repo_index_huge_bytes(j->rr->repo);
	}
	j->ms = index_now_ms() - t0;
}

static void index_done(void *arg)
{
	struct index_job *j = arg;
	const char *name = sc_repo_name(j->rr->repo);
	long long wait = REPO_INDEX_BACKOFF * j->ms;

	if (j->st == SC_OK) {
		log_msg(LOG_INFO, "repository %s: index of %zu addresses (%zu KiB; copies %zu "
			"KiB of at most %zu KiB; %zu KiB in reserved huge pages) built in %lld ms",
			name, j->count, (j->bytes + 1023) / 1024, (j->copy_bytes + 1023) / 1024,
			j->copy_limit / 1024, (j->huge_bytes + 1023) / 1024, j->ms);
		/* asked for, and not (wholly) had: the admin sized the pool */
		if (j->huge && j->huge_bytes < j->bytes)
			log_msg(LOG_WARNING, "repository %s: repository_index_huge_pages: the "
				"reserved 2 MiB huge pages did not hold the whole index; the "
				"rest is in ordinary memory", name);
	} else if (j->st == SC_ERR_CHANGED || j->st == SC_ERR_TEMP) {
		log_msg(LOG_INFO, "repository %s: index not built (%s, after %lld ms); "
			"trying again later", name, j->st == SC_ERR_CHANGED ?
			"written to meanwhile" : "busy, cancelled or map being resized", j->ms);
	} else {
		log_msg(LOG_WARNING, "repository %s: index not built: %s; lookups read the "
			"store, next try in %d s", name, sc_strerror(j->st), REPO_INDEX_RETRY_S);
		if (wait < REPO_INDEX_RETRY_S * 1000LL)
			wait = REPO_INDEX_RETRY_S * 1000LL;
	}
	index_next_ms = index_now_ms() + wait;
	index_building = 0;
	index_running = NULL;
	runtime_repo_unref(j->rr);
	free(j);
}

/* What the next build of store @p i may copy: repository_index_copy for all
 * stores of this process together, less what the other stores' indexes hold,
 * and never over a quarter of the machine's memory shared by all serving
 * processes (each keeps its own copies; they are not file pages the kernel
 * could drop under pressure). */
static size_t index_copy_budget(const struct runtime *rt, size_t i)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	long procs = sc_config_int(rt->cfg, "workers");
	size_t limit = (size_t)rt->repository_index_copy > SIZE_MAX >> 20 ? SIZE_MAX :
		       (size_t)rt->repository_index_copy << 20;
	size_t quarter;

	if (procs < 1)
		procs = 1;
	if (pages > 0 && psize > 0 && (size_t)pages / 4 <= SIZE_MAX / (size_t)psize) {
		quarter = (size_t)pages / 4 * (size_t)psize / (size_t)procs;
		if (quarter < limit)
			limit = quarter;
	}
	for (size_t k = 0; k < rt->nrepos && limit > 0; k++) {
		size_t held = k == i ? 0 : sc_repo_index_copy_bytes(rt->repos[k]->repo);

		limit = held < limit ? limit - held : 0;
	}
	return limit;
}

void repo_index_check(void)
{
	struct runtime *rt = runtime_current();

	if (index_building || !index_worker || !rt || index_now_ms() < index_next_ms)
		return;
	/* round robin from the store after the last one built: a store written to
	 * all the time must not keep the others from ever getting an index */
	for (size_t k = 0; k < rt->nrepos; k++) {
		size_t i = (index_turn + k) % rt->nrepos;
		struct index_job *j;

		if (!sc_repo_index_wanted(rt->repos[i]->repo))
			continue;
		j = calloc(1, sizeof *j);
		if (!j) {
			log_msg(LOG_WARNING, "repository %s: index not built: out of memory",
				sc_repo_name(rt->repos[i]->repo));
			return;
		}
		j->rr = rt->repos[i];
		j->copy_limit = index_copy_budget(rt, i);
		j->huge = rt->repository_index_huge;
		runtime_repo_ref(j->rr);
		if (worker_submit(index_worker, index_work, index_done, j) != SC_OK) {
			runtime_repo_unref(j->rr);
			free(j);
			return; /* the queue is full: the next tick tries again */
		}
		index_building = 1;
		index_running = j->rr;
		index_turn = i + 1;
		return;
	}
}

static void index_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	repo_index_check();
}

sc_status repo_index_start(struct event_base *base, struct worker *w)
{
	struct timeval tv = { 1, 0 };

	index_worker = w;
	index_ev = event_new(base, -1, EV_PERSIST, index_tick, NULL);
	if (!index_ev || event_add(index_ev, &tv) != 0)
		return SC_ERR_NOMEM;
	repo_index_check(); /* the first build starts with the loop, not a second later */
	return SC_OK;
}

void repo_index_stop(void)
{
	/* a build of a large store would hold the shutdown for seconds
	 * (worker_destroy() waits for it): it stops within a few thousand
	 * addresses instead */
	if (index_running)
		sc_repo_index_cancel(index_running->repo);
	if (index_ev)
		event_free(index_ev);
	index_ev = NULL;
	index_worker = NULL;
}
