/*
 * shared.h - the state the serving processes share when `workers` > 1
 * (prefork.c): the per-client-network tables (anvil.c, authlimit.c), so that
 * max_connections_per_ip, max_connection_rate, harvest_ip_limit and the AUTH
 * failure limits count a client across all processes, and the open connection
 * count of each process, so that max_connections bounds the server, not each
 * process (a place is taken under the lock, so the bound is exact). One
 * anonymous MAP_SHARED mapping made before the processes are forked, guarded
 * by one robust process-shared mutex (a process that dies holding it does not
 * stop the others). With one process nothing is shared
 * and the lock is a no-op.
 */
#ifndef SMTPCERTD_SHARED_H
#define SMTPCERTD_SHARED_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

/* The most serving processes (the `workers` key's maximum). */
#define SHARED_WORKERS_MAX 64

/**
 * Map the shared state for @p workers processes and point anvil.c and
 * authlimit.c at it. Call once, before forking the serving processes.
 * @return SC_OK; SC_ERR_NOMEM (mmap failed) with nothing changed.
 */
SC_MUST_CHECK sc_status shared_init(unsigned workers);

/** This process is serving process @p index (0-based) of shared_init()'s. */
void shared_set_index(unsigned index);

/** @return the index set by shared_set_index() (0 with one process). */
unsigned shared_index(void);

/** @return the number of serving processes (1 without shared_init()). */
unsigned shared_workers(void);

/** Around every use of the shared tables; no-ops with one process. */
void shared_lock(void);
void shared_unlock(void);

/**
 * Take one of @p max connection places (max_connections) for this process.
 * With several serving processes the places of all of them are counted and
 * taken under the shared lock, so that two processes accepting at the same
 * instant cannot both take the last one; with one process it is a compare,
 * without a lock or any shared state.
 * @param mine this process's open connections (what is counted with one
 *	process; with several, the shared count of this process is used)
 * @param open set, when refused, to the connections that held every place
 * @return 1 when a place is taken (give it back with shared_conns_release()
 *	when the connection ends, or is not set up after all); 0 when all @p max
 *	are taken.
 */
int shared_conns_admit(size_t mine, size_t max, size_t *open);

/** Give back a place that shared_conns_admit() took (no-op with one process). */
void shared_conns_release(void);

/** Connections open in all serving processes (@p mine with one process). */
size_t shared_conns_total(size_t mine);

/** Serving process @p index has ended: its connections are gone (prefork.c). */
void shared_conns_clear(unsigned index);

/** A random 64-bit value (from the time when the kernel has no entropy yet). */
unsigned long long shared_seed(void);

/** A limit table's hash key (anvil.c, authlimit.c): a random seed, drawn once
 *  (from the time when the kernel has no entropy yet), so that a client cannot
 *  aim collisions at a victim. Zero-filled means not drawn yet. */
struct shared_key {
	unsigned long long seed;
	int seeded;
};

/** Draw @p k's seed unless drawn: before the fork, so that every serving
 *  process hashes alike. */
void shared_key_init(struct shared_key *k);

/** The tables' hash of @p n bytes at @p p under @p k (drawn first if needed;
 *  FNV-1a, splitmix64 avalanche); never 0, which marks a free slot. */
unsigned long long shared_hash(struct shared_key *k, const void *p, size_t n);

#endif
