/*
 * queue_dir.c - the directory backend of the review queue (include/smtpcert/queue.h,
 * vtable in queue_int.h, front in lib/queue.c), used when the configuration names
 * no pgsql: database: STATE/submissions/{tmp,pending,accepted,rejected}/<id> plus
 * STATE/audit.log. The
 * daemon adds entries, `smtpcert admin` lists and decides them, both at once: every
 * change is a single rename(2), so the other process sees the old or the new state,
 * never a half-written file. The entry format is lib/queue_entry.c.
 *
 * Durability (a 250 reply promises the data survives kill -9 and power loss):
 * write tmp/<id>, fsync it, rename into pending/, fsync pending/. A decision
 * renames pending/<id> into accepted/ or rejected/ first - the rename is the claim,
 * exactly one of two concurrent deciders wins it - then rewrites the entry's header
 * with the decision time and reason (tmp + fsync + rename over) and fsyncs both
 * directories. Runs in the daemon and in the admin CLI. A handle holds no hidden
 * global state but is not itself locked: threads sharing one serialise their calls
 * (the daemon's CERC workers take a mutex); separate processes need nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue_int.h"

enum { D_TMP, D_PENDING, D_ACCEPTED, D_REJECTED, D_COUNT };

static const char *const dir_names[D_COUNT] = { "tmp", "pending", "accepted", "rejected" };

/* Leftovers of a writer that crashed; younger files may be another process's write. */
#define TMP_STALE_SECONDS 3600

struct qdir {
	struct sc_queue base;   /* first: the front's view */
	char state_dir[PATH_MAX];
	int dfd[D_COUNT];
	int audit_fd;
	int chown_to;   /* root creating files: give them state_dir's owner */
	uid_t uid;
	gid_t gid;
};

#define warnf(q, ...) sc_queue_warnf(&(q)->base, __VA_ARGS__)

static struct qdir *qdir_of(sc_queue *base)
{
	return (struct qdir *)base;
}

static int state_dir_index(enum sc_submission_state st)
{
	return st == SC_SUB_ACCEPTED ? D_ACCEPTED : st == SC_SUB_REJECTED ? D_REJECTED : D_PENDING;
}

/*
 * The daemon runs as an unprivileged user while the administrator runs the CLI as
 * root: files root creates here get the owner of state_dir, so the daemon can still
 * write its audit lines and entries afterwards.
 */
static void give(const struct qdir *q, int fd)
{
	if (q->chown_to && fchown(fd, q->uid, q->gid) != 0) {
		/* best effort: the daemon will report EACCES itself */
	}
}

static sc_status errno_status(int e)
{
	switch (e) {
	case ENOENT: return SC_ERR_NOT_FOUND;
	case EACCES:
	case EPERM:
	case EROFS: return SC_ERR_PERM;
	case ENOMEM: return SC_ERR_NOMEM;
	default: return SC_ERR_IO;
	}
}

/* mkdirat + open as a directory, refusing symlinks. @return fd or -1 (errno set). */
static int open_subdir(struct qdir *q, int parent, const char *name)
{
	int fd;

	if (mkdirat(parent, name, 0700) == 0) {
		fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			give(q, fd);
			(void)fsync(parent);
		}
		return fd;
	}
	if (errno != EEXIST)
		return -1;
	return openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void clean_tmp(struct qdir *q)
{
	int fd = openat(q->dfd[D_TMP], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(q->dfd[D_TMP], de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && now - st.st_mtime > TMP_STALE_SECONDS)
			(void)unlinkat(q->dfd[D_TMP], de->d_name, 0);
	}
	closedir(d);
}

static const struct sc_queue_ops qdir_ops;

static void qdir_free(struct qdir *q)
{
	for (int i = 0; i < D_COUNT; i++)
		if (q->dfd[i] >= 0)
			close(q->dfd[i]);
	if (q->audit_fd >= 0)
		close(q->audit_fd);
	free(q);
}

