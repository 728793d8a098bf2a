/*
 * pgtest.c - a private PostgreSQL cluster (tests/lib/pgsql.py) and blocking
 * libpq helpers for the unit tests of the pgsql: backends (pgtest.h). Test code
 * only; runs in the test process and the pgsql.py it forks.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "pgtest.h"

int pt_cluster_start(struct pt_cluster *c, const char *who)
{
	const char *src = getenv("SC_SOURCE_DIR");
	char script[1024], line[512] = "";
	int in[2], out[2];

	signal(SIGPIPE, SIG_IGN);
	snprintf(script, sizeof script, "%s/tests/lib/pgsql.py", src ? src : "..");
	if (pipe(in) != 0 || pipe(out) != 0)
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execlp("python3", "python3", script, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = fdopen(out[0], "r");
	if (!c->out || !fgets(line, sizeof line, c->out) || strncmp(line, "host=", 5)) {
		fprintf(stderr, "%s: no PostgreSQL cluster from %s: %s\n", who, script, line);
		return -1;
	}
	line[strcspn(line, "\n")] = '\0';
	snprintf(c->server, sizeof c->server, "%s", line);
	return 0;
}

void pt_cluster_stop(struct pt_cluster *c)
{
	int status;

	if (c->in >= 0)
		close(c->in); /* pgsql.py stops and removes the cluster */
	c->in = -1;
	if (c->out)
		fclose(c->out);
	c->out = NULL;
	if (c->pid > 0)
		waitpid(c->pid, &status, 0);
	c->pid = -1;
}

void pt_conninfo(const struct pt_cluster *c, char *buf, size_t size, const char *db,
		 int timeout)
{
	const char *p = strstr(c->server, "dbname=");
	int pre = p ? (int)(p - c->server) : 0;
	const char *rest = p ? strchr(p, ' ') : "";

	snprintf(buf, size, "%.*sdbname=%s%s", pre, c->server, db, rest ? rest : "");
	if (timeout > 0) {
		char *t = strstr(buf, "connect_timeout=");

		if (t)
			snprintf(t, size - (size_t)(t - buf), "connect_timeout=%d", timeout);
	}
}

PGresult *pt_sql(const struct pt_cluster *c, const char *db, const char *q)
{
	char ci[700];
	PGconn *pc;
	PGresult *r;

	pt_conninfo(c, ci, sizeof ci, db, 0);
	pc = PQconnectdb(ci);
	if (PQstatus(pc) != CONNECTION_OK)
		fail_msg("connect %s: %s", ci, PQerrorMessage(pc));
	r = PQexec(pc, q);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", q, PQresultErrorMessage(r));
	PQfinish(pc);
	return r;
}
