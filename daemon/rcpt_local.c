/*
 * rcpt_local.c - the set of listed local recipients (see rcpt_local.h). Owns
 * the sorted key arrays. Daemon process: built on the event loop by runtime.c;
 * RCPT TO (on the loop) reads it and re-reads the passwd: users when that file
 * changed, as the auth source does, so a new user receives mail as soon as
 * it can log in.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rcpt_local.h"

/* A sorted, unique array of lookup keys. */
struct rcpt_keys {
	char **keys;
	size_t n, cap;
};

struct rcpt_local {
	struct rcpt_keys listed;  /* the `recipients` file */
	struct rcpt_keys users;   /* the passwd: file */
	const sc_config *cfg;     /* the runtime's, which owns this set */
	char passwd[PATH_MAX];    /* "" without a passwd: file */
	struct stat pst;          /* the passwd file as last read */
	time_t checked;           /* last stat() of it */
};

static void rcpt_keys_free(struct rcpt_keys *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->keys[i]);
	free(r->keys);
	memset(r, 0, sizeof *r);
}

void rcpt_local_free(struct rcpt_local *r)
{
	if (!r)
		return;
	rcpt_keys_free(&r->listed);
	rcpt_keys_free(&r->users);
	free(r);
}

static sc_status rcpt_local_add(struct rcpt_keys *r, const char *key)
{
	char *k;

	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		char **v = realloc(r->keys, cap * sizeof *v);

		if (!v)
			return SC_ERR_NOMEM;
		r->keys = v;
		r->cap = cap;
	}
	k = strdup(key);
	if (!k)
		return SC_ERR_NOMEM;
	r->keys[r->n++] = k;
	return SC_OK;
}

static int rcpt_local_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort, then drop duplicates. */
static void rcpt_local_sort(struct rcpt_keys *r)
{
	size_t o = 0;

	if (r->n == 0)
		return;
	qsort(r->keys, r->n, sizeof *r->keys, rcpt_local_cmp);
	for (size_t i = 1; i < r->n; i++) {
		if (strcmp(r->keys[i], r->keys[o]) == 0)
			free(r->keys[i]);
		else
			r->keys[++o] = r->keys[i];
	}
	r->n = o + 1;
}

static int rcpt_keys_has(const struct rcpt_keys *r, const char *key)
{
	if (r->n == 0)
		return 0;
	return bsearch(&key, r->keys, r->n, sizeof *r->keys, rcpt_local_cmp) != NULL;
}

int rcpt_local_has(const struct rcpt_local *r, const char *key)
{
	return r && (rcpt_keys_has(&r->listed, key) || rcpt_keys_has(&r->users, key));
}

size_t rcpt_local_count(const struct rcpt_local *r)
{
	return r ? r->listed.n + r->users.n : 0;
}

/* Trim blanks and the line end in place. @return the trimmed start. */
static char *rcpt_local_trim(char *s, size_t *len)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (*s == ' ' || *s == '\t') {
		s++;
		n--;
	}
	*len = n;
	return s;
}

/* One file. @p passwd: "user@domain:hash" lines, foreign users skipped and
 * malformed lines left to the auth source to report; otherwise every line
 * must be an address of a served domain. */
