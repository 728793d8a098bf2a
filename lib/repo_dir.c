/*
 * repo_dir.c - the dir: repository backend ("dir:/path"): a directory of PEM files
 * that an administrator can read and edit by hand.
 *
 *	<dir>/<name>.pem           leaf, then its chain toward the root (CERS order)
 *	<dir>/<name>.d/<any>.pem   further certificates of the same address; store
 *	                           names them <sha256-hex-of-leaf>.pem
 * <name> is the lookup key (sc_addr_key: lower-case, so "alice@example.test")
 * with every octet outside [A-Za-z0-9@._+-], '%' itself, and a leading '.' written
 * as %XX (upper-case hex). A key therefore never contains '/' or starts with '.'
 * once escaped, so it cannot name anything outside <dir>, and our temporary files
 * (".tmp-*") can never collide with an entry. A key whose escaped name would
 * exceed NAME_MAX cannot be stored (SC_ERR_TOO_LONG).
 *
 * Lookups read the files every time (no cache), so hand edits count at the next
 * lookup. One lookup opens the <name>.pem file and the .pem files of <name>.d, at
 * most SC_REPO_ENTRIES_MAX in all (the names that sort first), each at most
 * SC_CERT_INPUT_MAX bytes. A file that does not parse as certificates is skipped
 * and reported through sc_repo_set_warn(); a file that exists but cannot be read
 * makes the lookup fail with SC_ERR_TEMP (the daemon answers 451, not 550).
 * Writes: temporary file, fsync, rename, fsync of the directory: a concurrent
 * lookup sees the old file or the new one. Files are created 0644 (certificates
 * are public; the daemon may run as another user), a new <dir> 0700.
 * Runs in the daemon (lookups) and in the admin CLI (writes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_backend.h"
#include "smtpcert/pem.h"

/* Room for ".pem" / ".d" after an escaped key. */
#define ESC_MAX (NAME_MAX - 4)

struct dir_state {
	sc_repo *r;
	unsigned flags;
	char path[PATH_MAX];
	uint8_t buf[SC_CERT_INPUT_MAX + 1]; /* file contents while parsing */
};

static int safe_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '@' || ch == '.' || ch == '_' ||
	       ch == '+' || ch == '-';
}

