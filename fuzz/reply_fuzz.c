/*
 * reply_fuzz.c - sc_reply_feed() on arbitrary bytes split at LF into lines (CR
 * stripped as smtp.c does): every status must be one the header documents, the
 * accessors must stay consistent, nothing may crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <smtpcert/smtpcert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	sc_reply *r;

	/* small limits so the fuzzer reaches them */
	if (sc_reply_new(16, 2048, &r) != SC_OK)
		return 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *next = nl ? nl + 1 : end;
		sc_status st;

		if (len && p[len - 1] == '\r')
			len--;
		st = sc_reply_feed(r, p, len);
		if (st == SC_OK) {
			size_t n = sc_reply_count(r), tl;
			const char *e = sc_reply_enhanced(r);

			if (!n || sc_reply_code(r) < 200 || sc_reply_code(r) > 559)
				__builtin_trap();
			if (!sc_reply_text(r, n - 1, &tl) || sc_reply_text(r, n, NULL))
				__builtin_trap();
			if (e[0] && e[0] != '0' + sc_reply_code(r) / 100)
				__builtin_trap();
			(void)strlen(sc_reply_message(r));
			sc_reply_reset(r);
		} else if (st != SC_AGAIN) {
			if (st != SC_ERR_PROTOCOL && st != SC_ERR_TOO_LONG && st != SC_ERR_TOO_MANY)
				__builtin_trap();
			sc_reply_reset(r);
		}
		p = next;
	}
	sc_reply_free(r);
	return 0;
}
