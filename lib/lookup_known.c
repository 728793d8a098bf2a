/*
 * lookup_known.c - the known-certificates store: trust on first use for
 * recipients' certificates, like SSH's known_hosts. One line per address:
 *
 *     LOOKUP-KEY <TAB> SHA256-HEX <TAB> FIRST-SEEN <TAB> LAST-SEEN
 *
 * times as RFC 3339 UTC ("2026-11-28T21:30:00Z"). A lookup key never contains
 * a tab or a control character (RFC 5321 4.1.2 qtextSMTP, RFC 6531), so the
 * fields need no quoting. Lines starting with '#' and blank lines are comments.
 * A line that does not parse is kept verbatim on rewrite (it may be a newer
 * version's or a hand edit) and never matches; a line over KNOWN_LINE_MAX
 * octets or with a NUL cannot be kept as it was and becomes a '#' marker.
 *
 * The file is rewritten as a whole, atomically (temporary file in the same
 * directory, fsync, rename) with mode 0600: a crash leaves the old or the new
 * file, never half of one. Two senders writing at the same moment: the last
 * rename wins; both saw a consistent file. Runs in the CLI's process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lookup_int.h"
#include "errmsg.h"

struct known_line {
	char *text;       /* the line as read (without newline), owned */
	int valid;
	char *key;        /* points into a parsed copy, valid lines only */
	char fp[65];
	char first[32], last[32];
	char *copy;
};

struct known_file {
	struct known_line *lines;
	size_t n, cap;
};

static void known_free(struct known_file *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->lines[i].text);
		free(k->lines[i].copy);
	}
	free(k->lines);
	k->lines = NULL;
	k->n = k->cap = 0;
}

static int is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* "YYYY-MM-DDTHH:MM:SSZ" and nothing else. */
static int is_time(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t i;

	for (i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
			return 0;
	}
	return s[i] == '\0';
}

static void parse_line(struct known_line *l)
{
	char *f[4], *p, *tab;
	size_t i;

	l->valid = 0;
	if (!l->text[0] || l->text[0] == '#')
		return;
	l->copy = strdup(l->text);
	if (!l->copy)
		return;
	p = l->copy;
	for (i = 0; i < 4; i++) {
		f[i] = p;
		tab = strchr(p, '\t');
		if (i < 3) {
			if (!tab)
				return;
			*tab = '\0';
			p = tab + 1;
		} else if (tab) {
			return; /* a fifth field: not ours */
		}
	}
	if (!*f[0] || !strchr(f[0], '@') || !is_hex64(f[1]) || !is_time(f[2]) || !is_time(f[3]))
		return;
	for (p = f[0]; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return;
	l->key = f[0];
	memcpy(l->fp, f[1], 65);
	snprintf(l->first, sizeof l->first, "%s", f[2]);
	snprintf(l->last, sizeof l->last, "%s", f[3]);
	l->valid = 1;
}

static sc_status add_line(struct known_file *k, const char *text, size_t len)
{
	struct known_line *l;

	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 64;
		struct known_line *nl = realloc(k->lines, cap * sizeof *nl);

		if (!nl)
			return SC_ERR_NOMEM;
		k->lines = nl;
		k->cap = cap;
	}
	l = &k->lines[k->n];
	memset(l, 0, sizeof *l);
	l->text = malloc(len + 1);
	if (!l->text)
		return SC_ERR_NOMEM;
	memcpy(l->text, text, len);
	l->text[len] = '\0';
	k->n++;
	parse_line(l);
	return SC_OK;
}

/* One line of at most KNOWN_LINE_MAX bytes into @p buf (newline dropped).
 * @return 1 with *len and *bad (over-long or with a NUL), 0 at the end. */
static int read_line(FILE *f, char *buf, size_t *len, int *bad, size_t *total)
{
	int ch, any = 0;

	*len = 0;
	*bad = 0;
	while ((ch = getc(f)) != EOF) {
		any = 1;
		(*total)++;
		if (ch == '\n')
			break;
		if (ch == '\0' || *len >= KNOWN_LINE_MAX)
			*bad = 1;
		else
			buf[(*len)++] = (char)ch;
	}
	if (*len && buf[*len - 1] == '\r')
		(*len)--;
	buf[*len] = '\0';
	return any;
}

/* Read @p path (absent = empty). A corrupt line (over-long, NUL) is replaced by
 * a comment saying so: it cannot be kept verbatim, and must not match. */
