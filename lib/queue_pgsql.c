/*
 * queue_pgsql.c - the PostgreSQL backend of the review queue (placeholder until
 * lib/pgsql_db.c lands: a pgsql: queue is refused with a clear message).
 */
#include <stdio.h>

#include "queue_int.h"

sc_status sc_queue_pg_open(const char *conninfo, sc_queue **out, char *err, size_t errlen)
{
	(void)conninfo;
	(void)out;
	if (err && errlen)
		snprintf(err, errlen, "pgsql: submission queue: not available in this build yet");
	return SC_ERR_UNSUPPORTED;
}
