/*
 * log.c - smtpcertd logging (see log.h). Owns the choice of sink (stderr or
 * syslog), the debug switch and the stderr batch buffer; runs in the daemon
 * process (the root reload helper logs through it too, after its fork).
 *
 * Why a batch: one write(2) per request line was a third of the daemon's CPU
 * under load (docs/performance.md). Lines logged on the event-loop thread are
 * appended to a buffer and written together when the loop's current round of
 * callbacks ends (an event made active by the first buffered line), so a burst
 * of pipelined requests costs one write. Lines from other threads (worker jobs)
 * and from before log_attach() are written at once, after what is buffered, so
 * the order in the log is the order of the calls.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "log.h"

/* A round of callbacks logging more than this is written in pieces. */
#define LOG_BATCH_MAX (64 * 1024)
/* A message longer than this is cut; a whole stderr line (stamp, tag, level,
 * message, newline) fits LOG_LINE_MAX. */
#define LOG_MSG_MAX 2047
#define LOG_LINE_MAX (LOG_MSG_MAX + 128)

static int log_sink = LOG_SINK_STDERR;
static int log_debug;
/* "smtpcertd[PID]: ", cached: getpid() per line was measurable */
static char log_tag[48];
static size_t log_tag_len;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_batch[LOG_BATCH_MAX];
static size_t log_used;
static struct event *log_flush_ev;   /* NULL until log_attach() */
static __thread int log_on_loop;     /* this thread called log_attach() */
static int log_atfork_done;
/* CLOCK_REALTIME - CLOCK_MONOTONIC (tv_nsec in 0..999999999), sampled by the
 * first batched line of a round that brings a monotonic reading (see
 * log_stamp_time()); log_off_fresh is cleared when the batch is written, so
 * a round never uses an earlier round's offset. Under log_lock. */
static struct timespec log_off;
static time_t log_off_at = -1;       /* its CLOCK_MONOTONIC second */
static int log_off_fresh;

/* Write everything in @p buf to stderr; a log line must not be lost to EINTR. */
static void log_write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(2, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* stderr is gone: nothing better to do with a log line */
		buf += n;
		len -= (size_t)n;
	}
}

/* Caller holds log_lock. */
static void log_flush_locked(void)
{
	if (log_used > 0) {
		log_write_all(log_batch, log_used);
		log_used = 0;
	}
	log_off_fresh = 0;
}

void log_flush(void)
{
	pthread_mutex_lock(&log_lock);
	log_flush_locked();
	pthread_mutex_unlock(&log_lock);
}

static void log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	log_flush();
}

/* fork(): nothing buffered may be written twice, and the child has its own pid. */
static void log_before_fork(void)
{
	pthread_mutex_lock(&log_lock);
	log_flush_locked();
}

static void log_after_fork_parent(void)
{
	pthread_mutex_unlock(&log_lock);
}

static void log_set_tag(void)
{
	int n = snprintf(log_tag, sizeof log_tag, "smtpcertd[%ld]: ", (long)getpid());

	log_tag_len = n > 0 && (size_t)n < sizeof log_tag ? (size_t)n : 0;
}

static void log_after_fork_child(void)
{
	log_set_tag();
	log_used = 0;
	/* the parent's loop does not run here: the child writes at once */
	log_flush_ev = NULL;
	pthread_mutex_unlock(&log_lock);
}

