/*
 * repo_name.c - a repository spec as it may appear in logs and messages: a
 * pgsql: conninfo can carry the database password (libpq's password= keyword,
 * or user:password@ and ?password= in its URI form), and a log is read by more
 * people than the configuration file. Library; pure string work.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtpcert/repo.h"

#define REDACTED "*****"

/* Append [s, s + n) to out[*len]; the result stays NUL-terminated. @return 0
 * when it did not fit. */
static int put(char *out, size_t size, size_t *len, const char *s, size_t n)
{
	if (*len + n >= size)
		return 0;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
	return 1;
}

/* libpq keyword/value form: "host=db password='a b\' c' dbname=x". */
static int redact_kv(const char *s, char *out, size_t size, size_t *len)
{
	while (*s) {
		const char *k = s, *v;
		size_t klen;

		if (isspace((unsigned char)*s)) {
			if (!put(out, size, len, s++, 1))
				return 0;
			continue;
		}
		while (*s && *s != '=' && !isspace((unsigned char)*s))
			s++;
		klen = (size_t)(s - k);
		while (isspace((unsigned char)*s))
			s++;
		if (*s != '=') {
			/* not a keyword=value pair (a broken spec, which is what
			 * error messages show): this word as it is, then go on */
			if (!put(out, size, len, k, klen))
				return 0;
			s = k + klen;
			if (klen == 8 && !strncasecmp(k, "password", 8)) {
				/* "password s3cret", the "=" forgotten: the next
				 * word is the secret all the same */
				while (isspace((unsigned char)*s))
					if (!put(out, size, len, s++, 1))
						return 0;
				if (*s) {
					while (*s && !isspace((unsigned char)*s))
						s++;
					if (!put(out, size, len, REDACTED, strlen(REDACTED)))
						return 0;
				}
			}
			continue;
		}
		s++;
		while (isspace((unsigned char)*s))
			s++;
		v = s;
		if (*s == '\'') {
			for (s++; *s && *s != '\''; s++)
				if (*s == '\\' && s[1])
					s++;
			if (*s)
				s++;
		} else {
			while (*s && !isspace((unsigned char)*s))
				s++;
		}
		if (!put(out, size, len, k, klen) || !put(out, size, len, "=", 1))
			return 0;
		if (klen == 8 && !strncasecmp(k, "password", 8)) {
			if (!put(out, size, len, REDACTED, strlen(REDACTED)))
				return 0;
		} else if (!put(out, size, len, v, (size_t)(s - v))) {
			return 0;
		}
	}
	return 1;
}

/* URI form: "postgresql://user:secret@host/db?password=x&sslmode=require". */
static int redact_uri(const char *s, char *out, size_t size, size_t *len)
{
	const char *auth = strstr(s, "://") + 3;
	const char *end = auth + strcspn(auth, "/?#");
	const char *at = memchr(auth, '@', (size_t)(end - auth));
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;

	if (colon) {
		if (!put(out, size, len, s, (size_t)(colon + 1 - s)) ||
		    !put(out, size, len, REDACTED, strlen(REDACTED)))
			return 0;
		s = at;
	}
	while (*s) {
		const char *p = s + strcspn(s, "?&");

		if (!put(out, size, len, s, (size_t)(p - s)))
			return 0;
		if (!*p)
			break;
		if (!put(out, size, len, p, 1))
			return 0;
		s = p + 1;
		if (!strncasecmp(s, "password=", 9)) {
			if (!put(out, size, len, s, 9) ||
			    !put(out, size, len, REDACTED, strlen(REDACTED)))
				return 0;
			s += 9 + strcspn(s + 9, "&#");
		}
	}
	return 1;
}

void sc_repo_spec_redact(const char *spec, char *out, size_t size)
{
	size_t len = 0;
	int ok;

	if (!out || !size)
		return;
	out[0] = '\0';
	if (!spec)
		return;
	if (strncasecmp(spec, "pgsql:", 6) != 0) {
		snprintf(out, size, "%s", spec);
		return;
	}
	ok = put(out, size, &len, spec, 6);
	/* libpq's URI form starts with its scheme; a "://" elsewhere is in a
	 * keyword's value */
	if (ok)
		ok = !strncasecmp(spec + 6, "postgresql://", 13) ||
				     !strncasecmp(spec + 6, "postgres://", 11)
			     ? redact_uri(spec + 6, out, size, &len)
			     : redact_kv(spec + 6, out, size, &len);
	/* never half a secret: a spec that does not fit is named by its type */
	if (!ok)
		snprintf(out, size, "pgsql:(conninfo too long to show)");
}
