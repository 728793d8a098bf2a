/*
 * config.c - the smtpcertd.conf reader: Postfix-style syntax, per-key values,
 * defaults, cross-key checks and getters. The key tables live in config_keys.c.
 * Used by the daemon (start-up, SIGHUP) and the admin CLI; a parsed sc_config is
 * immutable, so a reloaded daemon can swap it whole. The smtpcert client's file
 * (sc_config_load_client()) goes through the same reader with its own key table.
 *
 * Syntax, as in Postfix main.cf: "key = value"; a line whose first non-blank is
 * '#' is a comment; blank lines are ignored; a line starting with whitespace
 * continues the previous logical line. Every input is bounded: the file
 * (SC_CONFIG_MAX_BYTES), a physical line (CFG_LINE_MAX), a logical line
 * (CFG_LOGICAL_MAX) and the items of one list (CFG_ITEMS_MAX). Errors name the
 * place: "FILE:LINE: key: reason".
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtpcert/smtpcert.h"
#include "config_int.h"

#define CFG_LINE_MAX 4096
#define CFG_LOGICAL_MAX (64 * 1024)
#define CFG_ITEMS_MAX 10000
#define CFG_WHY_MAX 256

struct cfg_val {
	unsigned line;   /* where first set; 0 = default */
	char *str;       /* scalar text (owned) */
	long long num;   /* CFG_INT value, CFG_BOOL 0/1 */
	char **items;    /* CFG_LIST items (owned) */
	size_t n, cap;
};

struct sc_config {
	char *source;
	/* The key table the file was read with: smtpcertd.conf's (cfg_keys) or the
	 * smtpcert client's (cfg_client_keys). */
	const struct cfg_key *keys;
	size_t nkeys;
	struct cfg_val *v; /* nkeys entries, indexed like keys */
	/* Where "domains" and "gateway_domains" are in the table (-1: not in
	 * it): sc_config_domain_kind() runs for every CERT, and finding the keys
	 * by name was a scan of the whole table (docs/performance.md, sixth
	 * round). */
	int domains_k, gateway_k;
};

struct cfg_parse {
	sc_config *c;
	char *err;
	size_t errlen;
};

/* @return the index of key @p name (@p len bytes) in @p c's table, or -1. */
static int cfg_table_index(const sc_config *c, const char *name, size_t len)
{
	for (size_t i = 0; i < c->nkeys; i++)
		if (strlen(c->keys[i].name) == len && !memcmp(c->keys[i].name, name, len))
			return (int)i;
	return -1;
}

static sc_status cfg_fail(struct cfg_parse *p, unsigned line, const char *key,
			  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static sc_status cfg_fail(struct cfg_parse *p, unsigned line, const char *key,
			  const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!p->err || !p->errlen)
		return SC_ERR_CONFIG;
	if (line && key)
		snprintf(p->err, p->errlen, "%s:%u: %s: %s", p->c->source, line, key, msg);
	else if (line)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->c->source, line, msg);
	else if (key)
		snprintf(p->err, p->errlen, "%s: %s: %s", p->c->source, key, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->c->source, msg);
	return SC_ERR_CONFIG;
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int is_sep(char ch)
{
	return ch == ' ' || ch == '\t' || ch == ',';
}

static sc_status cfg_push(struct cfg_val *v, const char *s, size_t len)
{
	char *copy;

	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		char **items = realloc(v->items, cap * sizeof *items);

		if (!items)
			return SC_ERR_NOMEM;
		v->items = items;
		v->cap = cap;
	}
	copy = strndup(s, len);
	if (!copy)
		return SC_ERR_NOMEM;
	v->items[v->n++] = copy;
	return SC_OK;
}

