/*
 * mime_fuzz.c - fuzz target for the header block parser and what reads it
 * (lib/mime.c, lib/mime_addr.c): sc_mime_header_parse() complete and in
 * pieces, lookup, unfolding, the message kind, the outer/inner split and
 * the address lists of every field.
 *
 * Invariants (abort() when broken): the documented statuses only; fields lie
 * inside the input, in order, and their raw text is what the header consumed;
 * a prefix of a parsable header either needs more input or gives the same
 * error class; unfolded values contain no line end; addresses parse to keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <smtpcert/smtpcert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fields(const sc_mime_header *h, const char *s, size_t used)
{
	size_t i, n = sc_mime_header_count(h), pos = 0;
	static char buf[SC_MIME_HEADER_MAX + 1];

	for (i = 0; i < n; i++) {
		const struct sc_mime_field *f = sc_mime_header_field(h, i);
		struct sc_addr addrs[16];
		size_t na;
		sc_status rc;

		if (!f || f->raw != s + pos || f->name != f->raw || f->name_len == 0)
			abort();
		if (f->value < f->name + f->name_len || f->value + f->value_len > f->raw + f->raw_len)
			abort();
		pos += f->raw_len;
		if (sc_mime_header_find(h, "x", 0) && !sc_mime_header_find(h, "X", 0))
			abort();
		if (sc_mime_unfold(f, buf, sizeof buf) != SC_OK || memchr(buf, '\n', strlen(buf)))
			abort();
		(void)sc_mime_field_is_outer(f, (int)(i & 1));
		rc = sc_mime_addresses(f->value, f->value_len, addrs, 16, &na);
		if (rc == SC_OK) {
			for (size_t j = 0; j < na; j++) {
				char key[SC_ADDR_KEY_MAX];

				if (sc_addr_key(&addrs[j], key, sizeof key, NULL) != SC_OK)
					abort();
			}
		} else if (rc != SC_ERR_SYNTAX && rc != SC_ERR_TOO_MANY) {
			abort();
		}
	}
	if (pos > used || used - pos > 2)
		abort();
	if ((unsigned)sc_mime_header_kind(h) > SC_MIME_COMPRESSED)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	sc_mime_header *h = NULL;
	size_t used = 0;
	sc_status rc;

	if (size > SC_MIME_HEADER_MAX + 1024)
		return 0;
	rc = sc_mime_header_parse(s, size, 1, &h, &used);
	if (rc == SC_OK) {
		if (used > size)
			abort();
		check_fields(h, s, used);
		sc_mime_header_free(h);
		/* Incomplete input: every proper prefix that ends before the block
		 * does asks for more or fails, never succeeds with another split. */
		if (used > 0) {
			sc_mime_header *p = NULL;
			size_t pu = 0;

			rc = sc_mime_header_parse(s, used - 1, 0, &p, &pu);
			if (rc == SC_OK)
				abort();
			sc_mime_header_free(p);
		}
	} else if (rc != SC_ERR_SYNTAX && rc != SC_ERR_TOO_LONG && rc != SC_ERR_TOO_MANY) {
		abort();
	}
	/* The whole input as one address list, too. */
	if (size < 4096) {
		struct sc_addr a[4];
		size_t n;

		rc = sc_mime_addresses(s, size, a, 4, &n);
		if (rc != SC_OK && rc != SC_ERR_SYNTAX && rc != SC_ERR_TOO_MANY)
			abort();
	}
	return 0;
}
