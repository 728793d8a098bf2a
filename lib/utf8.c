/*
 * utf8.c - strict UTF-8 validation (RFC 3629). Pure functions, used by every
 * process that parses addresses or other text that may carry UTF-8.
 */
#include "utf8.h"

size_t sc_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c;
	size_t n;
	unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

	if (len == 0)
		return 0;
	c = s[0];
	if (c < 0x80)
		return 1;
	/*
	 * RFC 3629 section 4 (UTF8-2 .. UTF8-4): the second byte's range depends on
	 * the lead byte; this excludes overlongs (C0, C1, E0 80-9F, F0 80-8F),
	 * surrogates (ED A0-BF) and code points above U+10FFFF (F4 90-BF, F5-FF).
	 */
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

int sc_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		n = sc_utf8_seq(p + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}