/* Add one list item after checking it; duplicates are dropped silently. */
static sc_status cfg_add_item(struct cfg_parse *p, int k, unsigned line, const char *s,
			      size_t len)
{
	const struct cfg_key *key = &p->c->keys[k];
	struct cfg_val *v = &p->c->v[k];
	char item[CFG_LINE_MAX + 1], why[CFG_WHY_MAX];
	const char *reason;

	if (len > CFG_LINE_MAX)
		return cfg_fail(p, line, key->name, "value too long (max %d bytes)", CFG_LINE_MAX);
	memcpy(item, s, len);
	item[len] = '\0';
	if (key->check && (reason = key->check(item, why, sizeof why)))
		return cfg_fail(p, line, key->name, "\"%.*s\": %s", (int)len, s, reason);
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->items[i], item))
			return SC_OK;
	if (v->n >= CFG_ITEMS_MAX)
		return cfg_fail(p, line, key->name, "too many values (max %d)", CFG_ITEMS_MAX);
	if (cfg_push(v, item, strlen(item)) != SC_OK)
		return cfg_fail(p, line, key->name, "out of memory");
	return SC_OK;
}

/*
 * Split a list value. Plain lists split at every comma/blank. Repository lists
 * (CFG_SPLIT_SCHEME) start a new item only where a token begins with a known
 * scheme, so "ldap://h/dc=example,dc=test?userCertificate?sub?(mail=%s)" and
 * "pgsql:host=db dbname=certs" stay whole.
 */
static sc_status cfg_set_list(struct cfg_parse *p, int k, unsigned line, const char *s,
			      size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t start, end;

		while (i < len && is_sep(s[i]))
			i++;
		if (i == len)
			break;
		start = i;
		for (;;) {
			while (i < len && !is_sep(s[i]))
				i++;
			end = i;
			if (!(p->c->keys[k].flags & CFG_SPLIT_SCHEME))
				break;
			while (i < len && is_sep(s[i]))
				i++;
			if (i == len || cfg_repo_scheme_len(s + i, len - i))
				break;
		}
		SC_TRY(cfg_add_item(p, k, line, s + start, end - start));
	}
	return SC_OK;
}

static int parse_bool(const char *s, long long *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i]))
			return (*out = 1), 1;
		if (!strcasecmp(s, no[i]))
			return (*out = 0), 1;
	}
	return 0;
}

static int parse_choice(const char *choices, const char *s)
{
	size_t n = strlen(s);

	for (const char *c = choices; c; c = strchr(c, '|') ? strchr(c, '|') + 1 : NULL)
		if (!strncmp(c, s, n) && (c[n] == '|' || c[n] == '\0'))
			return 1;
	return 0;
}

/* Check and store a scalar value (from the file when line > 0, else a default). */
static sc_status cfg_set_scalar(struct cfg_parse *p, int k, unsigned line, const char *s,
				size_t len)
{
	const struct cfg_key *key = &p->c->keys[k];
	struct cfg_val *v = &p->c->v[k];
	char why[CFG_WHY_MAX];
	const char *reason = NULL;
	char *val, *end;

	if (v->str)
		return cfg_fail(p, line, key->name, "duplicate setting (first set at line %u)",
				v->line);
	if (len == 0)
		return cfg_fail(p, line, key->name, "missing value");
	val = strndup(s, len);
	if (!val)
		return cfg_fail(p, line, key->name, "out of memory");
	switch (key->type) {
	case CFG_INT:
		errno = 0;
		v->num = strtoll(val, &end, 10);
		if (errno || end == val || *end || !(val[0] == '-' || (val[0] >= '0' && val[0] <= '9')))
			reason = "not an integer";
		else if (v->num < key->min || v->num > key->max)
			reason = "out of range";
		if (reason) {
			cfg_fail(p, line, key->name, "\"%s\": %s (%lld to %lld)", val, reason,
				 key->min, key->max);
			free(val);
			return SC_ERR_CONFIG;
		}
		break;
	case CFG_BOOL:
		if (!parse_bool(val, &v->num))
			reason = "expected yes or no";
		break;
	case CFG_ENUM:
		if (!parse_choice(key->choices, val)) {
			cfg_fail(p, line, key->name, "\"%s\": expected one of %s", val, key->choices);
			free(val);
			return SC_ERR_CONFIG;
		}
		break;
	default:
		if (key->check)
			reason = key->check(val, why, sizeof why);
		break;
	}
	if (reason) {
		cfg_fail(p, line, key->name, "\"%s\": %s", val, reason);
		free(val);
		return SC_ERR_CONFIG;
	}
	v->str = val;
	return SC_OK;
}

