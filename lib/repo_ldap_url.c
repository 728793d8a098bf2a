/*
 * repo_ldap_url.c - the text side of ldap:// repositories: RFC 4516 URL parsing
 * and RFC 4515 filter construction with the lookup key escaped, so that no
 * address can change the filter's structure. Pure functions, no I/O; used by
 * lib/repo_ldap.c in the daemon and the admin CLI.
 */
#include <ldap.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "repo_ldap.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode [s, s+n) into @p out (RFC 4516 2.1, RFC 3986 2.1). A decoded NUL
 * is refused: it would cut the C string. @return 0, or -1. */
static int pct_decode(const char *s, size_t n, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= size)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

/* ldapi (OpenLDAP: LDAP over a Unix socket, the URL's host being the socket's
 * path percent-encoded, e.g. ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi): @p path is
 * the decoded host; an absolute path that fits sun_path, written back encoded
 * as libldap expects (every byte outside RFC 3986 2.3 unreserved as %XX). */
static int url_ldapi_host(const char *path, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (path[0] != '/' || strlen(path) >= SC_REPO_LDAPI_PATH_MAX)
		return -1;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			    *p == '~';

		if (*p < 0x21 || *p == 0x7f)
			return -1; /* controls and spaces: not in a path we accept */
		if (o + (plain ? 1 : 3) >= size)
			return -1;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

/* "h1:389,h2" -> "ldap://h1:389 ldap://h2" (libldap takes a space-separated list
 * and tries each in turn: failover across servers). */
static int url_hosts(const char *scheme, const char *s, size_t n, char *out, size_t size)
{
	size_t o = 0, nhost = 0;
	int ldapi = !strcmp(scheme, "ldapi");

	if (n == 0)
		return snprintf(out, size, "%s://", scheme) < (int)size ? 0 : -1;
	if (s[n - 1] == ',')
		return -1; /* "h1," : an empty last host */
	while (n > 0) {
		const char *comma = memchr(s, ',', n);
		size_t len = comma ? (size_t)(comma - s) : n;
		char host[256], enc[3 * SC_REPO_LDAPI_PATH_MAX];
		int w;

		if (len == 0 || nhost++ == SC_REPO_LDAP_HOSTS_MAX ||
		    pct_decode(s, len, host, sizeof host) != 0)
			return -1;
		if (ldapi ? url_ldapi_host(host, enc, sizeof enc) != 0 : !!strpbrk(host, " /?#@"))
			return -1;
		w = snprintf(out + o, size - o, "%s%s://%s", o ? " " : "", scheme,
			     ldapi ? enc : host);
		if (w < 0 || (size_t)w >= size - o)
			return -1;
		o += (size_t)w;
		s += len + (comma != NULL);
		n -= len + (comma != NULL);
	}
	return 0;
}

/* The next '?'-separated field of [*s, end): its bounds, and *s moved past it. */
static void next_field(const char **s, const char *end, const char **f, size_t *flen)
{
	const char *q = memchr(*s, '?', (size_t)(end - *s));

	*f = *s;
	*flen = q ? (size_t)(q - *s) : (size_t)(end - *s);
	*s = q ? q + 1 : end;
}

static int url_attrs(const char *s, size_t n, struct sc_repo_ldap_url *u)
{
	u->nattrs = 0;
	if (n == 0) {
		snprintf(u->attrs[0], sizeof u->attrs[0], "userCertificate;binary");
		u->nattrs = 1;
		return 0;
	}
	while (n > 0) {
		const char *comma = memchr(s, ',', n);
		size_t len = comma ? (size_t)(comma - s) : n;
		char *a;

		if (u->nattrs == SC_REPO_LDAP_ATTRS_MAX || len == 0)
			return -1;
		a = u->attrs[u->nattrs++];
		if (pct_decode(s, len, a, sizeof u->attrs[0]) != 0)
			return -1;
		/* RFC 4512 2.5: descr or numericoid, then ;options */
		for (const char *p = a; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '-' || *p == ';' || *p == '.'))
				return -1;
		s += len + (comma != NULL);
		n -= len + (comma != NULL);
	}
	return 0;
}

