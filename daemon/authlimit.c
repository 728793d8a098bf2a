/*
 * authlimit.c - bounded failed-AUTH counters (see authlimit.h). Owns two fixed
 * tables (IP, user), or uses the serving processes' shared ones (shared.h, under
 * its lock). Daemon process, event loop thread only.
 *
 * An entry is a 64-bit hash of the key, the start of its window and a count.
 * The hash is seeded from getrandom() at first use so that a client cannot pick
 * names that collide with a victim's on purpose; an accidental collision only
 * makes two names share a counter (fails safe: earlier refusal).
 */
#include <string.h>

#include "authlimit.h"
#include "shared.h"

/* Slots examined per key (linear probing); a full window evicts its oldest. */
#define AUTHLIMIT_PROBE 8

struct authlimit_entry {
	unsigned long long hash; /* 0 = free */
	unsigned int start;      /* window start, seconds (time_t truncated) */
	unsigned int count;
};

/* The tables and their seed: this process's own, or the serving processes'
 * shared ones (shared.c, workers > 1), used under shared_lock(). */
struct authlimit_state {
	struct shared_key key;
	struct authlimit_entry table[2][AUTHLIMIT_SLOTS];
};

static struct authlimit_state authlimit_own;
static struct authlimit_state *authlimit = &authlimit_own;

size_t authlimit_state_size(void)
{
	return sizeof(struct authlimit_state);
}

void authlimit_use_state(void *mem)
{
	authlimit = mem;
	/* seeded before the fork: every process hashes a key alike */
	shared_key_init(&authlimit->key);
}

static unsigned long long authlimit_hash(const char *key)
{
	return shared_hash(&authlimit->key, key, strlen(key));
}

static int authlimit_live(const struct authlimit_entry *e, time_t now)
{
	return e->hash && (unsigned long long)now - e->start < AUTHLIMIT_WINDOW;
}

/* The entry of @p h, or NULL; with @p create a free, expired or oldest slot. */
static struct authlimit_entry *authlimit_find(enum authlimit_kind kind, unsigned long long h,
					      time_t now, int create)
{
	struct authlimit_entry *t = authlimit->table[kind == AUTHLIMIT_USER];
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
	unsigned long long h = authlimit_hash(key);
	struct authlimit_entry *e;
	int blocked;

	shared_lock();
	e = authlimit_find(kind, h, now, 0);
	blocked = e && e->count >= max;
	shared_unlock();
	return blocked;
}

unsigned authlimit_fail(enum authlimit_kind kind, const char *key, time_t now)
{
	unsigned long long h = authlimit_hash(key);
	struct authlimit_entry *e;
	unsigned count;

	shared_lock();
	e = authlimit_find(kind, h, now, 1);
	if (!e->hash) {
		e->hash = h;
		e->start = (unsigned int)now;
	}
	if (e->count < ~0u)
		e->count++;
	count = e->count;
	shared_unlock();
	return count;
}

void authlimit_reset(void)
{
	shared_lock();
	memset(authlimit->table, 0, sizeof authlimit->table);
	shared_unlock();
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