sc_status sc_queue_dir_open(const char *state_dir, sc_queue **out, char *err, size_t errlen)
{
	struct qdir *q;
	struct stat st;
	int sfd = -1, subfd = -1;
	sc_status rc = SC_OK;

	SC_ENSURE_ARG(state_dir && out);
	if (err && errlen)
		err[0] = '\0';
	q = calloc(1, sizeof *q);
	if (!q)
		return SC_ERR_NOMEM;
	q->base.ops = &qdir_ops;
	q->audit_fd = -1;
	for (int i = 0; i < D_COUNT; i++)
		q->dfd[i] = -1;
	if ((size_t)snprintf(q->state_dir, sizeof q->state_dir, "%s", state_dir) >=
	    sizeof q->state_dir) {
		free(q);
		return SC_ERR_TOO_LONG;
	}
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		goto fail_errno;
	sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || fstat(sfd, &st) != 0)
		goto fail_errno;
	if (geteuid() == 0 && st.st_uid != 0) {
		q->chown_to = 1;
		q->uid = st.st_uid;
		q->gid = st.st_gid;
	}
	subfd = open_subdir(q, sfd, "submissions");
	if (subfd < 0)
		goto fail_errno;
	for (int i = 0; i < D_COUNT; i++)
		if ((q->dfd[i] = open_subdir(q, subfd, dir_names[i])) < 0)
			goto fail_errno;
	/* O_APPEND: the daemon and the CLI append lines without interleaving them. */
	q->audit_fd = openat(sfd, "audit.log",
			     O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (q->audit_fd < 0)
		goto fail_errno;
	give(q, q->audit_fd);
	close(subfd);
	close(sfd);
	clean_tmp(q);
	*out = &q->base;
	return SC_OK;

fail_errno:
	rc = errno_status(errno);
	if (rc == SC_ERR_NOT_FOUND)
		rc = SC_ERR_IO;
	if (err && errlen)
		snprintf(err, errlen, "%s: cannot open the submission queue: %s", state_dir,
			 strerror(errno));
	if (subfd >= 0)
		close(subfd);
	if (sfd >= 0)
		close(sfd);
	qdir_free(q);
	return rc;
}

static void qdir_close(sc_queue *base)
{
	qdir_free(qdir_of(base));
}

/* ---- files ---- */

static sc_status write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SC_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return SC_OK;
}

static sc_status fsync_fd(int fd)
{
	return fsync(fd) == 0 ? SC_OK : SC_ERR_IO;
}