/* The filter template: every '%' starts %s or %XX; at least one %s. */
static int url_filter_ok(const char *f)
{
	int have = 0;

	for (const char *p = f; *p; p++) {
		if (*p != '%')
			continue;
		if (p[1] == 's') {
			have = 1;
			p++;
		} else if (hexval(p[1]) >= 0 && hexval(p[2]) >= 0 &&
			   (p[1] != '0' || p[2] != '0')) {
			p += 2;
		} else {
			return 0;
		}
	}
	return have;
}

/* RFC 4516 2: extensions = [!]type[=value], comma-separated, after the filter.
 * A critical extension we do not know must not be ignored. */
static int url_exts(const char *s, const char *end, struct sc_repo_ldap_url *u)
{
	if (memchr(s, '?', (size_t)(end - s)))
		return -1;
	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t len = comma ? (size_t)(comma - s) : (size_t)(end - s);
		int critical = len > 0 && *s == '!';
		const char *t = s + critical;
		size_t tlen = len - (size_t)critical;

		if (tlen >= 7 && !strncasecmp(t, "x-ca-dn", 7) && (tlen == 7 || t[7] == '=')) {
			if (tlen <= 8 ||
			    pct_decode(t + 8, tlen - 8, u->ca_dn, sizeof u->ca_dn) != 0)
				return -1;
		} else if (critical || tlen == 0) {
			return -1;
		}
		s += len + (comma != NULL);
	}
	return 0;
}

sc_status sc_repo_ldap_url_parse(const char *scheme, const char *rest,
				 struct sc_repo_ldap_url *u, char *err, size_t errlen)
{
	const char *s, *end, *host, *f;
	size_t hlen, flen;

	SC_ENSURE_ARG(scheme && rest && u);
	memset(u, 0, sizeof *u);
	if (strncmp(rest, "//", 2)) {
		set_err(err, errlen, "expected //host after the scheme (RFC 4516)");
		return SC_ERR_CONFIG;
	}
	s = rest + 2;
	end = s + strlen(s);
	host = s;
	hlen = strcspn(s, "/?");
	s += hlen;
	if (url_hosts(scheme, host, hlen, u->uri, sizeof u->uri) != 0) {
		set_err(err, errlen, "bad host list in LDAP URL (at most 8 hosts)");
		return SC_ERR_CONFIG;
	}
	if (*s == '/')
		s++;
	next_field(&s, end, &f, &flen);
	if (pct_decode(f, flen, u->base, sizeof u->base) != 0) {
		set_err(err, errlen, "bad or too long base DN in LDAP URL");
		return SC_ERR_CONFIG;
	}
	next_field(&s, end, &f, &flen);
	if (url_attrs(f, flen, u) != 0) {
		set_err(err, errlen, "bad attribute list in LDAP URL (at most 4)");
		return SC_ERR_CONFIG;
	}
	next_field(&s, end, &f, &flen);
	if (flen == 0 || (flen == 4 && !strncasecmp(f, "base", 4))) {
		u->scope = LDAP_SCOPE_BASE;
	} else if (flen == 3 && !strncasecmp(f, "one", 3)) {
		u->scope = LDAP_SCOPE_ONELEVEL;
	} else if (flen == 3 && !strncasecmp(f, "sub", 3)) {
		u->scope = LDAP_SCOPE_SUBTREE;
	} else {
		set_err(err, errlen, "LDAP URL scope must be base, one or sub");
		return SC_ERR_CONFIG;
	}
	next_field(&s, end, &f, &flen);
	if (url_exts(s, end, u) != 0) {
		set_err(err, errlen, "bad or unsupported critical LDAP URL extension "
			"(known: x-ca-dn=DN)");
		return SC_ERR_CONFIG;
	}
	if (flen == 0) {
		snprintf(u->filter, sizeof u->filter, "(mail=%%s)");
	} else if (flen >= sizeof u->filter) {
		set_err(err, errlen, "LDAP URL filter too long");
		return SC_ERR_CONFIG;
	} else {
		memcpy(u->filter, f, flen);
		u->filter[flen] = '\0';
	}
	if (!url_filter_ok(u->filter)) {
		set_err(err, errlen, "LDAP URL filter needs %s for the address and only "
			"%XX escapes otherwise");
		return SC_ERR_CONFIG;
	}
	return SC_OK;
}

