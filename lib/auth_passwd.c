/*
 * auth_passwd.c - the passwd: credential source: a file of lines
 * "user@domain:crypt-hash" (blank lines and '#' comments allowed), checked with
 * libcrypt's crypt_rn (yescrypt, sha512-crypt, bcrypt: whatever it knows).
 * Owns the parsed table, which is re-read when the file's inode, size or
 * modification time changes. Runs in smtpcertd's worker threads: the table is
 * guarded by a mutex, hashing runs outside it.
 *
 * User names are compared by their address lookup key (sc_addr_key: domain and
 * ASCII letters of the local part folded), so "Alice@Example.TEST" logs in as
 * "alice@example.test" the way CERT looks her up.
 */
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth_int.h"
#include "smtpcert/addr.h"

/* Bounds on what the file may make us hold. */
#define PASSWD_FILE_MAX (16L * 1024 * 1024)
#define PASSWD_LINE_MAX 1024
#define PASSWD_HASH_MAX 512

/* Hashed for unknown users so that a wrong name costs as much time as a wrong
 * password (sha512-crypt of a random string; used only when the file is empty). */
static const char passwd_dummy_hash[] =
	"$6$Ixo3DbGbUzXb0Ejr$OaDOtgRLHyEPirZVVAYfUQGlyybJW9PYO62YDFIURG5UZVFVkqhYGhwlKv33Ajz1k7JfiYycpW2VVHvu//etA0";

struct passwd_entry {
	char *key;      /* sc_addr_key of the user */
	char *user;     /* as written in the file */
	char *hash;
};

struct passwd_state {
	pthread_mutex_t mu;
	char *path;
	struct passwd_entry *v;
	size_t n;
	/* identity of the file the table was read from */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int loaded;
};

static void passwd_free_table(struct passwd_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].user);
		free(v[i].hash);
	}
	free(v);
}

static int passwd_cmp(const void *a, const void *b)
{
	return strcmp(((const struct passwd_entry *)a)->key, ((const struct passwd_entry *)b)->key);
}

/* The lookup key of @p user, or SC_ERR_SYNTAX when it is not an address. */
static sc_status passwd_key(const char *user, size_t len, char *key, size_t keysize)
{
	struct sc_addr a;

	SC_TRY(sc_addr_parse(user, len, SC_ADDR_UTF8, &a, NULL));
	return sc_addr_key(&a, key, keysize, NULL);
}

/* Parse one line (without its newline) into @p e. @return SC_OK, SC_AGAIN for
 * a blank or comment line, or an error with a reason in @p why. */
static sc_status passwd_parse_line(char *line, size_t len, struct passwd_entry *e,
				   const char **why)
{
	char key[SC_ADDR_KEY_MAX];
	char *at, *colon, *hash;
	size_t i = 0;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] == '#')
		return SC_AGAIN;
	while (len > i && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
		len--;
	line[len] = '\0';
	line += i;
	len -= i;
	if (memchr(line, '\0', len)) {
		*why = "NUL byte";
		return SC_ERR_SYNTAX;
	}
	/* the hash follows the first ':' after the domain's '@' (a quoted local part
	 * may hold a ':', a domain never does) */
	at = strrchr(line, '@');
	colon = strchr(at ? at : line, ':');
	if (!at || !colon) {
		*why = "expected user@domain:hash";
		return SC_ERR_SYNTAX;
	}
	*colon = '\0';
	hash = colon + 1;
	if (passwd_key(line, (size_t)(colon - line), key, sizeof key) != SC_OK) {
		*why = "user is not an address";
		return SC_ERR_SYNTAX;
	}
	if (!*hash || strlen(hash) > PASSWD_HASH_MAX || strchr(hash, ':')) {
		*why = "missing or malformed hash";
		return SC_ERR_SYNTAX;
	}
	e->key = strdup(key);
	e->user = strdup(line);
	e->hash = strdup(hash);
	if (!e->key || !e->user || !e->hash) {
		free(e->key);
		free(e->user);
		free(e->hash);
		return SC_ERR_NOMEM;
	}
	return SC_OK;
}

