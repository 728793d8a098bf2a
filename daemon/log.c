/*
 * log.c - smtpcertd logging (see log.h). Owns the choice of sink (stderr or
 * syslog) and the debug switch; runs in the daemon process.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_sink = LOG_SINK_STDERR;
static int log_debug;

void log_init(int sink, int debug)
{
	log_sink = sink;
	log_debug = debug;
	if (sink == LOG_SINK_SYSLOG)
		openlog("smtpcertd", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int log_debug_enabled(void)
{
	return log_debug;
}

static const char *log_level_name(int prio)
{
	switch (prio) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR: return "error: ";
	case LOG_WARNING: return "warning: ";
	case LOG_DEBUG: return "debug: ";
	default: return "";
	}
}

void log_msg(int prio, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if ((prio == LOG_DEBUG && !log_debug) || log_sink == LOG_SINK_NONE)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (log_sink == LOG_SINK_STDERR) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		/* One fprintf per line: stderr is unbuffered, so lines do not interleave. */
		fprintf(stderr, "%s.%03ldZ smtpcertd[%ld]: %s%s\n", stamp, ts.tv_nsec / 1000000L,
			(long)getpid(), log_level_name(prio), line);
	} else {
		syslog(prio, "%s%s", log_level_name(prio), line);
	}
}

const char *log_escape(const char *in, size_t len, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (size == 0)
		return out;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		int plain = ch > 0x20 && ch < 0x7f && ch != '\\';
		size_t need = plain ? 1 : 4;

		/* keep room for "..." and the NUL */
		if (o + need + 4 > size) {
			if (o + 4 <= size) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return out;
}
