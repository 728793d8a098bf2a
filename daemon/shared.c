/*
 * shared.c - the state shared by the serving processes (see shared.h). Owns
 * the shared mapping: a header (lock, per-process connection counts: the
 * max_connections places each process holds), then anvil.c's and
 * authlimit.c's tables, which those modules use through the pointers handed
 * to them here. Mapped by the master before the forks; used by the serving
 * processes' event loops, and by the master to clear a dead one's places.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "anvil.h"
#include "authlimit.h"
#include "shared.h"

struct shared_hdr {
	pthread_mutex_t lock;
	long conns[SHARED_WORKERS_MAX];
};

static struct shared_hdr *shared;
static unsigned shared_n = 1, shared_me;

/* Offsets in the mapping, each table aligned for its entries. */
static size_t shared_align(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

sc_status shared_init(unsigned workers)
{
	size_t off_anvil = shared_align(sizeof(struct shared_hdr));
	size_t off_auth = off_anvil + shared_align(anvil_state_size());
	size_t total = off_auth + shared_align(authlimit_state_size());
	pthread_mutexattr_t ma;
	char *p;

	SC_ENSURE(workers >= 1 && workers <= SHARED_WORKERS_MAX, SC_ERR_ARG);
	if (workers == 1 || shared)
		return SC_OK;
	p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return SC_ERR_NOMEM;
	/* the mapping is zero-filled: empty tables, no counts. A lock that is
	 * not robust would hang every process after one died holding it. */
	if (pthread_mutexattr_init(&ma) != 0) {
		munmap(p, total);
		return SC_ERR_NOMEM;
	}
	if (pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&((struct shared_hdr *)p)->lock, &ma) != 0) {
		pthread_mutexattr_destroy(&ma);
		munmap(p, total);
		return SC_ERR_INTERNAL;
	}
	pthread_mutexattr_destroy(&ma);
	shared = (struct shared_hdr *)p;
	anvil_use_state(p + off_anvil);
	authlimit_use_state(p + off_auth);
	shared_n = workers;
	return SC_OK;
}

void shared_set_index(unsigned index)
{
	shared_me = index < shared_n ? index : 0;
}

unsigned shared_index(void)
{
	return shared_me;
}

unsigned shared_workers(void)
{
	return shared_n;
}

void shared_lock(void)
{
	if (shared && pthread_mutex_lock(&shared->lock) == EOWNERDEAD)
		/* a process died holding it: its last update may be half done,
		 * which costs a counter at worst */
		pthread_mutex_consistent(&shared->lock);
}

void shared_unlock(void)
{
	if (shared)
		pthread_mutex_unlock(&shared->lock);
}

/* The places taken in all processes; under the lock for shared_conns_admit(),
 * without it for a log line. */
static size_t shared_conns_sum(void)
{
	size_t total = 0;

	for (unsigned i = 0; i < shared_n; i++)
		total += (size_t)__atomic_load_n(&shared->conns[i], __ATOMIC_RELAXED);
	return total;
}

int shared_conns_admit(size_t mine, size_t max, size_t *open)
{
	size_t total;

	if (!shared) {
		/* one process: its own count, no lock on its accept path */
		if (mine < max)
			return 1;
		*open = mine;
		return 0;
	}
	/* Check and take in one step under the lock: a check of the counts
	 * followed by a later store of this process's own let two processes
	 * accepting at once both take the last place. A release runs without
	 * the lock (an atomic decrement of this process's count): one that
	 * races with this sum is at worst seen a moment late, so a place is
	 * refused, never given twice. */
	shared_lock();
	total = shared_conns_sum();
	if (total < max)
		__atomic_add_fetch(&shared->conns[shared_me], 1L, __ATOMIC_RELAXED);
	shared_unlock();
	if (total < max)
		return 1;
	*open = total;
	return 0;
}

void shared_conns_release(void)
{
	long n;

	if (!shared)
		return;
	/* only this process writes its count while it lives (the master
	 * clears it once it is dead): no read-modify-write race */
	n = __atomic_load_n(&shared->conns[shared_me], __ATOMIC_RELAXED);
	if (n > 0)
		__atomic_store_n(&shared->conns[shared_me], n - 1, __ATOMIC_RELAXED);
}

size_t shared_conns_total(size_t mine)
{
	return shared ? shared_conns_sum() : mine;
}

void shared_conns_clear(unsigned index)
{
	if (shared && index < shared_n)
		__atomic_store_n(&shared->conns[index], 0L, __ATOMIC_RELAXED);
}

unsigned long long shared_seed(void)
{
	unsigned long long seed;

	/* best effort: without entropy the time still varies per start */
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
		seed = (unsigned long long)time(NULL) * 0x9e3779b97f4a7c15ULL;
	return seed;
}

void shared_key_init(struct shared_key *k)
{
	if (k->seeded)
		return;
	k->seed = shared_seed();
	k->seeded = 1;
}

unsigned long long shared_hash(struct shared_key *k, const void *p, size_t n)
{
	const unsigned char *b = p;
	unsigned long long h;

	shared_key_init(k);
	h = 0xcbf29ce484222325ULL ^ k->seed;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}
