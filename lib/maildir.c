/*
 * maildir.c - local delivery into a Maildir (the `delivery =
 * maildir:/base/%d/%n` key): template expansion with Dovecot's variables, the
 * Maildir created on demand, and the delivery protocol of the Maildir
 * specification (write tmp/<unique>, fsync, link into new/, fsync new/), so a
 * reader never sees a partial message and a crash never loses an acknowledged one.
 * The content comes from a buffer (notices), from a file streamed with pread
 * (received mail, sc_maildir_deliver_fd) or from a caller's writer (an S/MIME
 * encryption at rest streaming into tmp/).
 * Runs in the daemon (received mail and postmaster notices, from worker threads:
 * no shared state but an atomic counter) and in `smtpcert admin` (decision
 * notices to submitters).
 *
 * The expansions come from addresses a peer chose: a value containing '/' or
 * starting with '.' (which could climb out of the base with "..") is refused, and
 * so is an empty one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "smtpcert/smtpcert.h"
#include "errmsg.h"

struct owner {
	int set;
	uid_t uid;
	gid_t gid;
};

/* Expand one variable value into @p path. @return 0, or -1 when unsafe / too long. */
static int put_var(char *path, size_t size, size_t *off, const char *v, size_t n)
{
	if (n == 0 || v[0] == '.' || memchr(v, '/', n))
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return -1;
	if (n >= size - *off)
		return -1;
	memcpy(path + *off, v, n);
	*off += n;
	path[*off] = '\0';
	return 0;
}

/*
 * "%u" user@domain (the lookup key), "%n" its local part, "%d" its domain, "%%" a
 * percent sign, as in Dovecot's mail_location.
 * @return SC_OK, SC_ERR_CONFIG (bad template), SC_ERR_SYNTAX (unsafe value),
 *         SC_ERR_TOO_LONG.
 */
static sc_status expand(const char *tpl, const struct sc_addr *rcpt, char *path, size_t size,
			char *err, size_t errlen)
{
	char key[SC_ADDR_KEY_MAX];
	const char *at;
	size_t off = 0, klen;

	if (sc_addr_key(rcpt, key, sizeof key, &klen) != SC_OK || !(at = strrchr(key, '@')))
		return sc_fail(err, errlen, SC_ERR_SYNTAX, "not a mail address");
	path[0] = '\0';
	for (const char *p = tpl; *p; p++) {
		int bad = 0;

		if (*p != '%') {
			if (off + 1 >= size)
				return SC_ERR_TOO_LONG;
			path[off++] = *p;
			path[off] = '\0';
			continue;
		}
		switch (*++p) {
		case '%':
			if (off + 1 >= size)
				return SC_ERR_TOO_LONG;
			path[off++] = '%';
			path[off] = '\0';
			break;
		case 'u': bad = put_var(path, size, &off, key, klen); break;
		case 'n': bad = put_var(path, size, &off, key, (size_t)(at - key)); break;
		case 'd': bad = put_var(path, size, &off, at + 1, strlen(at + 1)); break;
		default:
			return sc_fail(err, errlen, SC_ERR_CONFIG,
				    "delivery maildir:%s: unknown variable %%%s (use %%u, %%n, "
				    "%%d or %%%%)",
				    tpl, *p ? (char[]){ *p, '\0' } : "");
		}
		if (bad)
			return sc_fail(err, errlen, SC_ERR_SYNTAX,
				    "delivery for %s: the address cannot be a path component in "
				    "maildir:%s",
				    key, tpl);
	}
	return SC_OK;
}

static void give(const struct owner *ow, const char *path)
{
	if (ow->set && chown(path, ow->uid, ow->gid) != 0) {
		/* best effort: the mail reader reports what it cannot open */
	}
}

