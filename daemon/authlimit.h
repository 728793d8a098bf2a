/*
 * authlimit.h - failed-AUTH counters per client IP and per user name, so that
 * password guessing is refused (454 4.7.0) after auth_max_failures failures
 * within AUTHLIMIT_WINDOW seconds (RFC 4954 4 leaves throttling to the server).
 *
 * Memory is bounded whatever the attacker sends: a fixed table per kind,
 * keyed by a seeded 64-bit hash of the name; when the probe window is full the
 * least recently failed entry is reused. Event loop thread only.
 */
#ifndef SMTPCERTD_AUTHLIMIT_H
#define SMTPCERTD_AUTHLIMIT_H

#include <stddef.h>
#include <time.h>

/* Counters expire one hour after the first failure they count. */
#define AUTHLIMIT_WINDOW 3600
/* Entries per kind (IP, user): 16 bytes each. */
#define AUTHLIMIT_SLOTS 8192

enum authlimit_kind { AUTHLIMIT_IP, AUTHLIMIT_USER };

/** @return non-zero when @p key (an IP or a user name) has at least @p max
 *  failures counted in the current window at time @p now. */
int authlimit_blocked(enum authlimit_kind kind, const char *key, unsigned max, time_t now);

/** Count one failure of @p key at @p now. @return the count in the window. */
unsigned authlimit_fail(enum authlimit_kind kind, const char *key, time_t now);

/** Forget everything (tests). */
void authlimit_reset(void);

/** Bytes of the tables and their seed, for shared.c's mapping. */
size_t authlimit_state_size(void);

/** Use the tables at @p mem (zeroed, authlimit_state_size() bytes, shared by
 *  the serving processes) from now on, seeding them if they are not yet. */
void authlimit_use_state(void *mem);

/** The IP part of a "client=" peer string ("192.0.2.1:25", "[2001:db8::1]:25")
 *  into @p out. */
void authlimit_peer_ip(const char *peer, char *out, size_t size);

#endif