/* One logical line: "key = value" with continuations already joined by a blank. */
static sc_status cfg_logical(struct cfg_parse *p, unsigned line, const char *s, size_t len)
{
	size_t i = 0, klen;
	int k;

	while (i < len && s[i] != '=' && !is_blank(s[i]))
		i++;
	klen = i;
	if (klen == 0)
		return cfg_fail(p, line, NULL, "missing key name before '='");
	while (i < len && is_blank(s[i]))
		i++;
	if (i == len || s[i] != '=')
		return cfg_fail(p, line, NULL, "%.*s: missing '=' after the key name",
				(int)(klen > 64 ? 64 : klen), s);
	k = cfg_table_index(p->c, s, klen);
	if (k < 0)
		return cfg_fail(p, line, NULL, "%.*s: unknown configuration key",
				(int)(klen > 64 ? 64 : klen), s);
	i++;
	while (i < len && is_blank(s[i]))
		i++;
	while (len > i && is_blank(s[len - 1]))
		len--;
	if (p->c->keys[k].type == CFG_LIST) {
		SC_TRY(cfg_set_list(p, k, line, s + i, len - i));
		if (!p->c->v[k].line)
			p->c->v[k].line = line;
		return SC_OK;
	}
	SC_TRY(cfg_set_scalar(p, k, line, s + i, len - i));
	p->c->v[k].line = line;
	return SC_OK;
}

/* Split the text into physical lines, join continuations, feed logical lines. */
static sc_status cfg_lines(struct cfg_parse *p, const char *text, size_t len)
{
	char *logical = malloc(CFG_LOGICAL_MAX);
	size_t llen = 0, pos = 0;
	unsigned lineno = 0, lstart = 0;
	sc_status st = SC_OK;

	if (!logical)
		return cfg_fail(p, 0, NULL, "out of memory");
	while (pos < len && st == SC_OK) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos, j;

		pos += n + (nl != NULL);
		lineno++;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (n > CFG_LINE_MAX) {
			st = cfg_fail(p, lineno, NULL, "line too long (max %d bytes)", CFG_LINE_MAX);
			break;
		}
		for (j = 0; j < n; j++)
			if ((unsigned char)s[j] < 0x20 && s[j] != '\t')
				break;
		if (j < n) {
			st = cfg_fail(p, lineno, NULL, s[j] ? "control character 0x%02x in line"
						    : "NUL byte (0x%02x) in line",
				      (unsigned)(unsigned char)s[j]);
			break;
		}
		for (j = 0; j < n && is_blank(s[j]); j++)
			;
		if (j == n || s[j] == '#')
			continue;
		if (j > 0) {
			/* Continuation: Postfix joins it to the previous logical line. */
			if (!lstart) {
				st = cfg_fail(p, lineno, NULL,
					      "continuation line (starts with whitespace) "
					      "without a preceding key");
				break;
			}
			if (llen + 1 + (n - j) > CFG_LOGICAL_MAX) {
				st = cfg_fail(p, lstart, NULL, "logical line too long (max %d bytes)",
					      CFG_LOGICAL_MAX);
				break;
			}
			logical[llen++] = ' ';
			memcpy(logical + llen, s + j, n - j);
			llen += n - j;
			continue;
		}
		if (lstart)
			st = cfg_logical(p, lstart, logical, llen);
		memcpy(logical, s, n);
		llen = n;
		lstart = lineno;
	}
	if (st == SC_OK && lstart)
		st = cfg_logical(p, lstart, logical, llen);
	free(logical);
	return st;
}