/* fsync the directory holding @p path (a just-created entry). @return 0 or -1. */
static int sync_parent(char *path)
{
	char *slash = strrchr(path, '/');
	int fd, rc;

	if (!slash)
		return 0;
	if (slash == path) {
		fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		*slash = '\0';
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		*slash = '/';
	}
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * mkdir -p with mode 0700. Created directories get the owner of the deepest
 * directory that already existed when running as root (the mail store's owner, not
 * root, must read them).
 */
static int mkdirs(char *path, struct owner *ow)
{
	struct stat st;
	char *p = path + 1;

	for (;;) {
		char *slash = strchr(p, '/');
		int last = slash == NULL;

		if (slash)
			*slash = '\0';
		if (*path && stat(path, &st) == 0) {
			if (!S_ISDIR(st.st_mode)) {
				if (slash)
					*slash = '/';
				errno = ENOTDIR;
				return -1;
			}
			if (!ow->set && geteuid() == 0) {
				ow->uid = st.st_uid;
				ow->gid = st.st_gid;
			}
		} else if (mkdir(path, 0700) == 0) {
			if (geteuid() == 0 && ow->uid != 0)
				ow->set = 1;
			give(ow, path);
			/* the new name must survive a power loss too, or a message
			 * acknowledged in it would vanish with the directory */
			if (sync_parent(path) != 0) {
				if (slash)
					*slash = '/';
				return -1;
			}
		} else if (errno != EEXIST) {
			if (slash)
				*slash = '/';
			return -1;
		}
		if (last)
			return 0;
		*slash = '/';
		p = slash + 1;
		while (*p == '/')
			p++;
		if (!*p)
			return 0;
	}
}

/* The Maildir's directories must all be there: a root-run admin CLI may chown. */
static int maildir_dirs(const char *base, struct owner *ow)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	char p[PATH_MAX];

	for (size_t i = 0; i < 3; i++) {
		if ((size_t)snprintf(p, sizeof p, "%s/%s", base, sub[i]) >= sizeof p) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (mkdirs(p, ow) != 0)
			return -1;
	}
	return 0;
}

/* The host part of a unique name: '/' and ':' encoded as the Maildir spec says. */
static void host_part(char *buf, size_t size)
{
	char h[256];
	size_t o = 0;

	if (gethostname(h, sizeof h) != 0)
		snprintf(h, sizeof h, "localhost");
	h[sizeof h - 1] = '\0';
	for (const char *p = h; *p && o + 5 < size; p++) {
		if (*p == '/' || *p == ':')
			o += (size_t)snprintf(buf + o, size - o, "\\%03o", (unsigned char)*p);
		else
			buf[o++] = *p;
	}
	buf[o] = '\0';
}

static sc_status write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return SC_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return SC_OK;
}

/*
 * Mail in a Maildir is in the local format: LF line ends, so CRLF becomes LF.
 * Streaming: a CR that ends one chunk is held until the next octet shows
 * whether it starts a CRLF (@p cr carries it between calls); @p final flushes it.
 */
static sc_status write_lf(int fd, const char *msg, size_t len, int *cr, int final)
{
	char buf[8192];
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (*cr) {
			*cr = 0;
			if (msg[i] != '\n')
				buf[o++] = '\r';
		}
		if (msg[i] == '\r')
			*cr = 1;
		else
			buf[o++] = msg[i];
		if (o >= sizeof buf - 1) {
			SC_TRY(write_all(fd, buf, o));
			o = 0;
		}
	}
	if (final && *cr) {
		*cr = 0;
		buf[o++] = '\r';
	}
	return write_all(fd, buf, o);
}

struct buf_src {
	const char *msg;
	size_t len;
};

static sc_status buf_writer(int out, void *arg, char *err, size_t errlen)
{
	const struct buf_src *b = arg;
	int cr = 0;

	if (write_lf(out, b->msg, b->len, &cr, 1) != SC_OK)
		return sc_fail(err, errlen, SC_ERR_IO, "cannot write: %s", strerror(errno));
	return SC_OK;
}

struct fd_src {
	int fd;
	uint64_t size;
};

/* pread from offset 0: the file position is not ours (one fd, many copies). */
static sc_status fd_writer(int out, void *arg, char *err, size_t errlen)
{
	const struct fd_src *f = arg;
	char buf[65536];
	uint64_t off = 0;
	int cr = 0;

	while (off < f->size) {
		size_t want = f->size - off < sizeof buf ? (size_t)(f->size - off) : sizeof buf;
		ssize_t n = pread(f->fd, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_fail(err, errlen, SC_ERR_IO, "cannot read the message: %s",
				    strerror(errno));
		if (n == 0)
			return sc_fail(err, errlen, SC_ERR_IO,
				    "the message is shorter than announced (%llu of %llu octets)",
				    (unsigned long long)off, (unsigned long long)f->size);
		if (write_lf(out, buf, (size_t)n, &cr, 0) != SC_OK)
			return sc_fail(err, errlen, SC_ERR_IO, "cannot write: %s", strerror(errno));
		off += (uint64_t)n;
	}
	if (write_lf(out, NULL, 0, &cr, 1) != SC_OK)
		return sc_fail(err, errlen, SC_ERR_IO, "cannot write: %s", strerror(errno));
	return SC_OK;
}

static sc_status fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return SC_ERR_IO;
	rc = fsync(fd);
	close(fd);
	return rc == 0 ? SC_OK : SC_ERR_IO;
}

