/*
 * anvil.h - per-client-network state that outlives a session, like Postfix's
 * anvil(8): connections open now and connections per minute (max_connections_per_ip,
 * max_connection_rate), and the not-found CERT/CERS answers given to it within an
 * hour (harvest_ip_limit), so that reconnecting does not reset a harvester's budget.
 *
 * A "client network" is the IPv4 address, or the IPv6 /64 (one subscriber gets a
 * whole /64, RFC 6177, so per-address limits would be free to evade).
 *
 * Memory is bounded whatever clients do: one fixed table keyed by a seeded hash.
 * When the probe window of a new network holds only live entries, the network is
 * not tracked (fails open: max_connections still bounds the whole server) and
 * the caller logs it. Event loop thread only; time is passed in (tests). With
 * several serving processes the table is shared (shared.h).
 */
#ifndef SMTPCERTD_ANVIL_H
#define SMTPCERTD_ANVIL_H

#include <stddef.h>
#include <time.h>

/* Window of max_connection_rate (per minute, as Postfix's anvil_rate_time_unit). */
#define ANVIL_RATE_WINDOW 60
/* Window of harvest_ip_limit. */
#define ANVIL_HARVEST_WINDOW 3600
/* Table entries: 32 bytes each (512 KiB of address space, touched as used). */
#define ANVIL_SLOTS 16384
/* Longest escalating delay before a CERT answer once over harvest_threshold. */
#define ANVIL_DELAY_MAX 16

enum anvil_verdict {
	ANVIL_OK,          /**< counted; call anvil_disconnect() at the end */
	ANVIL_UNTRACKED,   /**< table full around this network: not counted */
	ANVIL_TOO_MANY,    /**< max_connections_per_ip open already */
	ANVIL_TOO_FAST     /**< max_connection_rate reached in this minute */
};

/** A serving process died with its sessions (prefork.c): which networks it
 *  held connections for is not known, so every open-connection count is
 *  dropped. The live sessions of the other processes are undercounted until
 *  they end (never below 0): a limit briefly too lenient rather than a network
 *  locked out for good. Rates and harvest budgets stay. */
void anvil_forget_conns(void);

/** Bytes of the table and its seed, for shared.c's mapping. */
size_t anvil_state_size(void);

/** Use the table at @p mem (zeroed, anvil_state_size() bytes, shared by the
 *  serving processes) from now on, seeding it if it is not yet. */
void anvil_use_state(void *mem);

/** The client network of a "client=" peer string ("192.0.2.1:25",
 *  "[2001:db8::1]:25"). @return 0 when @p peer holds no numeric address. */
int anvil_key(const char *peer, unsigned long long *key);

/** @return non-zero for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
int anvil_is_loopback(const char *peer);

/**
 * A connection from @p peer at @p now: refused when @p max_conns (0 = no limit)
 * are open from its network or @p max_rate (0 = no limit) connections were
 * accepted from it in the current minute. Refused attempts are not counted in
 * the rate, so a client that waits gets in again.
 */
enum anvil_verdict anvil_connect(const char *peer, long max_conns, long max_rate, time_t now);

/** A connection counted by anvil_connect() (ANVIL_OK) ended. */
void anvil_disconnect(const char *peer);

/** @return non-zero when the network of @p peer got @p limit (> 0) not-found
 *  answers in the current hour. */
int anvil_harvest_blocked(const char *peer, long limit, time_t now);

/** Count one not-found answer. @return the count in the current hour (0 when
 *  the network is not tracked). */
unsigned anvil_harvest_miss(const char *peer, time_t now);

/**
 * Delay before the next CERT/CERS answer of a session that has had @p misses
 * not-found answers: 0 below @p threshold (0 = never), then 1, 2, 4, ... seconds
 * up to ANVIL_DELAY_MAX (Postfix smtpd_error_sleep_time / soft_error_limit).
 */
long anvil_harvest_delay(unsigned misses, long threshold);

/** Forget everything (tests). */
void anvil_reset(void);

#endif
