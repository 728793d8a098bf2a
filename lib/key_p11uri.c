/*
 * key_p11uri.c - RFC 7512 "pkcs11:" URIs: parsing and percent-decoding, the module
 * to load and the PIN to log in with. Used by lib/key_pkcs11.c (loading a key) and
 * lib/key_p11gen.c (generating one). Runs in the smtpcert client's process.
 *
 * Every value is bounded (KEY_P11_ATTR_MAX / KEY_P11_PATH_MAX after decoding, the
 * whole URI KEY_P11_URI_MAX); text attributes may not decode to a NUL byte (only
 * id is binary). The PIN never appears in a message: key_p11_uri_display() cuts
 * the query off.
 */
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "smtpcert/smtpcert.h"
#include "key_int.h"
#include "errmsg.h"

void key_p11_uri_display(const char *uri, char *buf, size_t size)
{
	size_t n = strcspn(uri ? uri : "", "?");

	if (!buf || !size)
		return;
	if (n > 200)
		snprintf(buf, size, "%.200s...", uri);
	else
		snprintf(buf, size, "%.*s", (int)n, uri ? uri : "");
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Percent-decode @p len bytes of @p s into @p out (@p size bytes). @p binary allows
 * NUL bytes (the id); text gets a terminating NUL.
 * @return the decoded length, or -1 (bad escape, NUL in text, too long).
 */
static long pct_decode(const char *s, size_t len, unsigned char *out, size_t size, int binary)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if ((c == 0 && !binary) || n + (binary ? 0 : 1) >= size)
			return -1;
		out[n++] = (unsigned char)c;
	}
	if (!binary)
		out[n] = '\0';
	return (long)n;
}

struct uri_attr {
	const char *name;
	size_t off;      /* offset of the value in struct key_p11_uri */
	size_t has_off;  /* offset of its has_ flag */
	size_t size;
};

#define UA(n, f, h) { n, offsetof(struct key_p11_uri, f), offsetof(struct key_p11_uri, h), \
		      sizeof(((struct key_p11_uri *)0)->f) }

/* RFC 7512 section 2.3 path attributes (id and slot-id are handled apart). */
static const struct uri_attr path_attrs[] = {
	UA("token", token, has_token),
	UA("manufacturer", manufacturer, has_manufacturer),
	UA("serial", serial, has_serial),
	UA("model", model, has_model),
	UA("object", object, has_object),
	UA("type", type, has_type),
	UA("slot-description", slot_description, has_slot_description),
	UA("slot-manufacturer", slot_manufacturer, has_slot_manufacturer),
	UA("library-description", library_description, has_library_description),
	UA("library-manufacturer", library_manufacturer, has_library_manufacturer),
};

static const struct uri_attr query_attrs[] = {
	UA("module-path", module_path, has_module_path),
	UA("pin-value", pin_value, has_pin_value),
	UA("pin-source", pin_source, has_pin_source),
};

static sc_status uri_attr_set(struct key_p11_uri *u, const struct uri_attr *a,
			      const char *v, size_t vlen, char *err, size_t errlen)
{
	int *has = (int *)((char *)u + a->has_off);

	if (*has)
		return sc_fail(err, errlen, SC_ERR_SYNTAX,
				"pkcs11: URI: attribute %s given twice", a->name);
	if (pct_decode(v, vlen, (unsigned char *)u + a->off, a->size, 0) < 0)
		return sc_fail(err, errlen, SC_ERR_SYNTAX,
				"pkcs11: URI: bad value for %s (escape, NUL byte or too long)",
				a->name);
	*has = 1;
	return SC_OK;
}

