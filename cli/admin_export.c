/*
 * admin_export.c - `smtpcert admin -c FILE export-www DIR`: the files that
 * cert_url points at (docs/protocol.md 10.2), for any web server whose document
 * root is DIR. For every address of the configured repositories (any type: the
 * stores are walked with sc_repo_list() and asked with sc_repo_lookup() only;
 * ldap:// stores with the configured ldap_* settings),
 * the certificate CERT would serve now (sc_repo_lookup: valid, not revoked by the
 * configured CRLs, newest first; the first store that has the address answers)
 * is written, leaf then chain in PEM (one file serves CERT and CERS), to the path
 * of the expanded URL (sc_cert_url_file, the daemon's own expansion). Writes are
 * atomic (temporary file, fsync, rename) with mode 0644. DIR/.smtpcert-export
 * lists the files written; a file listed there whose address is no longer served
 * is removed, and nothing else in DIR is ever touched.
 * Runs in the administrator's process; opens the stores read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_ctx.h"

#define EXPORT_MANIFEST ".smtpcert-export"
#define EXPORT_MAX_FILES 1000000
#define EXPORT_PATH_MAX 4096

void admin_export_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcert admin -c FILE export-www DIR\n\n"
		"Writes under DIR, for every address in the configured repositories\n"
		"(lmdb:, dir:, ldap://, ...), the file the cert_url template names (the\n"
		"URL's path, percent-decoded, relative to DIR): the PEM certificate CERT\n"
		"serves now\n"
		"(valid and not revoked by the configured crl_file), followed by its\n"
		"chain, so the same file answers CERT and CERS. Files are replaced\n"
		"atomically with mode 0644; directories are created. DIR/%s lists the\n"
		"files written; those of addresses no longer served are removed, and\n"
		"nothing else in DIR is touched. Prints a summary line. Run it after every\n"
		"import, remove, accept or CRL update, e.g. from cron (for a directory\n"
		"store: as often as its entries change).\n\n"
		"example: smtpcert admin -c /etc/smtpcert/smtpcertd.conf export-www /var/www/certs\n",
		EXPORT_MANIFEST);
}

struct export_set {
	char **v;
	size_t n, cap;
};

static int set_add(struct export_set *s, const char *str)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **v;

		if (cap > EXPORT_MAX_FILES)
			return -1;
		v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	if (!(s->v[s->n] = strdup(str)))
		return -1;
	s->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int set_has(const struct export_set *s, const char *str)
{
	return bsearch(&str, s->v, s->n, sizeof *s->v, cmp_str) != NULL;
}

static void set_free(struct export_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* Sort and drop duplicates. */
static void set_sort(struct export_set *s)
{
	size_t o = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof *s->v, cmp_str);
	for (size_t i = 1; i < s->n; i++) {
		if (!strcmp(s->v[i], s->v[o]))
			free(s->v[i]);
		else
			s->v[++o] = s->v[i];
	}
	s->n = o + 1;
}

static sc_status collect_key(void *arg, const struct sc_repo_entry *e)
{
	return set_add(arg, e->key) ? SC_ERR_NOMEM : SC_OK;
}

struct export_run {
	const char *dir;
	const char *tmpl;
	struct export_set written; /* relative paths, for the manifest */
	size_t nwritten, nremoved, nskipped;
	int rc;
};

static void export_fail(struct export_run *x, int rc)
{
	if (x->rc == CLI_OK)
		x->rc = rc;
}