static sc_status cfg_default(struct cfg_parse *p, int k, const char *value)
{
	if (p->c->keys[k].type == CFG_LIST)
		return cfg_set_list(p, k, 0, value, strlen(value));
	return cfg_set_scalar(p, k, 0, value, strlen(value));
}

/* Defaults (some computed from other keys) and rules spanning several keys. */
static sc_status cfg_finish(struct cfg_parse *p)
{
	sc_config *c = p->c;
	char buf[SC_DOMAIN_MAX + 64];
	const char *const *dom, *const *gw;
	size_t nd, ng;

	for (size_t k = 0; k < c->nkeys; k++) {
		if ((c->keys[k].flags & CFG_REQUIRED) && !c->v[k].str && !c->v[k].n)
			return cfg_fail(p, c->v[k].line, c->keys[k].name,
					c->v[k].line ? "at least one value is required"
						     : "required key is missing");
		if (c->keys[k].def && !c->v[k].line)
			SC_TRY(cfg_default(p, (int)k, c->keys[k].def));
	}
	/* The rules below are smtpcertd.conf's; the client file has none. */
	if (c->keys != cfg_keys)
		return SC_OK;
	if (!sc_config_is_set(c, "hostname")) {
		/* A host name the banner cannot carry (e.g. with '_') must not stop the
		 * daemon from starting: the administrator can still set one. */
		buf[sizeof buf - 1] = '\0';
		if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0] ||
		    sc_domain_check(buf, strlen(buf), 0) != SC_OK)
			snprintf(buf, sizeof buf, "localhost");
		SC_TRY(cfg_default(p, cfg_key_index("hostname", 8), buf));
	}
	if (!sc_config_is_set(c, "repository")) {
		char repo[CFG_LINE_MAX];

		snprintf(repo, sizeof repo, "lmdb:%s/certs", sc_config_str(c, "state_dir"));
		SC_TRY(cfg_default(p, cfg_key_index("repository", 10), repo));
	}
	nd = sc_config_list(c, "domains", &dom);
	if (!sc_config_is_set(c, "postmaster") && nd) {
		snprintf(buf, sizeof buf, "postmaster@%s", dom[0]);
		SC_TRY(cfg_default(p, cfg_key_index("postmaster", 10), buf));
	}
	if (sc_config_is_set(c, "tls_cert_file") != sc_config_is_set(c, "tls_key_file")) {
		const char *set = sc_config_is_set(c, "tls_cert_file") ? "tls_cert_file"
								       : "tls_key_file";
		return cfg_fail(p, sc_config_line(c, set), set,
				"tls_cert_file and tls_key_file must be set together");
	}
	/* A domain is either ours or behind us: the two answer differently. */
	ng = sc_config_list(c, "gateway_domains", &gw);
	for (size_t i = 0; i < ng; i++)
		for (size_t j = 0; j < nd; j++)
			if (!strcmp(gw[i], dom[j]))
				return cfg_fail(p, sc_config_line(c, "gateway_domains"),
						"gateway_domains", "\"%s\" is also in domains",
						gw[i]);
	return SC_OK;
}

static sc_status cfg_parse_table(const char *text, size_t len, const char *name,
				 const struct cfg_key *keys, size_t nkeys, sc_config **out,
				 char *err, size_t errlen)
{
	struct cfg_parse p = { NULL, err, errlen };
	sc_status st;

	SC_ENSURE_ARG(out);
	SC_ENSURE_ARG(text || !len);
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	p.c = calloc(1, sizeof *p.c);
	if (!p.c)
		return SC_ERR_NOMEM;
	p.c->source = strdup(name ? name : "(config)");
	p.c->keys = keys;
	p.c->nkeys = nkeys;
	p.c->domains_k = cfg_table_index(p.c, "domains", strlen("domains"));
	p.c->gateway_k = cfg_table_index(p.c, "gateway_domains", strlen("gateway_domains"));
	p.c->v = calloc(nkeys, sizeof *p.c->v);
	if (!p.c->source || !p.c->v) {
		sc_config_free(p.c);
		return SC_ERR_NOMEM;
	}
	if (len > SC_CONFIG_MAX_BYTES)
		st = cfg_fail(&p, 0, NULL, "file too large (max %d bytes)", SC_CONFIG_MAX_BYTES);
	else
		st = cfg_lines(&p, text, len);
	if (st == SC_OK)
		st = cfg_finish(&p);
	if (st != SC_OK) {
		sc_config_free(p.c);
		return st;
	}
	*out = p.c;
	return SC_OK;
}

