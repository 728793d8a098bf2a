/*
 * anvil.c - bounded per-client-network counters (see anvil.h): open
 * connections, connections per minute, not-found answers per hour. Owns one
 * fixed table, or the serving processes' shared one (shared.h, under its
 * lock). Daemon process, event loop thread only.
 *
 * An entry is a seeded 64-bit hash of the network (seeded from getrandom() at
 * first use, so a client cannot aim collisions at a victim; an accidental one
 * only makes two networks share counters: earlier refusal, fails safe).
 */
#include <arpa/inet.h>
#include <string.h>

#include "anvil.h"
#include "authlimit.h"
#include "shared.h"

/* Slots examined per key (linear probing). */
#define ANVIL_PROBE 8

struct anvil_entry {
	unsigned long long hash;  /* 0 = free */
	unsigned int conns;       /* open now */
	unsigned int rate_start;  /* minute window start (time_t truncated) */
	unsigned int rate_count;
	unsigned int harv_start;  /* hour window start */
	unsigned int harv_count;
};

/* The table and its seed: this process's own, or the serving processes'
 * shared one (shared.c, workers > 1), used under shared_lock(). */
struct anvil_state {
	struct shared_key key;
	struct anvil_entry table[ANVIL_SLOTS];
};

static struct anvil_state anvil_own;
static struct anvil_state *anvil = &anvil_own;

size_t anvil_state_size(void)
{
	return sizeof(struct anvil_state);
}

void anvil_use_state(void *mem)
{
	anvil = mem;
	/* seeded before the fork: every process hashes a network alike */
	shared_key_init(&anvil->key);
}

static unsigned long long anvil_mix(const unsigned char *p, size_t n)
{
	return shared_hash(&anvil->key, p, n);
}

int anvil_key(const char *peer, unsigned long long *key)
{
	unsigned char b[17];
	char ip[64];

	authlimit_peer_ip(peer, ip, sizeof ip);
	if (inet_pton(AF_INET, ip, b + 1) == 1) {
		b[0] = 4;
		*key = anvil_mix(b, 5);
		return 1;
	}
	if (inet_pton(AF_INET6, ip, b + 1) == 1) {
		static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(b + 1, v4mapped, sizeof v4mapped) == 0) {
			/* ::ffff:a.b.c.d is the IPv4 client a.b.c.d */
			b[12] = 4;
			*key = anvil_mix(b + 12, 5);
			return 1;
		}
		/* the /64: one subscriber's allocation (RFC 6177) */
		b[0] = 6;
		*key = anvil_mix(b, 9);
		return 1;
	}
	return 0;
}

int anvil_is_loopback(const char *peer)
{
	unsigned char b[16];
	char ip[64];

	authlimit_peer_ip(peer, ip, sizeof ip);
	if (inet_pton(AF_INET, ip, b) == 1)
		return b[0] == 127;
	if (inet_pton(AF_INET6, ip, b) == 1) {
		static const unsigned char one[16] = { [15] = 1 };
		static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		return memcmp(b, one, 16) == 0 ||
		       (memcmp(b, v4mapped, sizeof v4mapped) == 0 && b[12] == 127);
	}
	return 0;
}

static int anvil_in_window(unsigned int start, unsigned int window, time_t now)
{
	return start && (unsigned long long)now - start < window;
}

/* Nothing to remember: no connection open and both windows over. */
static int anvil_idle(const struct anvil_entry *e, time_t now)
{
	return !e->hash || (e->conns == 0 && !anvil_in_window(e->rate_start, ANVIL_RATE_WINDOW, now) &&
			    !anvil_in_window(e->harv_start, ANVIL_HARVEST_WINDOW, now));
}

/* The entry of @p h, or NULL; with @p create a free or idle slot (NULL when the
 * probe window is all live entries of other networks). */
static struct anvil_entry *anvil_find(unsigned long long h, time_t now, int create)
{
	struct anvil_entry *spare = NULL;