/* mkdir -p for the parents of @p rel under x->dir. */
static int make_parents(const struct export_run *x, const char *rel)
{
	char path[EXPORT_PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s", x->dir, rel);
	size_t base = strlen(x->dir) + 1;

	if (n < 0 || (size_t)n >= sizeof path)
		return -1;
	for (char *p = path + base; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			admin_err("export-www", "%s: %s", path, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* Write @p len bytes to DIR/@p rel atomically: a reader (the web server) sees
 * the old file or the new one, never a part. */
static int write_atomic(const struct export_run *x, const char *rel, const char *data,
			size_t len)
{
	char path[EXPORT_PATH_MAX], tmp[EXPORT_PATH_MAX + 32];
	const char *slash;
	int fd, n;
	size_t off = 0;

	n = snprintf(path, sizeof path, "%s/%s", x->dir, rel);
	if (n < 0 || (size_t)n >= sizeof path)
		return -1;
	slash = strrchr(path, '/');
	/* hidden name in the same directory: rename() stays atomic, never served */
	n = snprintf(tmp, sizeof tmp, "%.*s/.%s.tmp%ld", (int)(slash - path), path, slash + 1,
		     (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		admin_err("export-www", "%s: %s", tmp, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	/* 0644 whatever the umask: the web server reads it as another user */
	if (off != len || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		admin_err("export-www", "%s: %s", tmp, strerror(errno ? errno : EIO));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		admin_err("export-www", "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* sc_repo_lookup() callback: the chosen entry, leaf then chain, as PEM. */
struct export_pem {
	char *buf;
	size_t len;
};

static sc_status export_entry(void *arg, const struct sc_repo_entry *e)
{
	struct export_pem *p = arg;
	size_t need = 1, n = e->n_der > SC_CHAIN_MAX ? SC_CHAIN_MAX : e->n_der;

	for (size_t i = 0; i < n; i++)
		need += sc_pem_encoded_size(e->der_len[i], "CERTIFICATE");
	if (!(p->buf = malloc(need)))
		return SC_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t w = 0;

		SC_TRY(sc_pem_encode(e->der[i], e->der_len[i], "CERTIFICATE", p->buf + p->len,
				     need - p->len, &w));
		p->len += w;
	}
	return SC_OK;
}

static int store_has(sc_repo *r, const struct sc_addr *a)
{
	struct export_set one = { 0 };
	int has;

	if (sc_repo_entries(r, a, collect_key, &one) != SC_OK && one.n == 0)
		has = 0;
	else
		has = one.n > 0;
	set_free(&one);
	return has;
}

/* One address: the first store that has it answers (INTERFACE.md, repository). */
static void export_key(struct export_run *x, struct admin_ctx *ctx, sc_repo **repos,
		       const char **specs, size_t nrepo, const char *key)
{
	char rel[EXPORT_PATH_MAX];
	struct sc_addr a;
	sc_status st;

	st = sc_cert_url_file(x->tmpl, key, rel, sizeof rel);
	if (st != SC_OK) {
		admin_err("export-www", "%s: skipped: the cert_url path for it is %s", key,
			  st == SC_ERR_SYNTAX ? "not a safe file name" : sc_strerror(st));
		x->nskipped++;
		export_fail(x, CLI_DATA);
		return;
	}
	if (sc_addr_parse(key, strlen(key), SC_ADDR_UTF8, &a, NULL) != SC_OK) {
		admin_err("export-www", "%s: skipped: the stored key is not an address", key);
		x->nskipped++;
		export_fail(x, CLI_DATA);
		return;
	}
	for (size_t i = 0; i < nrepo; i++) {
		struct export_pem pem = { 0 };

		if (!repos[i])
			continue;
		st = sc_repo_lookup(repos[i], &a, ctx->now, ctx->crls, export_entry, &pem);
		if (st == SC_OK) {
			if (make_parents(x, rel) || write_atomic(x, rel, pem.buf, pem.len)) {
				free(pem.buf);
				export_fail(x, CLI_FAILURE);
				/* keep a file we may have written before listed */
				if (set_add(&x->written, rel))
					export_fail(x, CLI_FAILURE);
				return;
			}
			free(pem.buf);
			x->nwritten++;
			if (set_add(&x->written, rel))
				export_fail(x, CLI_FAILURE);
			return;
		}
		free(pem.buf);
		if (st == SC_ERR_NOT_FOUND || st == SC_ERR_EXPIRED || st == SC_ERR_NOT_YET_VALID ||
		    st == SC_ERR_REVOKED) {
			if (store_has(repos[i], &a))
				return; /* this store answers: not served */
			continue;
		}
		/* Unknown state: keep the file it may have had (it stays listed). */
		admin_err("export-www", "%s: %s: %s", key, sc_repo_name(repos[i]), sc_strerror(st));
		export_fail(x, cli_exit_for(st));
		if (set_add(&x->written, rel))
			export_fail(x, CLI_FAILURE);
		return;
	}
}

/* The previous run's list. A line that is not a safe relative path (edited by
 * hand?) is ignored: removal never leaves DIR. */
static int manifest_read(struct export_run *x, struct export_set *old)
{
	char path[EXPORT_PATH_MAX], line[EXPORT_PATH_MAX];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", x->dir, EXPORT_MANIFEST);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof line, f)) {
		size_t n = strcspn(line, "\n");
		int safe = n > 0 && line[0] != '/';

		line[n] = '\0';
		for (const char *seg = line; safe && seg; seg = strchr(seg, '/')) {
			if (*seg == '/')
				seg++;
			safe = *seg && *seg != '.' && *seg != '/';
		}
		if (safe && set_add(old, line)) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static int manifest_write(struct export_run *x)
{
	size_t len = 0, size = 1;
	char *buf;
	int rc;

	for (size_t i = 0; i < x->written.n; i++)
		size += strlen(x->written.v[i]) + 1;
	if (!(buf = malloc(size)))
		return -1;
	for (size_t i = 0; i < x->written.n; i++) {
		size_t n = strlen(x->written.v[i]);

		memcpy(buf + len, x->written.v[i], n);
		buf[len + n] = '\n';
		len += n + 1;
	}
	rc = write_atomic(x, EXPORT_MANIFEST, buf, len);
	free(buf);
	return rc;
}

/* Remove DIR/@p rel and the directories it leaves empty (rmdir refuses others). */
static int remove_file(struct export_run *x, const char *rel)
{
	char path[EXPORT_PATH_MAX];
	size_t base = strlen(x->dir);
	char *slash;
	int n = snprintf(path, sizeof path, "%s/%s", x->dir, rel);

	if (n < 0 || (size_t)n >= sizeof path)
		return -1;
	if (unlink(path) != 0 && errno != ENOENT) {
		admin_err("export-www", "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((slash = strrchr(path, '/')) != NULL && (size_t)(slash - path) > base) {
		*slash = '\0';
		if (rmdir(path) != 0)
			break;
	}
	return 0;
}

int admin_export(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *const *specs;
	size_t nspec = sc_config_list(ctx->cfg, "repository", &specs);
	struct export_run x = { .rc = CLI_OK };
	struct export_set keys = { 0 }, old = { 0 };
	struct sc_repo_ldap_opts remote;
	sc_repo **repos;
	struct stat sb;

	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' && strcmp(argv[i], "-")) {
			admin_err("export-www", "unknown option '%s'", argv[i]);
			admin_export_usage(stderr);
			return CLI_USAGE;
		}
		if (x.dir) {
			admin_err("export-www", "unexpected argument '%s'", argv[i]);
			admin_export_usage(stderr);
			return CLI_USAGE;
		}
		x.dir = argv[i];
	}
	if (!x.dir || !*x.dir) {
		admin_err("export-www", "no directory given");
		admin_export_usage(stderr);
		return CLI_USAGE;
	}
	x.tmpl = sc_config_str(ctx->cfg, "cert_url");
	if (!x.tmpl || !*x.tmpl) {
		admin_err("export-www", "%s: cert_url is not set: nothing points at a web server",
			  ctx->config_path);
		return CLI_FAILURE;
	}
	if (stat(x.dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		admin_err("export-www", "%s: not a directory", x.dir);
		return CLI_FAILURE;
	}
	repos = calloc(nspec ? nspec : 1, sizeof *repos);
	if (!repos)
		return CLI_FAILURE;
	sc_repo_ldap_opts_from_config(ctx->cfg, &remote);
	for (size_t i = 0; i < nspec; i++) {
		char err[1024] = "";
		sc_status st;

		if (!admin_repo_local("export-www", specs[i]))
			continue;
		st = sc_repo_open_ex(specs[i], SC_REPO_RDONLY, &remote, &repos[i], err,
				     sizeof err);
		if (st == SC_ERR_NOT_FOUND)
			continue; /* nothing imported yet: an empty store */
		if (st == SC_OK) {
			sc_repo_set_warn(repos[i], admin_repo_warn, "export-www");
			st = sc_repo_list(repos[i], collect_key, &keys);
		}
		if (st != SC_OK) {
			admin_err("export-www", "%s", err[0] ? err : sc_strerror(st));
			/* without this store we cannot tell what must go: remove nothing */
			x.rc = cli_exit_for(st);
			goto out;
		}
	}
	set_sort(&keys);
	for (size_t i = 0; i < keys.n; i++)
		export_key(&x, ctx, repos, (const char **)specs, nspec, keys.v[i]);
	set_sort(&x.written);
	if (manifest_read(&x, &old) != 0) {
		admin_err("export-www", "%s/%s: %s", x.dir, EXPORT_MANIFEST, strerror(errno));
		export_fail(&x, CLI_FAILURE);
	}
	/* The new list first: an interrupted run leaves stale files listed, never
	 * files of ours unlisted. */
	if (manifest_write(&x) != 0) {
		export_fail(&x, CLI_FAILURE);
		goto out;
	}
	for (size_t i = 0; i < old.n; i++) {
		if (set_has(&x.written, old.v[i]))
			continue;
		if (remove_file(&x, old.v[i]) == 0)
			x.nremoved++;
		else
			export_fail(&x, CLI_FAILURE);
	}
	printf("export-www: %zu written, %zu removed, %zu skipped, %zu addresses\n",
	       x.nwritten, x.nremoved, x.nskipped, keys.n);
out:
	for (size_t i = 0; i < nspec; i++)
		if (repos[i])
			sc_repo_close(repos[i]);
	free(repos);
	set_free(&keys);
	set_free(&old);
	set_free(&x.written);
	if (fflush(stdout) != 0)
		export_fail(&x, CLI_FAILURE);
	return x.rc;
}