/* Create tmp/@p name exclusively with @p n octets of @p data, fsync'ed. */
static sc_status write_tmp(struct qdir *q, const char *name, const char *data, size_t n)
{
	int fd = openat(q->dfd[D_TMP], name,
			O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	sc_status st;

	if (fd < 0)
		return errno == EEXIST ? SC_ERR_EXISTS : errno_status(errno);
	give(q, fd);
	st = write_all(fd, data, n);
	if (st == SC_OK)
		st = fsync_fd(fd);
	if (close(fd) != 0 && st == SC_OK)
		st = SC_ERR_IO;
	if (st != SC_OK)
		(void)unlinkat(q->dfd[D_TMP], name, 0);
	return st;
}

/* Read a regular file (no symlink) of at most @p max octets; *@p out is malloc'ed. */
static sc_status read_entry(int dfd, const char *name, size_t max, char **out, size_t *len)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	size_t got = 0;
	char *buf;
	sc_status rc = SC_OK;

	if (fd < 0)
		return errno == ENOENT ? SC_ERR_NOT_FOUND : errno == ELOOP ? SC_ERR_SYNTAX
									 : errno_status(errno);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return SC_ERR_SYNTAX;
	}
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return SC_ERR_NOMEM;
	}
	/* Read one octet more than allowed to tell "too long" from "exactly max". */
	while (got <= max) {
		ssize_t r = read(fd, buf + got, max + 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = SC_ERR_IO;
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (rc != SC_OK) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = got;
	return SC_OK;
}

static int exists_in(const struct qdir *q, int d, const char *id)
{
	struct stat st;

	return fstatat(q->dfd[d], id, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- audit ---- */

static sc_status qdir_audit(sc_queue *base, const char *actor, const char *action,
			    const char *id, const char *address, const char *detail)
{
	return sc_queue_audit_fd(qdir_of(base)->audit_fd, actor, action, id, address, detail);
}

/* ---- add ---- */

static sc_status qdir_add(sc_queue *base, struct sc_submission *sub, const sc_cert *c)
{
	struct qdir *q = qdir_of(base);
	struct sc_submission s = *sub;
	char *data = NULL, detail[256];
	size_t len;
	sc_status st = SC_ERR_EXISTS;

	/* 128 random bits do not collide; the loop is the uniqueness proof, not hope. */
	for (int tries = 0; tries < 8 && st == SC_ERR_EXISTS; tries++) {
		if ((st = sc_queue_new_id(s.id)) != SC_OK)
			break;
		st = SC_ERR_EXISTS;
		if (exists_in(q, D_PENDING, s.id) || exists_in(q, D_ACCEPTED, s.id) ||
		    exists_in(q, D_REJECTED, s.id))
			continue;
		free(data);
		data = NULL;
		if ((st = sc_queue_entry_encode(&s, c, &data, &len)) != SC_OK)
			break;
		st = write_tmp(q, s.id, data, len);
		if (st != SC_OK)
			continue;
		if (renameat2(q->dfd[D_TMP], s.id, q->dfd[D_PENDING], s.id, RENAME_NOREPLACE) != 0 &&
		    (errno != EINVAL ||
		     linkat(q->dfd[D_TMP], s.id, q->dfd[D_PENDING], s.id, 0) != 0)) {
			st = errno == EEXIST ? SC_ERR_EXISTS : errno_status(errno);
			(void)unlinkat(q->dfd[D_TMP], s.id, 0);
			continue;
		}
		(void)unlinkat(q->dfd[D_TMP], s.id, 0); /* after the linkat fallback */
		st = fsync_fd(q->dfd[D_PENDING]);
		/* Not durable means not queued: no entry behind a 451 (the client retries). */
		if (st != SC_OK)
			(void)unlinkat(q->dfd[D_PENDING], s.id, 0);
	}
	free(data);
	if (st != SC_OK)
		return st;
	snprintf(detail, sizeof detail, "client=%s fingerprint=%s", s.client, s.fingerprint);
	if (qdir_audit(base, s.auth_user[0] ? s.auth_user : "-", "submit", s.id, s.address,
		       detail) != SC_OK)
		warnf(q, "%s/audit.log: cannot append: %s", q->state_dir, strerror(errno));
	*sub = s;
	return SC_OK;
}

/* ---- get / list ---- */

/* Read and decode dir @p d entry @p id; header only unless @p cert is wanted. */
static sc_status load(struct qdir *q, int d, const char *id, struct sc_submission *s,
		      sc_cert **cert, int header_only)
{
	char *data = NULL;
	size_t len, body;
	sc_status st;

	SC_TRY(read_entry(q->dfd[d], id, header_only ? SC_QUEUE_HEADER_MAX : SC_QUEUE_ENTRY_MAX,
			  &data, &len));
	if (!header_only && len > SC_QUEUE_ENTRY_MAX)
		st = SC_ERR_TOO_LONG;
	else
		st = sc_queue_entry_decode(data, len, header_only, s, &body);
	/* A file renamed by hand must not pass for another submission. */
	if (st == SC_OK && strcmp(s->id, id))
		st = SC_ERR_MISMATCH;
	if (st == SC_OK && cert)
		st = sc_queue_entry_cert(s, data + body, len - body, cert);
	free(data);
	if (st == SC_OK)
		s->state = d == D_ACCEPTED ? SC_SUB_ACCEPTED
					   : d == D_REJECTED ? SC_SUB_REJECTED : SC_SUB_PENDING;
	return st;
}

static sc_status qdir_get(sc_queue *base, const char *id, struct sc_submission *out,
			  sc_cert **cert)
{
	struct qdir *q = qdir_of(base);
	struct sc_submission s;

	/* Entries only move pending -> accepted/rejected: this order never misses one. */
	for (int d = D_PENDING; d < D_COUNT; d++) {
		sc_status st = load(q, d, id, &s, cert, 0);

		if (st == SC_ERR_NOT_FOUND)
			continue;
		if (st == SC_OK)
			*out = s;
		return st;
	}
	return SC_ERR_NOT_FOUND;
}

static int cmp_sub(const void *a, const void *b)
{
	const struct sc_submission *x = a, *y = b;

	if (x->received != y->received)
		return x->received < y->received ? -1 : 1;
	return strcmp(x->id, y->id);
}

static sc_status qdir_list(sc_queue *base, enum sc_submission_state state, sc_queue_fn fn,
			   void *arg)
{
	struct qdir *q = qdir_of(base);
	int d = state_dir_index(state), fd;
	struct sc_submission *v = NULL;
	size_t n = 0, cap = 0, scanned = 0;
	struct dirent *de;
	sc_status st = SC_OK;
	int too_many = 0;
	DIR *dir;

	/* A fresh open file description: readdir position is not shared between calls. */
	fd = openat(q->dfd[d], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno_status(errno);
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return SC_ERR_NOMEM;
	}
	while ((de = readdir(dir)) != NULL) {
		struct sc_submission s;
		sc_status ls;

		if (de->d_name[0] == '.')
			continue;
		/* Every file counts toward the bound, junk too: the work stays bounded. */
		if (scanned++ == SC_QUEUE_LIST_MAX) {
			too_many = 1;
			break;
		}
		if (!sc_queue_id_valid(de->d_name)) {
			warnf(q, "%s/submissions/%s/%s: not a submission id, ignored",
			      q->state_dir, dir_names[d], de->d_name);
			continue;
		}
		ls = load(q, d, de->d_name, &s, NULL, 1);
		if (ls == SC_ERR_NOT_FOUND)
			continue; /* decided meanwhile */
		if (ls != SC_OK) {
			warnf(q, "%s/submissions/%s/%s: unreadable entry: %s", q->state_dir,
			      dir_names[d], de->d_name, sc_strerror(ls));
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct sc_submission *nv = realloc(v, ncap * sizeof *v);

			if (!nv) {
				st = SC_ERR_NOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = s;
	}
	closedir(dir);
	if (st == SC_OK) {
		if (n)
			qsort(v, n, sizeof *v, cmp_sub);
		for (size_t i = 0; i < n && st == SC_OK; i++)
			st = fn(arg, &v[i]);
	}
	free(v);
	if (st == SC_OK && too_many)
		st = SC_ERR_TOO_MANY;
	return st;
}

/* ---- decide ---- */

/* After the claim: write the decision into the entry (best effort, see caller). */
static sc_status record_decision(struct qdir *q, int d, const char *id, const char *reason,
				 struct sc_submission *s)
{
	char *data = NULL, *out = NULL, tmpname[SC_QUEUE_ID_LEN + 8];
	size_t len, body, hlen;
	sc_status st;

	SC_TRY(read_entry(q->dfd[d], id, SC_QUEUE_ENTRY_MAX, &data, &len));
	st = len > SC_QUEUE_ENTRY_MAX ? SC_ERR_TOO_LONG
				      : sc_queue_entry_decode(data, len, 0, s, &body);
	if (st == SC_OK && strcmp(s->id, id))
		st = SC_ERR_MISMATCH;
	if (st == SC_OK) {
		s->decided = (int64_t)time(NULL);
		sc_queue_copy_text(s->reason, sizeof s->reason, reason);
		out = malloc(SC_QUEUE_HEADER_MAX + (len - body));
		st = out ? sc_queue_entry_header(s, out, SC_QUEUE_HEADER_MAX, &hlen) : SC_ERR_NOMEM;
	}
	if (st == SC_OK) {
		memcpy(out + hlen, data + body, len - body);
		snprintf(tmpname, sizeof tmpname, "%s.decide", id);
		(void)unlinkat(q->dfd[D_TMP], tmpname, 0); /* a crashed earlier attempt */
		st = write_tmp(q, tmpname, out, hlen + len - body);
	}
	if (st == SC_OK) {
		if (renameat(q->dfd[D_TMP], tmpname, q->dfd[d], id) != 0) {
			st = errno_status(errno);
			(void)unlinkat(q->dfd[D_TMP], tmpname, 0);
		} else {
			st = fsync_fd(q->dfd[d]);
		}
	}
	free(out);
	free(data);
	return st;
}

static sc_status qdir_decide(sc_queue *base, const char *id, int accept, const char *reason,
			     const char *actor)
{
	struct qdir *q = qdir_of(base);
	int d = accept ? D_ACCEPTED : D_REJECTED;
	struct sc_submission s;
	sc_status st;

	/* The claim: one atomic rename; of two deciders the second finds nothing. */
	if (renameat2(q->dfd[D_PENDING], id, q->dfd[d], id, RENAME_NOREPLACE) != 0 &&
	    (errno != EINVAL || renameat(q->dfd[D_PENDING], id, q->dfd[d], id) != 0)) {
		if (errno == EEXIST)
			return SC_ERR_EXISTS;
		if (errno != ENOENT)
			return errno_status(errno);
		return exists_in(q, D_ACCEPTED, id) || exists_in(q, D_REJECTED, id)
			       ? SC_ERR_EXISTS
			       : SC_ERR_NOT_FOUND;
	}
	if (fsync_fd(q->dfd[d]) != SC_OK || fsync_fd(q->dfd[D_PENDING]) != SC_OK)
		return SC_ERR_IO;
	/*
	 * The decision stands from the rename on; a header that cannot be rewritten
	 * (an entry damaged on disk can still be rejected) only loses the time and
	 * reason in the file: the audit line keeps them.
	 */
	st = record_decision(q, d, id, reason, &s);
	if (st != SC_OK) {
		warnf(q, "%s/submissions/%s/%s: decision not written into the entry: %s",
		      q->state_dir, dir_names[d], id, sc_strerror(st));
		memset(&s, 0, sizeof s);
	}
	if (qdir_audit(base, actor ? actor : "-", accept ? "accept" : "reject", id,
		       s.address[0] ? s.address : "-", reason) != SC_OK)
		warnf(q, "%s/audit.log: cannot append: %s", q->state_dir, strerror(errno));
	return SC_OK;
}

static const struct sc_queue_ops qdir_ops = {
	.add = qdir_add,
	.get = qdir_get,
	.list = qdir_list,
	.decide = qdir_decide,
	.audit = qdir_audit,
	.close = qdir_close,
};
