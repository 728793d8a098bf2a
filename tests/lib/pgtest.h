/*
 * pgtest.h - a private PostgreSQL cluster for the unit tests of the pgsql:
 * backends (library sc_testlib): tests/lib/pgsql.py run as a child (initdb in a
 * temp dir, a free loopback port; the system's cluster is never touched), its
 * conninfo line read from its stdout; closing its stdin makes it stop and
 * remove the cluster. Plus the blocking libpq the tests use for their own setup
 * and inspection, never the code tested. A missing PostgreSQL makes
 * pt_cluster_start() fail (scripts/install-deps installs it). Test code only.
 */
#ifndef SC_PGTEST_H
#define SC_PGTEST_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <libpq-fe.h>

struct pt_cluster {
	char server[600]; /* what pgsql.py printed (database smtpcert) */
	FILE *out;        /* pgsql.py's stdout */
	int in;           /* pgsql.py's stdin: closed to stop it */
	pid_t pid;
};

#define PT_CLUSTER_INIT { .in = -1, .pid = -1 }

/* Start pgsql.py (under $SC_SOURCE_DIR, else ..) and read its conninfo line;
 * 0, or -1 with a message on stderr naming @p who. SIGPIPE is ignored from then
 * on (a killed server connection must not end the test). */
int pt_cluster_start(struct pt_cluster *c, const char *who);
/* Close pgsql.py's stdin (it stops and removes the cluster) and wait for it. */
void pt_cluster_stop(struct pt_cluster *c);
/* c->server with dbname=@p db (and connect_timeout=@p timeout when > 0). */
void pt_conninfo(const struct pt_cluster *c, char *buf, size_t size, const char *db,
		 int timeout);
/* Run @p q in database @p db on a connection of its own; fails the test on a
 * connection or SQL error. The caller PQclear()s the result. */
PGresult *pt_sql(const struct pt_cluster *c, const char *db, const char *q);

#endif