void log_init(int sink, int debug)
{
	log_flush();
	log_sink = sink;
	log_debug = debug;
	log_set_tag();
	if (!log_atfork_done) {
		log_atfork_done = 1;
		(void)pthread_atfork(log_before_fork, log_after_fork_parent, log_after_fork_child);
		(void)atexit(log_flush);
	}
	if (sink == LOG_SINK_SYSLOG)
		openlog("smtpcertd", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int log_attach(struct event_base *base)
{
	log_detach();
	log_flush_ev = event_new(base, -1, 0, log_flush_cb, NULL);
	if (!log_flush_ev)
		return -1;
	log_on_loop = 1;
	return 0;
}

void log_detach(void)
{
	log_flush();
	log_on_loop = 0;
	if (log_flush_ev) {
		event_free(log_flush_ev);
		log_flush_ev = NULL;
	}
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

/*
 * The time of a batched line (log_lock held). A request line brings the
 * CLOCK_MONOTONIC reading its dispatcher took as the request ended (struct
 * log_request .mono); its wall-clock time is that reading plus REALTIME -
 * MONOTONIC, sampled once per event-loop round (per batch) and again when the
 * monotonic second changes: one clock_gettime() per request line saved
 * (docs/performance.md, sixth round). Why that is the same time to the stamp's
 * precision: the stamp shows milliseconds, truncated. NTP slews CLOCK_REALTIME
 * and CLOCK_MONOTONIC alike (adjtimex frequency changes apply to both; only
 * CLOCK_MONOTONIC_RAW ignores them), so their difference moves only when the
 * wall clock is stepped (clock_settime, an NTP step at boot). Within a round
 * the derived time is the wall clock at .mono to within the two reads that
 * sampled the offset (tens of nanoseconds), and .mono is read nanoseconds
 * before the old clock_gettime(CLOCK_REALTIME) here was: the printed
 * millisecond differs only when a millisecond boundary falls in that window,
 * as it would for any read a few instructions earlier. A step shows from the
 * next round or the next monotonic second, whichever comes first.
 */
static void log_stamp_time(struct timespec *ts, const struct timespec *mono)
{
	if (!mono) {
		clock_gettime(CLOCK_REALTIME, ts);
		return;
	}
	if (!log_off_fresh || mono->tv_sec > log_off_at) {
		struct timespec r, m;

		clock_gettime(CLOCK_REALTIME, &r);
		clock_gettime(CLOCK_MONOTONIC, &m);
		log_off.tv_sec = r.tv_sec - m.tv_sec;
		log_off.tv_nsec = r.tv_nsec - m.tv_nsec;
		if (log_off.tv_nsec < 0) {
			log_off.tv_nsec += 1000000000L;
			log_off.tv_sec--;
		}
		log_off_at = m.tv_sec;
		log_off_fresh = 1;
	}
	ts->tv_sec = mono->tv_sec + log_off.tv_sec;
	ts->tv_nsec = mono->tv_nsec + log_off.tv_nsec;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_nsec -= 1000000000L;
		ts->tv_sec++;
	}
}

/*
 * The start of a stderr line into @p dst: time stamp, pid, level. The message
 * follows in place (one vsnprintf into the batch, no second pass over the
 * message: two printf passes and a copy per CERT line showed in the profile).
 * @p mono: see log_stamp_time(); NULL reads the wall clock (any thread).
 */
static size_t log_prefix(char *dst, int prio, const struct timespec *mono)
{
	/* the date part changes once a second: formatted then, per thread
	 * (gmtime_r + strftime per line showed in the profile) */
	static __thread char stamp[32];
	static __thread size_t stamp_len;
	static __thread time_t stamp_sec = -1;
	const char *level = log_level_name(prio);
	size_t o, level_len = strlen(level);
	struct timespec ts;
	long ms;

	log_stamp_time(&ts, mono);
	if (ts.tv_sec != stamp_sec) {
		struct tm tm;

		gmtime_r(&ts.tv_sec, &tm);
		stamp_len = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		stamp_sec = ts.tv_sec;
	}
	ms = ts.tv_nsec / 1000000L;
	memcpy(dst, stamp, stamp_len);
	o = stamp_len;
	dst[o++] = '.';
	dst[o++] = (char)('0' + ms / 100);
	dst[o++] = (char)('0' + ms / 10 % 10);
	dst[o++] = (char)('0' + ms % 10);
	memcpy(dst + o, "Z ", 2);
	o += 2;
	memcpy(dst + o, log_tag, log_tag_len);
	o += log_tag_len;
	memcpy(dst + o, level, level_len);
	return o + level_len;
}

/* A message: printf-formatted (fmt, ap) or a request's fields (req). */
struct log_msgsrc {
	const char *fmt;
	va_list *ap;
	const struct log_request *req;
};

static size_t log_request_body(char *dst, const struct log_request *r);

/* The message into @p dst (room for LOG_MSG_MAX + 1), cut at LOG_MSG_MAX.
 * @return its length. */
static size_t log_body(char *dst, const struct log_msgsrc *m)
{
	int r;

	if (m->req)
		return log_request_body(dst, m->req);
	/* m->fmt is log_msg()'s format argument, which the compiler checks
	 * against its arguments at every call (log.h: format attribute) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	r = vsnprintf(dst, LOG_MSG_MAX + 1, m->fmt, *m->ap);
#pragma GCC diagnostic pop
	if (r <= 0)
		return 0;
	return (size_t)r > LOG_MSG_MAX ? LOG_MSG_MAX : (size_t)r;
}

/* One line to the sink: batched on the loop thread, else written at once. */
static void log_put(int prio, const struct log_msgsrc *m)
{
	if (log_sink == LOG_SINK_STDERR) {
		char out[LOG_LINE_MAX];
		size_t o;

		if (log_on_loop) {
			pthread_mutex_lock(&log_lock);
			if (log_flush_ev) {
				char *dst;

				if (log_used + LOG_LINE_MAX > sizeof log_batch)
					log_flush_locked();
				/* the first line of a round schedules the write at
				 * its end */
				if (log_used == 0)
					event_active(log_flush_ev, EV_TIMEOUT, 0);
				/* formatted in place: a request line too, with no
				 * line on the stack to copy (docs/performance.md,
				 * sixth round) */
				dst = log_batch + log_used;
				o = log_prefix(dst, prio, m->req ? m->req->mono : NULL);
				o += log_body(dst + o, m);
				dst[o++] = '\n';
				log_used += o;
				pthread_mutex_unlock(&log_lock);
				return;
			}
			pthread_mutex_unlock(&log_lock);
		}
		/* other threads (and a forked child) format outside the lock */
		o = log_prefix(out, prio, NULL);
		o += log_body(out + o, m);
		out[o++] = '\n';
		pthread_mutex_lock(&log_lock);
		log_flush_locked();
		log_write_all(out, o);
		pthread_mutex_unlock(&log_lock);
	} else {
		char line[LOG_MSG_MAX + 1];
		size_t n = log_body(line, m);

		line[n] = '\0';
		syslog(prio, "%s%s", log_level_name(prio), line);
	}
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	struct log_msgsrc m = { fmt, &ap, NULL };

	if ((prio == LOG_DEBUG && !log_debug) || log_sink == LOG_SINK_NONE)
		return;
	va_start(ap, fmt);
	log_put(prio, &m);
	va_end(ap);
}

/* Append @p s to a request line, cut at the line's end. Its fields are short
 * (an address, an id, a verb): a byte loop, not strnlen() and memcpy() per
 * field (docs/performance.md, sixth round). */
static size_t log_cat(char *dst, size_t o, const char *s)
{
	while (*s != '\0' && o < LOG_MSG_MAX)
		dst[o++] = *s++;
	return o;
}

/* Append @p n bytes, cut at the line's end; inlined with a constant @p n, the
 * common case is a fixed-size copy. */
static inline size_t log_cat_n(char *dst, size_t o, const char *s, size_t n)
{
	if (n <= LOG_MSG_MAX - o) {
		memcpy(dst + o, s, n);
		return o + n;
	}
	memcpy(dst + o, s, LOG_MSG_MAX - o);
	return LOG_MSG_MAX;
}

/* A literal key (" session="), its length known at compile time. */
#define LOG_KEY(dst, o, key) log_cat_n(dst, o, key, sizeof(key) - 1)

/* Append @p v in decimal, cut at the line's end: counted first, then written
 * from its last digit in place (no digit buffer to reverse; result= and us=
 * are on every request line, docs/performance.md, sixth round). */
static size_t log_cat_long(char *dst, size_t o, long v)
{
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v, t = u;
	size_t n = v < 0 ? 2 : 1, end;

	while (t >= 10) {
		t /= 10;
		n++;
	}
	if (n > LOG_MSG_MAX - o) {
		/* the line's end cuts it: the digits that fit, from the left */
		char digits[24];

		(void)log_cat_long(digits, 0, v);
		return log_cat_n(dst, o, digits, LOG_MSG_MAX - o);
	}
	end = o + n;
	do {
		dst[--end] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		dst[o] = '-';
	return o + n;
}

/* The text of a request line into @p dst (room for LOG_MSG_MAX + 1).
 * @return its length, at most LOG_MSG_MAX. */
static size_t log_request_body(char *dst, const struct log_request *r)
{
	size_t o;

	o = log_cat(dst, LOG_KEY(dst, 0, "client="), r->peer);
	o = log_cat(dst, LOG_KEY(dst, o, " session="), r->session);
	o = log_cat(dst, LOG_KEY(dst, o, " cmd="), r->cmd);
	if (r->addr && r->addr[0])
		o = log_cat(dst, LOG_KEY(dst, o, " addr="), r->addr);
	o = log_cat_long(dst, LOG_KEY(dst, o, " result="), r->result);
	o = log_cat(dst, LOG_KEY(dst, o, " status="), r->status);
	if (r->delayed >= 0)
		o = LOG_KEY(dst, log_cat_long(dst, LOG_KEY(dst, o, " delayed="), r->delayed), "s");
	else
		o = log_cat_long(dst, LOG_KEY(dst, o, " us="), r->us);
	return o;
}

void log_request(const struct log_request *r)
{
	struct log_msgsrc m = { NULL, NULL, r };

	if (log_sink == LOG_SINK_NONE)
		return;
	log_put(LOG_INFO, &m);
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