/* One "name=value" of the path (@p query = 0) or the query. */
static sc_status uri_pair(struct key_p11_uri *u, const char *s, size_t len, int query,
			  char *err, size_t errlen)
{
	const char *eq = memchr(s, '=', len);
	size_t nlen, vlen;
	const char *v;
	const struct uri_attr *tab = query ? query_attrs : path_attrs;
	size_t ntab = query ? sizeof query_attrs / sizeof query_attrs[0]
			    : sizeof path_attrs / sizeof path_attrs[0];
	char num[32];
	char *end;

	if (!eq)
		return sc_fail(err, errlen, SC_ERR_SYNTAX,
				"pkcs11: URI: expected name=value, got \"%.*s\"",
				(int)(len > 40 ? 40 : len), s);
	nlen = (size_t)(eq - s);
	v = eq + 1;
	vlen = len - nlen - 1;
	for (size_t i = 0; i < ntab; i++)
		if (strlen(tab[i].name) == nlen && !memcmp(tab[i].name, s, nlen))
			return uri_attr_set(u, &tab[i], v, vlen, err, errlen);
	if (!query && nlen == 2 && !memcmp(s, "id", 2)) {
		long n;

		if (u->has_id)
			return sc_fail(err, errlen, SC_ERR_SYNTAX,
					"pkcs11: URI: attribute id given twice");
		n = pct_decode(v, vlen, u->id, sizeof u->id, 1);
		if (n < 0)
			return sc_fail(err, errlen, SC_ERR_SYNTAX, "pkcs11: URI: bad id value");
		u->id_len = (size_t)n;
		u->has_id = 1;
		return SC_OK;
	}
	if (!query && nlen == 7 && !memcmp(s, "slot-id", 7)) {
		/* RFC 7512: slot-id is a decimal CK_SLOT_ID. */
		if (u->has_slot_id || vlen == 0 || vlen >= sizeof num)
			return sc_fail(err, errlen, SC_ERR_SYNTAX, "pkcs11: URI: bad slot-id");
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		errno = 0;
		u->slot_id = strtoul(num, &end, 10);
		if (errno || *end || !isdigit((unsigned char)num[0]))
			return sc_fail(err, errlen, SC_ERR_SYNTAX, "pkcs11: URI: bad slot-id");
		u->has_slot_id = 1;
		return SC_OK;
	}
	/* Vendor attributes ("x-") and query attributes we do not know (module-name,
	 * which names a p11-kit registered module) do not change what is selected. */
	if (query || (nlen > 2 && !memcmp(s, "x-", 2)) ||
	    (nlen == 15 && !memcmp(s, "library-version", 15)))
		return SC_OK;
	return sc_fail(err, errlen, SC_ERR_SYNTAX, "pkcs11: URI: unknown attribute \"%.*s\"",
			(int)(nlen > 40 ? 40 : nlen), s);
}

sc_status key_p11_uri_parse(const char *uri, struct key_p11_uri *u, char *err, size_t errlen)
{
	size_t len, i, qpos;

	SC_ENSURE_ARG(uri);
	SC_ENSURE_ARG(u);
	memset(u, 0, sizeof *u);
	len = strnlen(uri, KEY_P11_URI_MAX + 1);
	if (len > KEY_P11_URI_MAX)
		return sc_fail(err, errlen, SC_ERR_TOO_LONG, "pkcs11: URI longer than %d bytes",
				KEY_P11_URI_MAX);
	if (len < 7 || strncasecmp(uri, "pkcs11:", 7))
		return sc_fail(err, errlen, SC_ERR_SYNTAX, "not a pkcs11: URI");
	for (i = 7; i < len; i++)
		if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] >= 0x7f)
			return sc_fail(err, errlen, SC_ERR_SYNTAX,
					"pkcs11: URI: blank, control or 8-bit character "
					"(percent-encode it)");
	qpos = 7 + strcspn(uri + 7, "?");
	/* Path: name=value pairs separated by ';' (RFC 7512 section 2.3). */
	for (i = 7; i < qpos;) {
		size_t n = strcspn(uri + i, ";?");

		if (i + n > qpos)
			n = qpos - i;
		if (n)
			SC_TRY(uri_pair(u, uri + i, n, 0, err, errlen));
		i += n + 1;
	}
	/* Query: pairs separated by '&'. */
	for (i = qpos + 1; i < len;) {
		size_t n = strcspn(uri + i, "&");

		if (n)
			SC_TRY(uri_pair(u, uri + i, n, 1, err, errlen));
		i += n + 1;
	}
	if (u->has_pin_value && u->has_pin_source)
		return sc_fail(err, errlen, SC_ERR_SYNTAX,
				"pkcs11: URI: pin-value and pin-source are exclusive");
	if (u->has_type && strcmp(u->type, "private"))
		return sc_fail(err, errlen, SC_ERR_SYNTAX,
				"pkcs11: URI names a %s object, not a private key", u->type);
	return SC_OK;
}

