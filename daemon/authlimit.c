/*
 * authlimit.c - bounded failed-AUTH counters (see authlimit.h). Owns two fixed
 * tables (IP, user). Daemon process, event loop thread only (no locking).
 *
 * An entry is a 64-bit hash of the key, the start of its window and a count.
 * The hash is seeded from getrandom() at first use so that a client cannot pick
 * names that collide with a victim's on purpose; an accidental collision only
 * makes two names share a counter (fails safe: earlier refusal).
 */
#include <string.h>
#include <sys/random.h>

#include "authlimit.h"

/* Slots examined per key (linear probing); a full window evicts its oldest. */
#define AUTHLIMIT_PROBE 8

struct authlimit_entry {
	unsigned long long hash; /* 0 = free */
	unsigned int start;      /* window start, seconds (time_t truncated) */
	unsigned int count;
};

static struct authlimit_entry authlimit_table[2][AUTHLIMIT_SLOTS];
static unsigned long long authlimit_seed;
static int authlimit_seeded;

static unsigned long long authlimit_hash(const char *key)
{
	unsigned long long h;

	if (!authlimit_seeded) {
		/* best effort: without entropy the time still varies per start */
		if (getrandom(&authlimit_seed, sizeof authlimit_seed, GRND_NONBLOCK) !=
		    (ssize_t)sizeof authlimit_seed)
			authlimit_seed = (unsigned long long)time(NULL) * 0x9e3779b97f4a7c15ULL;
		authlimit_seeded = 1;
	}
	/* FNV-1a over the seed then the key, with a final avalanche (splitmix64) */
	h = 0xcbf29ce484222325ULL ^ authlimit_seed;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}

static int authlimit_live(const struct authlimit_entry *e, time_t now)
{
	return e->hash && (unsigned long long)now - e->start < AUTHLIMIT_WINDOW;
}

/* The entry of @p h, or NULL; with @p create a free, expired or oldest slot. */
static struct authlimit_entry *authlimit_find(enum authlimit_kind kind, unsigned long long h,
					      time_t now, int create)
{
	struct authlimit_entry *t = authlimit_table[kind == AUTHLIMIT_USER];
	struct authlimit_entry *victim = NULL;

	for (unsigned i = 0; i < AUTHLIMIT_PROBE; i++) {
		struct authlimit_entry *e = &t[(h + i) % AUTHLIMIT_SLOTS];

		if (e->hash == h) {
			if (authlimit_live(e, now))
				return e;
			memset(e, 0, sizeof *e); /* expired: start a new window */
			return create ? e : NULL;
		}
		/* prefer a free or expired slot, else the oldest window */
		if (!authlimit_live(e, now)) {
			if (!victim || authlimit_live(victim, now))
				victim = e;
		} else if (!victim || (authlimit_live(victim, now) && e->start < victim->start)) {
			victim = e;
		}
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof *victim);
	return victim;
}

int authlimit_blocked(enum authlimit_kind kind, const char *key, unsigned max, time_t now)
{
	struct authlimit_entry *e = authlimit_find(kind, authlimit_hash(key), now, 0);

	return e && e->count >= max;
}

unsigned authlimit_fail(enum authlimit_kind kind, const char *key, time_t now)
{
	unsigned long long h = authlimit_hash(key);
	struct authlimit_entry *e = authlimit_find(kind, h, now, 1);

	if (!e->hash) {
		e->hash = h;
		e->start = (unsigned int)now;
	}
	if (e->count < ~0u)
		e->count++;
	return e->count;
}

void authlimit_reset(void)
{
	memset(authlimit_table, 0, sizeof authlimit_table);
}

void authlimit_peer_ip(const char *peer, char *out, size_t size)
{
	const char *end;
	size_t n;

	if (size == 0)
		return;
	if (peer[0] == '[') {
		peer++;
		end = strchr(peer, ']');
	} else {
		end = strrchr(peer, ':');
	}
	n = end ? (size_t)(end - peer) : strlen(peer);
	if (n >= size)
		n = size - 1;
	memcpy(out, peer, n);
	out[n] = '\0';
}