static sc_status rcpt_local_read(struct rcpt_keys *r, const sc_config *cfg, const char *path,
				 const char *name, int passwd, struct stat *out_st, char *err,
				 size_t errlen)
{
	char line[RCPT_LOCAL_LINE_MAX + 2], key[SC_ADDR_KEY_MAX];
	unsigned lineno = 0;
	sc_status rc = SC_OK;
	struct stat st;
	FILE *f = fopen(path, "re");

	if (!f) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return SC_ERR_IO;
	}
	if (fstat(fileno(f), &st) != 0 || st.st_size > RCPT_LOCAL_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %ld octets", name, RCPT_LOCAL_FILE_MAX);
		fclose(f);
		return SC_ERR_TOO_LONG;
	}
	if (out_st)
		*out_st = st;
	while (rc == SC_OK && fgets(line, sizeof line, f)) {
		const char *why = NULL;
		struct sc_addr a;
		size_t len;
		char *s, *colon;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %d octets", name, lineno,
				 RCPT_LOCAL_LINE_MAX);
			rc = SC_ERR_TOO_LONG;
			break;
		}
		s = rcpt_local_trim(line, &len);
		if (len == 0 || s[0] == '#')
			continue;
		if (passwd) {
			colon = strchr(s, ':');
			if (!colon)
				continue;
			*colon = '\0';
			len = (size_t)(colon - s);
		}
		if (sc_addr_parse(s, len, SC_ADDR_UTF8, &a, &why) != SC_OK ||
		    sc_addr_key(&a, key, sizeof key, NULL) != SC_OK) {
			if (passwd)
				continue;
			snprintf(err, errlen, "%s:%u: not an address: %s", name, lineno,
				 why ? why : "too long");
			rc = SC_ERR_SYNTAX;
			break;
		}
		if (sc_config_domain_kind(cfg, a.domain) != SC_DOMAIN_LOCAL) {
			if (passwd)
				continue; /* a user who may log in but receives no mail here */
			snprintf(err, errlen, "%s:%u: %s is not in a domain of `domains`", name,
				 lineno, key);
			rc = SC_ERR_SYNTAX;
			break;
		}
		rc = rcpt_local_add(r, key);
	}
	if (rc == SC_OK && ferror(f)) {
		snprintf(err, errlen, "%s: read error", name);
		rc = SC_ERR_IO;
	}
	fclose(f);
	return rc;
}

sc_status rcpt_local_load(const sc_config *cfg, const char *recipients, const char *rname,
			  const char *passwd, const char *pname, struct rcpt_local **out,
			  char *err, size_t errlen)
{
	struct rcpt_local *r;
	sc_status rc = SC_OK;

	SC_ENSURE_ARG(out);
	*out = NULL;
	if (!recipients && !passwd)
		return SC_OK;
	r = calloc(1, sizeof *r);
	if (!r)
		return SC_ERR_NOMEM;
	r->cfg = cfg;
	if (recipients)
		rc = rcpt_local_read(&r->listed, cfg, recipients, rname ? rname : recipients, 0,
				     NULL, err, errlen);
	if (rc == SC_OK && passwd) {
		if ((size_t)snprintf(r->passwd, sizeof r->passwd, "%s", passwd) >= sizeof r->passwd)
			rc = SC_ERR_TOO_LONG;
		else
			rc = rcpt_local_read(&r->users, cfg, passwd, pname ? pname : passwd, 1,
					     &r->pst, err, errlen);
		r->checked = time(NULL);
	}
	if (rc != SC_OK) {
		rcpt_local_free(r);
		return rc;
	}
	rcpt_local_sort(&r->listed);
	rcpt_local_sort(&r->users);
	*out = r;
	return SC_OK;
}

sc_status rcpt_local_refresh(struct rcpt_local *r, time_t now, char *err, size_t errlen)
{
	struct rcpt_keys fresh = { 0 };
	struct stat st, rst;
	sc_status rc;

	/* at most one stat() a second, and only with a passwd: file */
	if (!r || !r->passwd[0] || now == r->checked)
		return SC_OK;
	r->checked = now;
	if (stat(r->passwd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", r->passwd, strerror(errno));
		return SC_ERR_IO; /* the users read before stay */
	}
	if (st.st_ino == r->pst.st_ino && st.st_dev == r->pst.st_dev &&
	    st.st_size == r->pst.st_size && st.st_mtim.tv_sec == r->pst.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == r->pst.st_mtim.tv_nsec)
		return SC_OK;
	rc = rcpt_local_read(&fresh, r->cfg, r->passwd, r->passwd, 1, &rst, err, errlen);
	if (rc != SC_OK) {
		rcpt_keys_free(&fresh);
		return rc;
	}
	rcpt_local_sort(&fresh);
	rcpt_keys_free(&r->users);
	r->users = fresh;
	r->pst = rst;
	return SC_OK;
}
