/*
 * notify.c - postmaster notices: durable spool in STATE/notices/, delivery,
 * retry timer (see notify.h). Owns the spool directory and the retry timer.
 * Daemon process: spool and delivery on worker threads, timer on the loop.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery.h"
#include "log.h"
#include "notify.h"
#include "runtime.h"
#include "worker.h"

/* One delivery at a time: a notice is read, delivered and unlinked under it. */
static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event *notify_timer;
static int notify_busy; /* a pass is in flight (loop thread only) */

/* A spool name is a submission id: lower-case hex only, so a file name can
 * never leave the directory. */
static int notify_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > SC_QUEUE_ID_LEN)
		return 0;
	return strspn(id, "0123456789abcdef") == n;
}

static sc_status notify_dir(const char *state_dir, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/notices", state_dir);

	return n > 0 && (size_t)n < size ? SC_OK : SC_ERR_TOO_LONG;
}

static sc_status notify_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return SC_ERR_IO;
	rc = fsync(fd);
	close(fd);
	return rc == 0 ? SC_OK : SC_ERR_IO;
}

static sc_status notify_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SC_ERR_IO;
		p += w;
		len -= (size_t)w;
	}
	return SC_OK;
}

sc_status notify_save(const char *state_dir, const char *id, const char *msg, size_t len,
		      char *err, size_t errlen)
{
	char dir[1100], tmp[1200], path[1200];
	sc_status rc;
	int fd;

	SC_ENSURE_ARG(state_dir && id && msg);
	SC_ENSURE(notify_id_ok(id), SC_ERR_ARG);
	SC_TRY(notify_dir(state_dir, dir, sizeof dir));
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return SC_ERR_IO;
	}
	snprintf(tmp, sizeof tmp, "%s/.tmp-%s", dir, id);
	snprintf(path, sizeof path, "%s/%s", dir, id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return SC_ERR_IO;
	}
	rc = notify_write_all(fd, msg, len);
	if (rc == SC_OK && fsync(fd) != 0)
		rc = SC_ERR_IO;
	if (close(fd) != 0)
		rc = SC_ERR_IO;
	/* rename then fsync the directory: the name survives a crash (rename(2)) */
	if (rc == SC_OK && rename(tmp, path) != 0)
		rc = SC_ERR_IO;
	if (rc == SC_OK)
		rc = notify_fsync_dir(dir);
	if (rc != SC_OK) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return rc;
}

/* Read a spooled notice, bounded by NOTIFY_MAX. *msg is the caller's to free. */
static sc_status notify_read(const char *path, char **msg, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	size_t got = 0;
	char *buf;

	if (fd < 0)
		return errno == ENOENT ? SC_ERR_NOT_FOUND : SC_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > NOTIFY_MAX) {
		close(fd);
		return SC_ERR_IO;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return SC_ERR_NOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*msg = buf;
	*len = got;
	return SC_OK;
}

/*
 * Hand one notice to the delivery (the issue: the postmaster notices go through
 * the mail delivery): into the postmaster's Maildir, to the LMTP server, or to
 * the backend MTA of a proxy: deployment. Null reverse-path (RFC 5321 4.5.5:
 * an automatic message must not provoke bounces). The delivery settings are
 * copied from @p t: large, so on the heap rather than a worker's stack.
 */
sc_status notify_send(const struct notify_target *t, const char *msg, size_t len, char *err,
		      size_t errlen)
{
	struct delivery_cfg *cfg = calloc(1, sizeof *cfg);
	sc_status rc;

	if (!cfg)
		return SC_ERR_NOMEM;
	snprintf(cfg->spec, sizeof cfg->spec, "%s", t->delivery);
	if (t->hostname[0])
		snprintf(cfg->hostname, sizeof cfg->hostname, "%s", t->hostname);
	else if (gethostname(cfg->hostname, sizeof cfg->hostname - 1) != 0)
		snprintf(cfg->hostname, sizeof cfg->hostname, "localhost");
	cfg->timeout_ms = t->timeout_ms;
	snprintf(cfg->tmp_dir, sizeof cfg->tmp_dir, "%s", t->state_dir);
	rc = delivery_send_buffer(cfg, "", &t->postmaster, msg, len, err, errlen);
	free(cfg);
	/* a permanent refusal too stays spooled and logged: a notice the
	 * postmaster never sees must not vanish silently */
	return rc == SC_ERR_REJECTED ? SC_ERR_IO : rc;
}

/* Across processes (several serving processes, `workers`): one delivery or
 * pass at a time per spool, so that a notice is never sent twice; a notice
 * another process delivered meanwhile is simply gone (SC_ERR_NOT_FOUND). */
static int notify_flock(int fd)
{
	int r;

	do
		r = flock(fd, LOCK_EX);
	while (r != 0 && errno == EINTR);
	return r;
}

/* @return the spool directory open and locked (close() unlocks), or -1 when
 * it does not exist yet (nothing to deliver then). */
static int notify_dir_lock(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0)
		(void)notify_flock(fd);
	return fd;
}

/* Deliver one spooled notice; the caller holds notify_lock and the spool's
 * flock. */