sc_status sc_config_parse(const char *text, size_t len, const char *name, sc_config **out,
			  char *err, size_t errlen)
{
	return cfg_parse_table(text, len, name, cfg_keys, cfg_nkeys, out, err, errlen);
}

sc_status sc_config_parse_client(const char *text, size_t len, const char *name,
				 sc_config **out, char *err, size_t errlen)
{
	return cfg_parse_table(text, len, name, cfg_client_keys, cfg_client_nkeys, out, err,
			       errlen);
}

static sc_status cfg_load_table(const char *path, const struct cfg_key *keys, size_t nkeys,
				sc_config **out, char *err, size_t errlen)
{
	struct stat sb;
	char *text;
	size_t len = 0;
	sc_status st;
	int fd;

	SC_ENSURE_ARG(path);
	SC_ENSURE_ARG(out);
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SC_ERR_IO;
	}
	if (!S_ISREG(sb.st_mode)) {
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot read: not a regular file", path);
		close(fd);
		return SC_ERR_IO;
	}
	/* Read at most one byte past the limit, so an oversized file is reported. */
	text = malloc(SC_CONFIG_MAX_BYTES + 1);
	if (!text) {
		close(fd);
		return SC_ERR_NOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, text + len, SC_CONFIG_MAX_BYTES + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (err && errlen)
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			free(text);
			close(fd);
			return SC_ERR_IO;
		}
		len += (size_t)r;
		if (r == 0 || len == SC_CONFIG_MAX_BYTES + 1)
			break;
	}
	close(fd);
	st = cfg_parse_table(text, len, path, keys, nkeys, out, err, errlen);
	free(text);
	return st;
}

sc_status sc_config_load(const char *path, sc_config **out, char *err, size_t errlen)
{
	return cfg_load_table(path, cfg_keys, cfg_nkeys, out, err, errlen);
}

sc_status sc_config_load_client(const char *path, sc_config **out, char *err, size_t errlen)
{
	return cfg_load_table(path, cfg_client_keys, cfg_client_nkeys, out, err, errlen);
}

void sc_config_free(sc_config *c)
{
	if (!c)
		return;
	for (size_t k = 0; c->v && k < c->nkeys; k++) {
		free(c->v[k].str);
		for (size_t i = 0; i < c->v[k].n; i++)
			free(c->v[k].items[i]);
		free(c->v[k].items);
	}
	free(c->v);
	free(c->source);
	free(c);
}

const char *sc_config_source(const sc_config *c)
{
	return c ? c->source : NULL;
}

int sc_config_key_known(const char *key)
{
	return key && cfg_key_index(key, strlen(key)) >= 0;
}

static const struct cfg_val *cfg_get(const sc_config *c, const char *key, int *k)
{
	int i;

	if (!c || !key)
		return NULL;
	i = cfg_table_index(c, key, strlen(key));
	if (i < 0)
		return NULL;
	if (k)
		*k = i;
	return &c->v[i];
}

int sc_config_is_set(const sc_config *c, const char *key)
{
	const struct cfg_val *v = cfg_get(c, key, NULL);

	return v && v->line != 0;
}

unsigned sc_config_line(const sc_config *c, const char *key)
{
	const struct cfg_val *v = cfg_get(c, key, NULL);

	return v ? v->line : 0;
}