/* Escaped file name stem of @p key. @return SC_OK or SC_ERR_TOO_LONG. */
static sc_status escape_key(const char *key, size_t keylen, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (size > ESC_MAX + 1)
		size = ESC_MAX + 1;
	for (size_t i = 0; i < keylen; i++) {
		unsigned char ch = (unsigned char)key[i];

		if (safe_char(ch) && !(i == 0 && ch == '.')) {
			if (o + 1 >= size)
				return SC_ERR_TOO_LONG;
			out[o++] = (char)ch;
		} else {
			if (o + 3 >= size)
				return SC_ERR_TOO_LONG;
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return keylen ? SC_OK : SC_ERR_ARG;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Key from a file name stem; only the canonical escaped form is accepted so that
 * every file lists under the one key that looks it up. @return 0 on success. */
static int unescape_name(const char *name, size_t len, char *out, size_t size)
{
	char check[ESC_MAX + 1];
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)name[i];

		if (ch == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = hexval(name[i + 1]);
			lo = hexval(name[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = hi << 4 | lo;
			i += 2;
		}
		if (ch == 0 || o + 1 >= size)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	if (o == 0 || escape_key(out, o, check, sizeof check) != SC_OK ||
	    strlen(check) != len || memcmp(check, name, len))
		return -1;
	return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && !memcmp(s + n - m, suffix, m);
}

/* Format a path into a PATH_MAX buffer. dir_open() bounds the root so that every
 * path built from it fits; @return 0, or -1 (ENAMETOOLONG) if one ever does not. */
static int mkpath(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int mkpath(char *out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * Read and parse one file. @return SC_OK; SC_ERR_NOT_FOUND (no such file);
 * SC_ERR_SYNTAX (exists but is not a certificate file: reported, caller skips);
 * SC_ERR_TEMP (cannot be read).
 */
static sc_status load_file(struct dir_state *s, const char *path, sc_cert **out,
			   int64_t *mtime)
{
	struct stat st;
	size_t n = 0;
	sc_status rc;
	int fd;

	*out = NULL;
	/* O_NONBLOCK: a FIFO put here by mistake must not hang the daemon. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return SC_ERR_NOT_FOUND;
		/* ENOTDIR: the store itself was replaced by a file; EACCES, EIO: the
		 * certificate may exist. Either way not an answer of "none". */
		sc_repo_warn(s->r, "dir:%s: %s", path, strerror(errno));
		return SC_ERR_TEMP;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > SC_CERT_INPUT_MAX) {
		close(fd);
		sc_repo_warn(s->r, "dir:%s: not a regular file of at most %d bytes, skipped",
			     path, SC_CERT_INPUT_MAX);
		return SC_ERR_SYNTAX;
	}
	*mtime = (int64_t)st.st_mtime;
	while (n < sizeof s->buf) {
		ssize_t r = read(fd, s->buf + n, sizeof s->buf - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			sc_repo_warn(s->r, "dir:%s: %s", path, strerror(errno));
			close(fd);
			return SC_ERR_TEMP;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	rc = n > SC_CERT_INPUT_MAX ? SC_ERR_TOO_LONG : sc_cert_parse(s->buf, n, out);
	if (rc != SC_OK) {
		sc_repo_warn(s->r, "dir:%s: not a certificate file (%s), skipped", path,
			     sc_strerror(rc));
		return SC_ERR_SYNTAX;
	}
	return SC_OK;
}

/* The .pem names of a <name>.d directory: the SC_REPO_ENTRIES_MAX - 1 that sort
 * first, so the choice does not depend on readdir order. */
struct names {
	char name[SC_REPO_ENTRIES_MAX - 1][NAME_MAX + 1];
	size_t n;
	size_t skipped;
};

static void names_add(struct names *ns, const char *name)
{
	size_t i, cap = sizeof ns->name / sizeof ns->name[0];

	if (ns->n == cap && strcmp(name, ns->name[cap - 1]) >= 0) {
		ns->skipped++;
		return;
	}
	if (ns->n == cap) {
		ns->skipped++;
		ns->n--;
	}
	for (i = ns->n; i > 0 && strcmp(name, ns->name[i - 1]) < 0; i--)
		memcpy(ns->name[i], ns->name[i - 1], sizeof ns->name[i]);
	snprintf(ns->name[i], sizeof ns->name[i], "%s", name);
	ns->n++;
}

/* @return SC_OK (also when the directory does not exist) or SC_ERR_TEMP. */
static sc_status read_names(struct dir_state *s, const char *dpath, struct names *ns)
{
	DIR *d = opendir(dpath);
	struct dirent *de;

	ns->n = ns->skipped = 0;
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return SC_OK;
		sc_repo_warn(s->r, "dir:%s: %s", dpath, strerror(errno));
		return SC_ERR_TEMP;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && has_suffix(de->d_name, ".pem"))
			names_add(ns, de->d_name);
	closedir(d);
	if (ns->skipped)
		sc_repo_warn(s->r, "dir:%s: more than %d certificates, %zu ignored", dpath,
			     SC_REPO_ENTRIES_MAX, ns->skipped);
	return SC_OK;
}

/* Is the repository directory still there? Checked when a lookup finds nothing,
 * so that a store moved away or replaced answers 451, not 550 (INTERFACE.md). */
static int root_ok(struct dir_state *s)
{
	struct stat st;

	if (stat(s->path, &st) == 0 && S_ISDIR(st.st_mode))
		return 1;
	sc_repo_warn(s->r, "dir:%s: repository directory unavailable", s->path);
	return 0;
}

static sc_status dir_lookup(void *state, const char *key, size_t keylen,
			    sc_repo_entry_fn visit, void *arg)
{
	struct dir_state *s = state;
	char esc[ESC_MAX + 1], path[PATH_MAX];
	sc_cert *certs[SC_REPO_ENTRIES_MAX];
	int64_t mtimes[SC_REPO_ENTRIES_MAX];
	struct names *ns;
	size_t n = 0;
	sc_status st;

	if (escape_key(key, keylen, esc, sizeof esc) != SC_OK)
		return visit(arg, NULL); /* no file can have that name */
	ns = malloc(sizeof *ns);
	if (!ns)
		return SC_ERR_NOMEM;
	st = mkpath(path, "%s/%s.pem", s->path, esc) ? SC_ERR_NOT_FOUND
		: load_file(s, path, &certs[n], &mtimes[n]);
	if (st == SC_OK)
		n++;
	else if (st == SC_ERR_TEMP)
		goto out;
	st = mkpath(path, "%s/%s.d", s->path, esc) ? SC_OK : read_names(s, path, ns);
	for (size_t i = 0; st == SC_OK && i < ns->n; i++) {
		if (mkpath(path, "%s/%s.d/%s", s->path, esc, ns->name[i]))
			continue;
		st = load_file(s, path, &certs[n], &mtimes[n]);
		if (st == SC_OK)
			n++;
		else if (st != SC_ERR_TEMP)
			st = SC_OK; /* missing (raced with a remove) or junk: skip */
	}
	if (st == SC_OK && n == 0 && !root_ok(s)) {
		st = SC_ERR_TEMP; /* a vanished store is not "no certificate" */
		goto out;
	}
	for (size_t i = 0; st == SC_OK && i < n; i++) {
		struct sc_repo_entry e;

		sc_repo_entry_from_cert(certs[i], &e);
		e.key = key;
		e.key_len = keylen;
		e.added = mtimes[i];
		st = visit(arg, &e);
	}
	if (st == SC_OK)
		st = visit(arg, NULL); /* certificates are freed only below */
out:
	for (size_t i = 0; i < n; i++)
		sc_cert_free(certs[i]);
	free(ns);
	return st;
}

static sc_status fsync_dir(const char *dpath)
{
	int fd = open(dpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return SC_ERR_IO;
	rc = fsync(fd);
	close(fd);
	return rc == 0 ? SC_OK : SC_ERR_IO;
}

/* Replace @p dpath/@p name atomically with @p len bytes of @p data. */
static sc_status write_atomic(struct dir_state *s, const char *dpath, const char *name,
			      const char *data, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	size_t off = 0;
	int fd;

	if (mkpath(tmp, "%s/.tmp-XXXXXX", dpath) || mkpath(dst, "%s/%s", dpath, name))
		return SC_ERR_TOO_LONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		goto fail;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail_unlink;
		off += (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0)
		goto fail_unlink;
	if (close(fd) != 0) {
		fd = -1;
		goto fail_unlink;
	}
	fd = -1;
	if (rename(tmp, dst) != 0)
		goto fail_unlink;
	return fsync_dir(dpath);
fail_unlink:
	sc_repo_warn(s->r, "dir:%s: %s", dst, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return errno == EACCES || errno == EPERM || errno == EROFS ? SC_ERR_PERM : SC_ERR_IO;
fail:
	sc_repo_warn(s->r, "dir:%s: %s", dst, strerror(errno));
	return errno == EACCES || errno == EPERM || errno == EROFS ? SC_ERR_PERM : SC_ERR_IO;
}

/* PEM of leaf and chain, malloc'ed. */
static sc_status entry_pem(const struct sc_repo_entry *e, char **out, size_t *outlen)
{
	size_t size = 1, off = 0;
	char *pem;

	for (size_t i = 0; i < e->n_der; i++)
		size += sc_pem_encoded_size(e->der_len[i], "CERTIFICATE");
	pem = malloc(size);
	if (!pem)
		return SC_ERR_NOMEM;
	for (size_t i = 0; i < e->n_der; i++) {
		size_t n;
		sc_status st = sc_pem_encode(e->der[i], e->der_len[i], "CERTIFICATE",
					     pem + off, size - off, &n);

		if (st != SC_OK) {
			free(pem);
			return st;
		}
		off += n;
	}
	*out = pem;
	*outlen = off;
	return SC_OK;
}

/* Fingerprint of the file's leaf. @return SC_OK, SC_ERR_NOT_FOUND, SC_ERR_SYNTAX,
 * SC_ERR_TEMP as load_file(). */
static sc_status file_fingerprint(struct dir_state *s, const char *path, uint8_t fp[32])
{
	sc_cert *c;
	int64_t mtime;

	SC_TRY(load_file(s, path, &c, &mtime));
	sc_cert_fingerprint(c, fp);
	sc_cert_free(c);
	return SC_OK;
}

static int path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

struct count_ctx {
	size_t n;
};

static sc_status count_visit(void *arg, const struct sc_repo_entry *e)
{
	struct count_ctx *c = arg;

	if (e)
		c->n++;
	return SC_OK;
}

static sc_status dir_store(void *state, const char *key, size_t keylen,
			   const struct sc_repo_entry *e)
{
	struct dir_state *s = state;
	char esc[ESC_MAX + 1], hex[65], name[NAME_MAX + 1];
	char main_path[PATH_MAX], ddir[PATH_MAX], extra[PATH_MAX];
	uint8_t fp[32];
	struct count_ctx cnt = { 0 };
	char *pem;
	size_t pemlen;
	sc_status st, mst;

	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	SC_TRY(escape_key(key, keylen, esc, sizeof esc));
	sc_hex(e->fingerprint, 32, hex);
	if (mkpath(main_path, "%s/%s.pem", s->path, esc) ||
	    mkpath(ddir, "%s/%s.d", s->path, esc) || mkpath(extra, "%s/%s.pem", ddir, hex))
		return SC_ERR_TOO_LONG;

	mst = file_fingerprint(s, main_path, fp);
	if (mst == SC_ERR_TEMP)
		return SC_ERR_IO;
	if (!(mst == SC_OK && !memcmp(fp, e->fingerprint, 32)) && !path_exists(extra)) {
		/* A new entry: respect the per-address bound of every lookup. */
		SC_TRY(dir_lookup(s, key, keylen, count_visit, &cnt));
		SC_ENSURE(cnt.n < SC_REPO_ENTRIES_MAX, SC_ERR_TOO_MANY);
	}
	SC_TRY(entry_pem(e, &pem, &pemlen));
	if ((mst == SC_ERR_NOT_FOUND && !path_exists(extra)) ||
	    (mst == SC_OK && !memcmp(fp, e->fingerprint, 32))) {
		/* First certificate of the address, or the same leaf again. A junk
		 * main file (SC_ERR_SYNTAX) is the admin's: never overwritten. */
		snprintf(name, sizeof name, "%s.pem", esc);
		st = write_atomic(s, s->path, name, pem, pemlen);
	} else {
		if (mkdir(ddir, 0755) != 0 && errno != EEXIST) {
			sc_repo_warn(s->r, "dir:%s: %s", ddir, strerror(errno));
			st = errno == EACCES ? SC_ERR_PERM : SC_ERR_IO;
		} else {
			snprintf(name, sizeof name, "%s.pem", hex);
			st = write_atomic(s, ddir, name, pem, pemlen);
			if (st == SC_OK)
				st = fsync_dir(s->path);
		}
	}
	free(pem);
	return st;
}

static sc_status unlink_counted(struct dir_state *s, const char *path, size_t *n)
{
	if (unlink(path) == 0) {
		(*n)++;
		return SC_OK;
	}
	if (errno == ENOENT)
		return SC_OK;
	sc_repo_warn(s->r, "dir:%s: %s", path, strerror(errno));
	return errno == EACCES || errno == EPERM || errno == EROFS ? SC_ERR_PERM : SC_ERR_IO;
}

static sc_status dir_remove(void *state, const char *key, size_t keylen,
			    const uint8_t *fingerprint, size_t *removed)
{
	struct dir_state *s = state;
	char esc[ESC_MAX + 1], path[PATH_MAX], ddir[PATH_MAX];
	uint8_t fp[32];
	DIR *d;
	struct dirent *de;
	sc_status st = SC_OK;

	*removed = 0;
	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	if (escape_key(key, keylen, esc, sizeof esc) != SC_OK)
		return SC_OK;
	if (mkpath(path, "%s/%s.pem", s->path, esc) || mkpath(ddir, "%s/%s.d", s->path, esc))
		return SC_OK;
	if (!fingerprint || (file_fingerprint(s, path, fp) == SC_OK && !memcmp(fp, fingerprint, 32)))
		SC_TRY(unlink_counted(s, path, removed));
	/* Hand-placed files in .d may have any name: match on content. */
	d = opendir(ddir);
	while (d && st == SC_OK && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !has_suffix(de->d_name, ".pem"))
			continue;
		if (mkpath(path, "%s/%s", ddir, de->d_name))
			continue;
		if (!fingerprint || (file_fingerprint(s, path, fp) == SC_OK &&
				     !memcmp(fp, fingerprint, 32)))
			st = unlink_counted(s, path, removed);
	}
	if (d) {
		closedir(d);
		if (!fingerprint)
			(void)rmdir(ddir); /* fails harmlessly if other files remain */
		if (st == SC_OK)
			(void)fsync_dir(ddir);
	}
	if (st == SC_OK && *removed)
		st = fsync_dir(s->path);
	return st;
}

struct keylist {
	char **keys;
	size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static sc_status keylist_add(struct keylist *kl, const char *key)
{
	if (kl->n == kl->cap) {
		size_t cap = kl->cap ? kl->cap * 2 : 64;
		char **k = realloc(kl->keys, cap * sizeof *k);

		if (!k)
			return SC_ERR_NOMEM;
		kl->keys = k;
		kl->cap = cap;
	}
	kl->keys[kl->n] = strdup(key);
	if (!kl->keys[kl->n])
		return SC_ERR_NOMEM;
	kl->n++;
	return SC_OK;
}

struct list_ctx {
	sc_repo_entry_fn fn;
	void *arg;
};

static sc_status list_visit(void *arg, const struct sc_repo_entry *e)
{
	struct list_ctx *c = arg;

	return e ? c->fn(c->arg, e) : SC_OK;
}

static sc_status dir_list(void *state, sc_repo_entry_fn fn, void *arg)
{
	struct dir_state *s = state;
	struct keylist kl = { 0 };
	struct list_ctx lc = { fn, arg };
	DIR *d = opendir(s->path);
	struct dirent *de;
	sc_status st = SC_OK;

	if (!d) {
		sc_repo_warn(s->r, "dir:%s: %s", s->path, strerror(errno));
		return SC_ERR_TEMP;
	}
	while (st == SC_OK && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char key[SC_ADDR_KEY_MAX + 1];

		if (de->d_name[0] == '.')
			continue;
		if (has_suffix(de->d_name, ".pem"))
			len -= 4;
		else if (has_suffix(de->d_name, ".d"))
			len -= 2;
		else
			continue;
		if (unescape_name(de->d_name, len, key, sizeof key) != 0) {
			sc_repo_warn(s->r, "dir:%s/%s: name is not an escaped address key, "
				     "ignored", s->path, de->d_name);
			continue;
		}
		st = keylist_add(&kl, key);
	}
	closedir(d);
	if (st == SC_OK && kl.n)
		qsort(kl.keys, kl.n, sizeof kl.keys[0], cmp_str);
	for (size_t i = 0; st == SC_OK && i < kl.n; i++) {
		if (i > 0 && !strcmp(kl.keys[i], kl.keys[i - 1]))
			continue; /* both <key>.pem and <key>.d */
		st = dir_lookup(s, kl.keys[i], strlen(kl.keys[i]), list_visit, &lc);
	}
	for (size_t i = 0; i < kl.n; i++)
		free(kl.keys[i]);
	free(kl.keys);
	return st;
}

static sc_status dir_open(sc_repo *r, const char *path, unsigned flags, void **state,
			  char *err, size_t errlen)
{
	struct dir_state *s;
	struct stat st;

	/* Room below the root for "<escaped key>.d/<file name>". */
	if (strlen(path) >= PATH_MAX - 2 * NAME_MAX - 8) {
		snprintf(err, errlen, "dir:%s: path too long", path);
		return SC_ERR_CONFIG;
	}
	if ((flags & SC_REPO_CREATE) && sc_repo_mkdirs(path, 0700) != 0) {
		snprintf(err, errlen, "dir:%s: cannot create: %s", path, strerror(errno));
		return errno == EACCES || errno == EPERM || errno == EROFS ? SC_ERR_PERM
									   : SC_ERR_IO;
	}
	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "dir:%s: %s", path, strerror(errno));
		return errno == ENOENT ? SC_ERR_NOT_FOUND
		       : errno == EACCES ? SC_ERR_PERM : SC_ERR_IO;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "dir:%s: not a directory", path);
		return SC_ERR_CONFIG;
	}
	s = malloc(sizeof *s);
	if (!s)
		return SC_ERR_NOMEM;
	s->r = r;
	s->flags = flags;
	memcpy(s->path, path, strlen(path) + 1);
	*state = s;
	return SC_OK;
}

static void dir_close(void *state)
{
	free(state);
}

const struct sc_repo_backend sc_repo_dir_backend = {
	.scheme = "dir",
	.open = dir_open,
	.close = dir_close,
	.lookup = dir_lookup,
	.store = dir_store,
	.remove = dir_remove,
	.list = dir_list,
};