static sc_status notify_deliver_locked(const struct notify_target *t, const char *dir,
				       const char *id, char *err, size_t errlen)
{
	char path[1200], *msg = NULL;
	size_t len = 0;
	sc_status rc;

	snprintf(path, sizeof path, "%s/%s", dir, id);
	rc = notify_read(path, &msg, &len);
	if (rc != SC_OK) {
		if (rc != SC_ERR_NOT_FOUND)
			snprintf(err, errlen, "%s: cannot read: %s", path, sc_strerror(rc));
		return rc;
	}
	if (!t->delivery[0]) {
		free(msg);
		snprintf(err, errlen, "no `delivery` configured: the notice stays in %s", dir);
		return SC_ERR_CONFIG;
	}
	rc = notify_send(t, msg, len, err, errlen);
	free(msg);
	if (rc != SC_OK)
		return rc;
	/* delivered: the spool copy goes (a crash in between means a duplicate
	 * notice, never a lost one) */
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: cannot remove after delivery: %s", path, strerror(errno));
		return SC_ERR_IO;
	}
	(void)notify_fsync_dir(dir);
	return SC_OK;
}

sc_status notify_deliver(const struct notify_target *t, const char *id, char *err, size_t errlen)
{
	char dir[1100];
	sc_status rc;
	int dfd;

	SC_ENSURE_ARG(t && id);
	SC_ENSURE(notify_id_ok(id), SC_ERR_ARG);
	SC_TRY(notify_dir(t->state_dir, dir, sizeof dir));
	pthread_mutex_lock(&notify_lock);
	dfd = notify_dir_lock(dir);
	rc = notify_deliver_locked(t, dir, id, err, errlen);
	if (dfd >= 0)
		close(dfd);
	pthread_mutex_unlock(&notify_lock);
	return rc;
}

sc_status notify_flush(const struct notify_target *t, unsigned *delivered, unsigned *left,
		       char *err, size_t errlen)
{
	char dir[1100];
	sc_status first = SC_OK;
	struct dirent *de;
	DIR *d;

	*delivered = *left = 0;
	SC_TRY(notify_dir(t->state_dir, dir, sizeof dir));
	pthread_mutex_lock(&notify_lock);
	d = opendir(dir);
	if (d)
		(void)notify_flock(dirfd(d));
	if (!d) {
		pthread_mutex_unlock(&notify_lock);
		if (errno == ENOENT)
			return SC_OK; /* no submission ever made a notice */
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return SC_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		char why[512] = "";
		sc_status rc;

		if (!notify_id_ok(de->d_name))
			continue; /* ".", "..", temporary files */
		rc = notify_deliver_locked(t, dir, de->d_name, why, sizeof why);
		if (rc == SC_OK) {
			++*delivered;
		} else if (rc != SC_ERR_NOT_FOUND) {
			++*left;
			if (first == SC_OK) {
				first = rc;
				snprintf(err, errlen, "%s", why);
			}
		}
	}
	closedir(d);
	pthread_mutex_unlock(&notify_lock);
	return first;
}

void notify_target_fill(struct notify_target *t, const struct runtime *rt)
{
	const char *sd, *dl;

	memset(t, 0, sizeof *t);
	if (!rt)
		return;
	sd = sc_config_str(rt->cfg, "state_dir");
	dl = sc_config_str(rt->cfg, "delivery");
	snprintf(t->state_dir, sizeof t->state_dir, "%s", sd ? sd : "");
	snprintf(t->delivery, sizeof t->delivery, "%s", dl ? dl : "");
	t->postmaster = rt->postmaster;
	snprintf(t->hostname, sizeof t->hostname, "%s", rt->hostname ? rt->hostname : "");
	t->timeout_ms = rt->delivery_timeout > 0 && rt->delivery_timeout <= 3600 ?
				(int)rt->delivery_timeout * 1000 : 0;
}

void notify_target_current(struct notify_target *t)
{
	notify_target_fill(t, runtime_current());
}

/* A retry pass, owned by the pass from submission to done. */
struct notify_pass {
	struct notify_target t;
	sc_status rc;
	unsigned delivered, left;
	char err[512];
};

static void notify_pass_work(void *arg)
{
	struct notify_pass *p = arg;

	p->rc = notify_flush(&p->t, &p->delivered, &p->left, p->err, sizeof p->err);
}

static void notify_pass_done(void *arg)
{
	struct notify_pass *p = arg;

	notify_busy = 0;
	if (p->delivered)
		log_msg(LOG_INFO, "notices: delivered %u pending postmaster notice(s)", p->delivered);
	if (p->left)
		log_msg(p->rc == SC_ERR_CONFIG ? LOG_WARNING : LOG_ERR,
			"notices: %u postmaster notice(s) not delivered, retry in %d s: %s", p->left,
			NOTIFY_RETRY_SECONDS, p->err);
	free(p);
}

static void notify_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = worker_default();
	struct notify_pass *p;

	if (notify_busy || !runtime_current())
		return;
	p = calloc(1, sizeof *p);
	if (!p) {
		log_msg(LOG_ERR, "notices: out of memory, retry in %d s", NOTIFY_RETRY_SECONDS);
		return;
	}
	notify_target_current(&p->t);
	if (!p->t.state_dir[0]) {
		free(p);
		return;
	}
	notify_busy = 1;
	if (w && worker_submit(w, notify_pass_work, notify_pass_done, p) == SC_OK)
		return;
	/* no pool (tests) or its queue is full: do the pass here */
	notify_pass_work(p);
	notify_pass_done(p);
}

sc_status notify_start(struct event_base *base)
{
	struct timeval tv = { NOTIFY_RETRY_SECONDS, 0 };

	if (notify_timer)
		return SC_OK;
	notify_timer = event_new(base, -1, EV_PERSIST, notify_timer_cb, NULL);
	if (!notify_timer || event_add(notify_timer, &tv) != 0)
		return SC_ERR_NOMEM;
	/* leftovers of a previous run go out now, not in a minute */
	event_active(notify_timer, EV_TIMEOUT, 0);
	return SC_OK;
}

void notify_stop(void)
{
	if (notify_timer)
		event_free(notify_timer);
	notify_timer = NULL;
}