sc_status sc_repo_ldap_escape(const char *in, size_t len, char *out, size_t size,
			      size_t *outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	SC_ENSURE_ARG(out && size > 0 && (in || len == 0));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0') {
			if (o + 3 >= size)
				return SC_ERR_TOO_LONG;
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (o + 1 >= size)
				return SC_ERR_TOO_LONG;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return SC_OK;
}

/* The byte a "%XX" in a filter template at @p p stands for, or -1 when XX is
 * not two hex digits or is 00 (a NUL would cut the filter short). */
static int filter_pct(const char *p)
{
	int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;

	if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
		return -1;
	return hi * 16 + lo;
}

sc_status sc_repo_ldap_filter(const char *tmpl, const char *key, size_t keylen, char *out,
			      size_t size)
{
	size_t o = 0;

	SC_ENSURE_ARG(tmpl && out && size > 0 && (key || keylen == 0));
	for (const char *p = tmpl; *p; p++) {
		if (*p == '%' && p[1] == 's') {
			size_t n;

			SC_TRY(sc_repo_ldap_escape(key, keylen, out + o, size - o, &n));
			o += n;
			p++;
			continue;
		}
		if (o + 1 >= size)
			return SC_ERR_TOO_LONG;
		if (*p == '%') {
			int v = filter_pct(p);

			if (v < 0)
				return SC_ERR_SYNTAX;
			out[o++] = (char)v;
			p += 2;
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
	return SC_OK;
}

/* The attribute whose assertion value ends at @p end in @p f: the text after the
 * last '(' up to the '=' that starts the value, when it is an attribute
 * description (RFC 4512 2.5) and the match is equality or substrings. */
static void filter_attr(const char *f, size_t end, char *attr, size_t size)
{
	size_t eq = end, open;

	attr[0] = '\0';
	while (eq > 0 && f[eq - 1] != '=' && f[eq - 1] != '(')
		eq--;
	if (eq == 0 || f[eq - 1] != '=')
		return;
	eq--;
	for (open = eq; open > 0 && f[open - 1] != '('; open--)
		if (!((f[open - 1] >= 'a' && f[open - 1] <= 'z') ||
		      (f[open - 1] >= 'A' && f[open - 1] <= 'Z') ||
		      (f[open - 1] >= '0' && f[open - 1] <= '9') ||
		      f[open - 1] == '-' || f[open - 1] == ';' || f[open - 1] == '.'))
			return; /* ~=, >=, <=, extensible: not an address match */
	if (open == 0 || open == eq || eq - open >= size)
		return;
	memcpy(attr, f + open, eq - open);
	attr[eq - open] = '\0';
}

sc_status sc_repo_ldap_filter_all(const char *tmpl, char *out, size_t size, char *attr,
				  size_t attrsize)
{
	size_t o = 0;
	int first = 1;

	SC_ENSURE_ARG(tmpl && out && size > 0 && (!attr || attrsize > 0));
	if (attr)
		attr[0] = '\0';
	for (const char *p = tmpl; *p; p++) {
		if (o + 1 >= size)
			return SC_ERR_TOO_LONG;
		if (*p == '%' && p[1] == 's') {
			/* RFC 4515 3: an unescaped '*' in the value is a presence or
			 * substrings match: any address in that attribute */
			if (first && attr)
				filter_attr(out, o, attr, attrsize);
			first = 0;
			out[o++] = '*';
			p++;
			continue;
		}
		if (*p == '%') {
			int v = filter_pct(p);

			if (v < 0)
				return SC_ERR_SYNTAX;
			out[o++] = (char)v;
			p += 2;
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
	return SC_OK;
}