const char *key_p11_module(const struct key_p11_uri *u, const struct sc_key_opts *o)
{
	const char *env = getenv("SMTPCERT_PKCS11_MODULE");

	/* The URI's own module-path is the most specific; the caller's (an option or
	 * the configuration) serves URIs that do not name one. */
	if (u && u->has_module_path && u->module_path[0])
		return u->module_path;
	if (o && o->pkcs11_module && o->pkcs11_module[0])
		return o->pkcs11_module;
	if (env && env[0])
		return env;
	/* p11-kit's proxy reaches every module the system registered. */
	return "p11-kit-proxy.so";
}

/* First line of a pin-source file (RFC 7512: "file:" URI or a path). */
static sc_status pin_from_file(const char *src, char *pin, size_t size, char *err,
			       size_t errlen)
{
	const char *path = !strncmp(src, "file://", 7) ? src + 7
			   : !strncmp(src, "file:", 5) ? src + 5 : src;
	char buf[KEY_P11_ATTR_MAX + 2];
	ssize_t r;
	size_t n;
	int fd;

	if (path[0] != '/')
		return sc_fail(err, errlen, SC_ERR_SYNTAX,
				"pkcs11: URI: pin-source must be an absolute file name");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sc_fail(err, errlen, errno == ENOENT ? SC_ERR_NOT_FOUND : SC_ERR_IO,
				"pin-source %s: %s", path, strerror(errno));
	do
		r = read(fd, buf, sizeof buf - 1);
	while (r < 0 && errno == EINTR);
	close(fd);
	if (r < 0)
		return sc_fail(err, errlen, SC_ERR_IO, "pin-source %s: %s", path,
				strerror(errno));
	buf[r] = '\0';
	n = strcspn(buf, "\r\n");
	if (n == (size_t)r && (size_t)r == sizeof buf - 1) {
		OPENSSL_cleanse(buf, sizeof buf);
		return sc_fail(err, errlen, SC_ERR_TOO_LONG, "pin-source %s: PIN too long", path);
	}
	if (n >= size || memchr(buf, '\0', n)) {
		OPENSSL_cleanse(buf, sizeof buf);
		return sc_fail(err, errlen, SC_ERR_SYNTAX, "pin-source %s: not a PIN", path);
	}
	memcpy(pin, buf, n);
	pin[n] = '\0';
	OPENSSL_cleanse(buf, sizeof buf);
	return SC_OK;
}

sc_status key_p11_pin(const struct key_p11_uri *u, const struct sc_key_opts *o, char *pin,
		      size_t size, int *have, char *err, size_t errlen)
{
	const char *src = NULL;

	*have = 0;
	pin[0] = '\0';
	if (o && o->pin)
		src = o->pin;
	else if (u->has_pin_value)
		src = u->pin_value;
	if (src) {
		if (strlen(src) >= size)
			return sc_fail(err, errlen, SC_ERR_TOO_LONG, "PIN too long");
		memcpy(pin, src, strlen(src) + 1);
		*have = 1;
		return SC_OK;
	}
	if (u->has_pin_source) {
		SC_TRY(pin_from_file(u->pin_source, pin, size, err, errlen));
		*have = 1;
	}
	return SC_OK;
}
