/*
 * repo_index.h - keeps the lookup index of each local store current
 * (sc_repo_index_refresh(), smtpcert/repo.h) in a serving process: a check once
 * a second on the event loop, the build on a thread of its own. The key
 * `repository_index = no` turns it off.
 */
#ifndef SMTPCERTD_REPO_INDEX_H
#define SMTPCERTD_REPO_INDEX_H

#include <event2/event.h>
#include <smtpcert/smtpcert.h>

struct worker;

/* A build that took T ms is followed by the next one no sooner than this many
 * times T later, so that a store written to all the time costs a bounded share
 * of one thread (lookups read the store directly meanwhile). */
#define REPO_INDEX_BACKOFF 4
/* Seconds before a build that failed for want of memory (or worse) is tried again. */
#define REPO_INDEX_RETRY_S 60

/**
 * Check now and then every second; builds run on @p w.
 * @return SC_OK; SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status repo_index_start(struct event_base *base, struct worker *w);

/** Stop checking and cancel a build in flight (it stops within a few thousand
 *  addresses; destroying its pool waits for that). */
void repo_index_stop(void);

/** Run the check at once (tests; the timer calls it). */
void repo_index_check(void);

#endif