sc_status sc_maildir_deliver_with(const char *delivery, const struct sc_addr *rcpt,
				  sc_maildir_writer writer, void *arg, char *err, size_t errlen)
{
	static unsigned counter;
	char base[PATH_MAX], host[600], name[800], tmp[PATH_MAX + 1000], dst[PATH_MAX + 1000],
	     newdir[PATH_MAX + 8];
	struct owner ow = { 0 };
	struct timeval tv;
	sc_status st;
	int fd = -1;

	SC_ENSURE_ARG(delivery && rcpt && writer);
	if (err && errlen)
		err[0] = '\0';
	if (strncmp(delivery, "maildir:", 8) || delivery[8] != '/')
		return sc_fail(err, errlen, SC_ERR_CONFIG,
			    "delivery %s: only maildir:/absolute/path is supported here", delivery);
	SC_TRY(expand(delivery + 8, rcpt, base, sizeof base, err, errlen));
	if (maildir_dirs(base, &ow) != 0)
		return sc_fail(err, errlen, SC_ERR_IO, "%s: cannot create the Maildir: %s", base,
			    strerror(errno));
	host_part(host, sizeof host);
	snprintf(newdir, sizeof newdir, "%s/new", base);
	/* Maildir unique names: time.M<usec>P<pid>Q<counter>.host; link() never replaces. */
	for (int tries = 0; tries < 16; tries++) {
		gettimeofday(&tv, NULL);
		/* Atomic: the daemon delivers from worker threads. */
		snprintf(name, sizeof name, "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec,
			 (long)tv.tv_usec, (long)getpid(),
			 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), host);
		snprintf(tmp, sizeof tmp, "%s/tmp/%s", base, name);
		snprintf(dst, sizeof dst, "%s/new/%s", base, name);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return sc_fail(err, errlen, SC_ERR_IO, "%s: %s", tmp, strerror(errno));
		if (ow.set && fchown(fd, ow.uid, ow.gid) != 0) {
			/* best effort, as for the directories */
		}
		st = writer(fd, arg, err, errlen);
		if (st != SC_OK) {
			close(fd);
			unlink(tmp);
			if (err && errlen && !err[0])
				sc_fail(err, errlen, st, "%s: %s", tmp, sc_strerror(st));
			return st;
		}
		if (fsync(fd) != 0)
			st = SC_ERR_IO;
		if (close(fd) != 0 && st == SC_OK)
			st = SC_ERR_IO;
		if (st != SC_OK) {
			int e = errno;

			unlink(tmp);
			return sc_fail(err, errlen, st, "%s: cannot write: %s", tmp, strerror(e));
		}
		if (link(tmp, dst) != 0) {
			int e = errno;

			unlink(tmp);
			if (e == EEXIST)
				continue;
			return sc_fail(err, errlen, SC_ERR_IO, "%s: %s", dst, strerror(e));
		}
		unlink(tmp);
		if (fsync_path(newdir) != SC_OK) {
			int e = errno;

			/* not known to be durable: not delivered, so nothing stays in new/
			 * for the retry to duplicate */
			unlink(dst);
			return sc_fail(err, errlen, SC_ERR_IO, "%s: fsync: %s", newdir, strerror(e));
		}
		return SC_OK;
	}
	return sc_fail(err, errlen, SC_ERR_IO, "%s: no unique file name", newdir);
}

sc_status sc_maildir_deliver(const char *delivery, const struct sc_addr *rcpt,
			     const char *msg, size_t len, char *err, size_t errlen)
{
	struct buf_src b = { msg, len };

	SC_ENSURE_ARG(msg || len == 0);
	return sc_maildir_deliver_with(delivery, rcpt, buf_writer, &b, err, errlen);
}

sc_status sc_maildir_deliver_fd(const char *delivery, const struct sc_addr *rcpt, int fd,
				uint64_t size, char *err, size_t errlen)
{
	struct fd_src f = { fd, size };

	SC_ENSURE_ARG(fd >= 0);
	return sc_maildir_deliver_with(delivery, rcpt, fd_writer, &f, err, errlen);
}