/* Read the whole file into a new table. */
static sc_status passwd_read(const char *path, struct stat *st, struct passwd_entry **out,
			     size_t *nout, char *err, size_t errlen)
{
	struct passwd_entry *v = NULL;
	size_t n = 0, cap = 0;
	unsigned long lineno = 0;
	char *line = NULL;
	size_t cap_line = 0;
	ssize_t got;
	sc_status rc = SC_OK;
	FILE *f = fopen(path, "re");

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? SC_ERR_NOT_FOUND : SC_ERR_IO;
	}
	if (fstat(fileno(f), st) != 0 || !S_ISREG(st->st_mode) || st->st_size > PASSWD_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %ld bytes", path,
			 PASSWD_FILE_MAX);
		fclose(f);
		return SC_ERR_IO;
	}
	/* getline: the file size is bounded, and embedded NULs are seen */
	while ((got = getline(&line, &cap_line, f)) > 0) {
		size_t len = (size_t)got;
		struct passwd_entry e;
		const char *why = NULL;
		sc_status lr;

		lineno++;
		if (line[len - 1] == '\n')
			len--;
		if (len > PASSWD_LINE_MAX) {
			snprintf(err, errlen, "%s:%lu: line longer than %d bytes", path, lineno,
				 PASSWD_LINE_MAX);
			rc = SC_ERR_TOO_LONG;
			break;
		}
		memset(&e, 0, sizeof e);
		lr = passwd_parse_line(line, len, &e, &why);
		if (lr == SC_AGAIN)
			continue;
		if (lr != SC_OK) {
			snprintf(err, errlen, "%s:%lu: %s", path, lineno, why ? why : "no memory");
			rc = lr;
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct passwd_entry *nv = realloc(v, ncap * sizeof *nv);

			if (!nv) {
				free(e.key);
				free(e.user);
				free(e.hash);
				rc = SC_ERR_NOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = e;
	}
	if (rc == SC_OK && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = SC_ERR_IO;
	}
	fclose(f);
	free(line);
	if (rc != SC_OK) {
		passwd_free_table(v, n);
		return rc;
	}
	if (n > 1)
		qsort(v, n, sizeof *v, passwd_cmp);
	for (size_t i = 1; i < n; i++) {
		if (!strcmp(v[i - 1].key, v[i].key)) {
			snprintf(err, errlen, "%s: %s listed twice", path, v[i].key);
			passwd_free_table(v, n);
			return SC_ERR_EXISTS;
		}
	}
	*out = v;
	*nout = n;
	return SC_OK;
}

/* Re-read the file when it changed (caller holds the mutex). */
static sc_status passwd_refresh(struct passwd_state *ps, char *err, size_t errlen)
{
	struct passwd_entry *v = NULL;
	struct stat st;
	size_t n = 0;

	if (ps->loaded && stat(ps->path, &st) == 0 && st.st_dev == ps->dev &&
	    st.st_ino == ps->ino && st.st_size == ps->size &&
	    st.st_mtim.tv_sec == ps->mtime.tv_sec && st.st_mtim.tv_nsec == ps->mtime.tv_nsec)
		return SC_OK;
	SC_TRY(passwd_read(ps->path, &st, &v, &n, err, errlen));
	passwd_free_table(ps->v, ps->n);
	ps->v = v;
	ps->n = n;
	ps->dev = st.st_dev;
	ps->ino = st.st_ino;
	ps->size = st.st_size;
	ps->mtime = st.st_mtim;
	ps->loaded = 1;
	return SC_OK;
}

static sc_status passwd_open(const char *arg, void **state, char *err, size_t errlen)
{
	struct passwd_state *ps = calloc(1, sizeof *ps);
	sc_status rc;

	if (!ps)
		return SC_ERR_NOMEM;
	ps->path = strdup(arg);
	if (!ps->path) {
		free(ps);
		return SC_ERR_NOMEM;
	}
	pthread_mutex_init(&ps->mu, NULL);
	/* a broken file is a configuration error at startup and reload */
	rc = passwd_refresh(ps, err, errlen);
	if (rc != SC_OK) {
		pthread_mutex_destroy(&ps->mu);
		free(ps->path);
		free(ps);
		return rc == SC_ERR_NOMEM ? rc : SC_ERR_CONFIG;
	}
	*state = ps;
	return SC_OK;
}

static void passwd_close(void *state)
{
	struct passwd_state *ps = state;

	passwd_free_table(ps->v, ps->n);
	pthread_mutex_destroy(&ps->mu);
	free(ps->path);
	free(ps);
}

static sc_status passwd_verify(void *state, const char *user, const char *password,
			       const char *remote_ip, int timeout_ms, char *canon, size_t canonlen)
{
	struct passwd_state *ps = state;
	char key[SC_ADDR_KEY_MAX], hash[PASSWD_HASH_MAX + 1], canon_buf[PASSWD_LINE_MAX + 1];
	struct crypt_data *cd;
	const char *out;
	char err[256];
	int known = 0, ok;
	sc_status rc;

	pthread_mutex_lock(&ps->mu);
	/* a file that became unreadable or invalid fails closed: 454, not the
	 * stale table (a removed user must not keep working) */
	rc = passwd_refresh(ps, err, sizeof err);
	if (rc != SC_OK) {
		pthread_mutex_unlock(&ps->mu);
		return rc == SC_ERR_NOMEM ? rc : SC_ERR_TEMP;
	}
	snprintf(hash, sizeof hash, "%s", ps->n ? ps->v[0].hash : passwd_dummy_hash);
	if (passwd_key(user, strlen(user), key, sizeof key) == SC_OK) {
		struct passwd_entry probe = { .key = key };
		struct passwd_entry *e = ps->n ? bsearch(&probe, ps->v, ps->n, sizeof *ps->v,
							 passwd_cmp) : NULL;

		if (e) {
			known = 1;
			snprintf(hash, sizeof hash, "%s", e->hash);
			snprintf(canon_buf, sizeof canon_buf, "%s", e->user);
		}
	}
	pthread_mutex_unlock(&ps->mu);

	/* unknown users hash against a real entry's setting too (same cost) */
	cd = calloc(1, sizeof *cd);
	if (!cd)
		return SC_ERR_NOMEM;
	out = crypt_rn(password, hash, cd, (int)sizeof *cd);
	ok = out && out[0] != '*' && sc_auth_equal_ct(out, hash);
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	if (!ok || !known)
		return SC_ERR_REJECTED;
	if (canon && canonlen)
		snprintf(canon, canonlen, "%s", canon_buf);
	return SC_OK;
}

const struct sc_auth_source sc_auth_passwd_source = {
	.scheme = "passwd",
	.open = passwd_open,
	.close = passwd_close,
	.verify = passwd_verify,
};