void sc_config_errorf(const sc_config *c, const char *key, char *err, size_t errlen,
		      const char *fmt, ...)
{
	char msg[512];
	unsigned line = sc_config_line(c, key);
	const char *src = c ? c->source : "(config)";
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, errlen, "%s:%u: %s: %s", src, line, key, msg);
	else
		snprintf(err, errlen, "%s: %s: %s", src, key ? key : "(none)", msg);
}

const char *sc_config_str(const sc_config *c, const char *key)
{
	const struct cfg_val *v = cfg_get(c, key, NULL);

	return v ? v->str : NULL;
}

/* The items of the list at table index @p k (-1: not in the table). */
static size_t cfg_list_at(const sc_config *c, int k, const char *const **items)
{
	*items = NULL;
	if (k < 0 || c->keys[k].type != CFG_LIST)
		return 0;
	*items = (const char *const *)c->v[k].items;
	return c->v[k].n;
}

size_t sc_config_list(const sc_config *c, const char *key, const char *const **items)
{
	const char *const *none;
	int k = -1;

	if (c && key)
		k = cfg_table_index(c, key, strlen(key));
	return cfg_list_at(c, k, items ? items : &none);
}

long long sc_config_int(const sc_config *c, const char *key)
{
	int k = -1;
	const struct cfg_val *v = cfg_get(c, key, &k);

	return v && c->keys[k].type == CFG_INT ? v->num : 0;
}

int sc_config_bool(const sc_config *c, const char *key)
{
	int k = -1;
	const struct cfg_val *v = cfg_get(c, key, &k);

	return v && c->keys[k].type == CFG_BOOL ? (int)v->num : 0;
}

enum sc_domain_kind sc_config_domain_kind(const sc_config *c, const char *domain)
{
	const char *const *items;
	size_t n;

	if (!c || !domain)
		return SC_DOMAIN_FOREIGN;
	n = cfg_list_at(c, c->domains_k, &items);
	for (size_t i = 0; i < n; i++)
		if (sc_domain_equal(items[i], domain))
			return SC_DOMAIN_LOCAL;
	n = cfg_list_at(c, c->gateway_k, &items);
	for (size_t i = 0; i < n; i++)
		if (sc_domain_equal(items[i], domain))
			return SC_DOMAIN_GATEWAY;
	return SC_DOMAIN_FOREIGN;
}

/* The public key tables are derived once from cfg_keys / cfg_client_keys (types as text). */
static struct sc_config_keyinfo *keyinfo, *client_keyinfo;
static pthread_once_t keyinfo_once = PTHREAD_ONCE_INIT;
static pthread_once_t client_keyinfo_once = PTHREAD_ONCE_INIT;

static struct sc_config_keyinfo *keyinfo_from(const struct cfg_key *keys, size_t n)
{
	struct sc_config_keyinfo *ki = calloc(n, sizeof *ki);

	if (!ki)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		ki[i].name = keys[i].name;
		ki[i].type = cfg_type_name(keys[i].type);
		ki[i].def = keys[i].def_doc ? keys[i].def_doc : keys[i].def;
		ki[i].help = keys[i].help;
	}
	return ki;
}

static void keyinfo_build(void)
{
	keyinfo = keyinfo_from(cfg_keys, cfg_nkeys);
}

static void client_keyinfo_build(void)
{
	client_keyinfo = keyinfo_from(cfg_client_keys, cfg_client_nkeys);
}

size_t sc_config_keys(const struct sc_config_keyinfo **keys)
{
	pthread_once(&keyinfo_once, keyinfo_build);
	if (keys)
		*keys = keyinfo;
	return keyinfo ? cfg_nkeys : 0;
}

size_t sc_config_client_keys(const struct sc_config_keyinfo **keys)
{
	pthread_once(&client_keyinfo_once, client_keyinfo_build);
	if (keys)
		*keys = client_keyinfo;
	return client_keyinfo ? cfg_client_nkeys : 0;
}
