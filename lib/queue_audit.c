/*
 * queue_audit.c - the review queue's audit log (STATE/audit.log): one line per
 * action, "TIME actor=A action=B id=C address=D detail=E", values quoted and
 * escaped so that nothing a peer or a certificate controls can start a line of
 * its own. The file is opened O_APPEND by lib/queue.c; each line is one write(2),
 * so lines of the daemon and the CLI never interleave, and is fsync'ed before the
 * action counts as recorded. Runs in the daemon and in the admin CLI.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue_int.h"

/* Append @p v to @p buf, quoted and escaped when it is empty or not a plain token. */
static void audit_value(char *buf, size_t size, size_t *off, const char *key, const char *v)
{
	size_t o = *off;
	int plain = v && *v, w;

	if (!v)
		v = "";
	for (const unsigned char *p = (const unsigned char *)v; *p && plain; p++)
		if (*p <= ' ' || *p == '"' || *p == '\\' || *p == 0x7f)
			plain = 0;
	if (o + 1 >= size)
		return;
	w = snprintf(buf + o, size - o, " %s=%s", key, plain ? "" : "\"");
	if (w < 0 || (size_t)w >= size - o)
		return; /* no room: the value is left out, the line stays whole */
	o += (size_t)w;
	for (const unsigned char *p = (const unsigned char *)v; *p && o + 6 < size; p++) {
		if (*p < 0x20 || *p == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *p);
		else if (*p == '"' || *p == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", *p);
		else
			buf[o++] = (char)*p;
	}
	if (!plain && o + 1 < size)
		buf[o++] = '"';
	buf[o] = '\0';
	*off = o;
}

sc_status sc_queue_audit_fd(int fd, const char *actor, const char *action, const char *id,
			    const char *address, const char *detail)
{
	char line[2048], when[32];
	struct tm tm;
	time_t now = time(NULL);
	size_t off, w = 0;

	SC_ENSURE_ARG(fd >= 0 && action);
	if (!gmtime_r(&now, &tm) || !strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof when, "@%lld", (long long)now);
	off = (size_t)snprintf(line, sizeof line, "%s", when);
	/* Each value is bounded so that the line always ends with its newline. */
	audit_value(line, 400, &off, "actor", actor);
	audit_value(line, 480, &off, "action", action);
	audit_value(line, 560, &off, "id", id ? id : "-");
	audit_value(line, 1000, &off, "address", address ? address : "-");
	if (detail && *detail)
		audit_value(line, sizeof line - 1, &off, "detail", detail);
	line[off++] = '\n';
	/* One write() per line: O_APPEND keeps concurrent writers' lines apart. */
	while (w < off) {
		ssize_t n = write(fd, line + w, off - w);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return SC_ERR_IO;
		w += (size_t)n;
	}
	return fsync(fd) == 0 ? SC_OK : SC_ERR_IO;
}