	for (unsigned i = 0; i < ANVIL_PROBE; i++) {
		struct anvil_entry *e = &anvil->table[(h + i) % ANVIL_SLOTS];

		if (e->hash == h)
			return e;
		if (!spare && anvil_idle(e, now))
			spare = e;
	}
	if (!create || !spare)
		return NULL;
	memset(spare, 0, sizeof *spare);
	spare->hash = h;
	return spare;
}

static enum anvil_verdict anvil_connect_locked(const char *peer, long max_conns, long max_rate,
						time_t now)
{
	unsigned long long h;
	struct anvil_entry *e;

	if (!anvil_key(peer, &h) || !(e = anvil_find(h, now, 1)))
		return ANVIL_UNTRACKED;
	if (max_conns > 0 && e->conns >= (unsigned long)max_conns)
		return ANVIL_TOO_MANY;
	if (!anvil_in_window(e->rate_start, ANVIL_RATE_WINDOW, now)) {
		e->rate_start = (unsigned int)now ? (unsigned int)now : 1;
		e->rate_count = 0;
	}
	if (max_rate > 0 && e->rate_count >= (unsigned long)max_rate)
		return ANVIL_TOO_FAST;
	e->rate_count++;
	e->conns++;
	return ANVIL_OK;
}

enum anvil_verdict anvil_connect(const char *peer, long max_conns, long max_rate, time_t now)
{
	enum anvil_verdict v;

	shared_lock();
	v = anvil_connect_locked(peer, max_conns, max_rate, now);
	shared_unlock();
	return v;
}

void anvil_disconnect(const char *peer)
{
	unsigned long long h;
	struct anvil_entry *e;

	shared_lock();
	/* time 0: a live entry (conns > 0) is never replaced, so it is found */
	if (anvil_key(peer, &h) && (e = anvil_find(h, 0, 0)) && e->conns > 0)
		e->conns--;
	shared_unlock();
}

int anvil_harvest_blocked(const char *peer, long limit, time_t now)
{
	unsigned long long h;
	struct anvil_entry *e;
	int blocked;

	if (limit <= 0 || !anvil_key(peer, &h))
		return 0;
	shared_lock();
	e = anvil_find(h, now, 0);
	blocked = e && anvil_in_window(e->harv_start, ANVIL_HARVEST_WINDOW, now) &&
		  e->harv_count >= (unsigned long)limit;
	shared_unlock();
	return blocked;
}

unsigned anvil_harvest_miss(const char *peer, time_t now)
{
	unsigned long long h;
	struct anvil_entry *e;
	unsigned count;

	if (!anvil_key(peer, &h))
		return 0;
	shared_lock();
	e = anvil_find(h, now, 1);
	if (e && !anvil_in_window(e->harv_start, ANVIL_HARVEST_WINDOW, now)) {
		e->harv_start = (unsigned int)now ? (unsigned int)now : 1;
		e->harv_count = 0;
	}
	if (e && e->harv_count < ~0u)
		e->harv_count++;
	count = e ? e->harv_count : 0;
	shared_unlock();
	return count;
}

long anvil_harvest_delay(unsigned misses, long threshold)
{
	unsigned over;

	if (threshold <= 0 || misses < (unsigned long)threshold)
		return 0;
	over = misses - (unsigned)threshold;
	/* 1 << 4 = 16 = ANVIL_DELAY_MAX: no shift past the cap */
	return over >= 4 ? ANVIL_DELAY_MAX : 1L << over;
}

void anvil_forget_conns(void)
{
	shared_lock();
	for (size_t i = 0; i < ANVIL_SLOTS; i++)
		anvil->table[i].conns = 0;
	shared_unlock();
}

void anvil_reset(void)
{
	shared_lock();
	memset(anvil->table, 0, sizeof anvil->table);
	shared_unlock();
}