static sc_status known_read(const char *path, struct known_file *k, char *err, size_t errlen)
{
	static const char dropped[] = "# (corrupt line dropped: over-long or with a NUL)";
	char line[KNOWN_LINE_MAX + 1];
	size_t total = 0, len;
	int bad;
	FILE *f;
	sc_status st = SC_OK;

	memset(k, 0, sizeof *k);
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return SC_OK;
		sc_errf(err, errlen, "%s: %s", path, strerror(errno));
		return SC_ERR_IO;
	}
	while (st == SC_OK && read_line(f, line, &len, &bad, &total)) {
		if (total > KNOWN_FILE_MAX) {
			sc_errf(err, errlen, "%s: larger than %d bytes", path, KNOWN_FILE_MAX);
			st = SC_ERR_TOO_LONG;
			break;
		}
		st = bad ? add_line(k, dropped, sizeof dropped - 1) : add_line(k, line, len);
	}
	if (st == SC_OK && ferror(f)) {
		sc_errf(err, errlen, "%s: read error", path);
		st = SC_ERR_IO;
	}
	fclose(f);
	if (st != SC_OK)
		known_free(k);
	return st;
}

sc_status lookup_tmp_open(const char *path, char *tmp, size_t tmpsize, FILE **f, char *err,
			  size_t errlen)
{
	int fd;

	if (snprintf(tmp, tmpsize, "%s.tmpXXXXXX", path) >= (int)tmpsize)
		return SC_ERR_TOO_LONG;
	fd = mkstemp(tmp);
	if (fd < 0) {
		sc_errf(err, errlen, "%s: cannot create a temporary file: %s", path,
			      strerror(errno));
		return SC_ERR_IO;
	}
	(void)fchmod(fd, 0600);
	*f = fdopen(fd, "w");
	if (!*f) {
		sc_errf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return SC_ERR_IO;
	}
	return SC_OK;
}

sc_status lookup_tmp_commit(FILE *f, int bad, const char *tmp, const char *path, char *err,
			    size_t errlen)
{
	if (bad || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		sc_errf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return SC_ERR_IO;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		sc_errf(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
		unlink(tmp);
		return SC_ERR_IO;
	}
	return SC_OK;
}

static sc_status known_write(const char *path, const struct known_file *k, char *err,
			     size_t errlen)
{
	char tmp[4096];
	FILE *f;
	int bad = 0;

	SC_TRY(lookup_tmp_open(path, tmp, sizeof tmp, &f, err, errlen));
	for (size_t i = 0; i < k->n && !bad; i++)
		bad = fprintf(f, "%s\n", k->lines[i].text) < 0;
	return lookup_tmp_commit(f, bad, tmp, path, err, errlen);
}

static void fmt_time(time_t t, char out[32])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* Replace line @p l's text with a fresh record. */
static sc_status set_record(struct known_line *l, const char *key, const char *fp,
			    const char *first, const char *last)
{
	size_t size = strlen(key) + 64 + 2 * 32 + 8;
	char *text = malloc(size);

	if (!text)
		return SC_ERR_NOMEM;
	snprintf(text, size, "%s\t%s\t%s\t%s", key, fp, first, last);
	free(l->text);
	free(l->copy);
	l->text = text;
	l->copy = NULL;
	l->key = NULL;
	l->valid = 0;
	return SC_OK;
}

sc_status lookup_known_check(const char *path, const char *key, const sc_cert *c, int ca_ok,
			     int accept_new, time_t now, enum sc_pin *pin, char *err,
			     size_t errlen)
{
	struct known_file k;
	struct known_line *hit = NULL;
	uint8_t raw[32];
	char fp[65], stamp[32];
	sc_status st;

	SC_ENSURE_ARG(path);
	SC_ENSURE_ARG(key);
	SC_ENSURE_ARG(c);
	SC_ENSURE_ARG(pin);
	for (const char *p = key; *p; p++)
		SC_ENSURE((unsigned char)*p >= 0x20 && *p != 0x7f, SC_ERR_ARG);
	sc_cert_fingerprint(c, raw);
	sc_hex(raw, sizeof raw, fp);
	fmt_time(now, stamp);
	SC_TRY(known_read(path, &k, err, errlen));
	for (size_t i = 0; i < k.n && !hit; i++)
		if (k.lines[i].valid && !strcmp(k.lines[i].key, key))
			hit = &k.lines[i];
	if (!hit) {
		st = add_line(&k, "", 0);
		if (st == SC_OK)
			st = set_record(&k.lines[k.n - 1], key, fp, stamp, stamp);
		*pin = SC_PIN_NEW;
	} else if (!strcmp(hit->fp, fp)) {
		char first[32];

		memcpy(first, hit->first, sizeof first);
		st = set_record(hit, key, fp, first, stamp);
		*pin = SC_PIN_SAME;
	} else if (ca_ok || accept_new) {
		st = set_record(hit, key, fp, stamp, stamp);
		*pin = ca_ok ? SC_PIN_CHANGED_CA : SC_PIN_ACCEPTED_NEW;
	} else {
		sc_errf(err, errlen, "the certificate of %s CHANGED: remembered SHA-256 %s "
			      "(first seen %s, last seen %s), now offered %s; refused "
			      "(use --accept-new if the change is expected)", key, hit->fp,
			      hit->first, hit->last, fp);
		known_free(&k);
		return SC_ERR_CHANGED;
	}
	if (st == SC_OK)
		st = known_write(path, &k, err, errlen);
	known_free(&k);
	return st;
}
