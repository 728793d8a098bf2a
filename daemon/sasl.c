/*
 * sasl.c - base64 and PLAIN for SMTP AUTH (see sasl.h). Pure functions; daemon
 * process, event loop thread.
 */
#include <string.h>
#include <strings.h>

#include "sasl.h"

static int sasl_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

sc_status sasl_b64_decode(const char *in, size_t len, char *out, size_t size, size_t *outlen)
{
	size_t o = 0;

	*outlen = 0;
	if (size == 0)
		return SC_ERR_TOO_LONG;
	out[0] = '\0';
	/* RFC 4954 4: a single "=" is an empty response */
	if (len == 1 && in[0] == '=')
		return SC_OK;
	if (len == 0 || len % 4 != 0)
		return SC_ERR_ENCODING;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		unsigned long bits = 0;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			if (c == '=' && i + 4 == len && k >= 2) {
				/* padding only at the end: "x=" then "=" */
				if (k == 2 && in[i + 3] != '=')
					return SC_ERR_ENCODING;
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return SC_ERR_ENCODING;
			v[k] = sasl_b64_value(c);
			if (v[k] < 0)
				return SC_ERR_ENCODING;
		}
		bits = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
		       (unsigned long)v[2] << 6 | (unsigned long)v[3];
		/* RFC 4648 3.5: the unused bits before padding must be zero */
		if ((pad == 1 && (bits & 0xff)) || (pad == 2 && (bits & 0xffff)))
			return SC_ERR_ENCODING;
		if (o + 3 - (size_t)pad + 1 > size)
			return SC_ERR_TOO_LONG;
		out[o++] = (char)(bits >> 16);
		if (pad < 2)
			out[o++] = (char)(bits >> 8 & 0xff);
		if (pad < 1)
			out[o++] = (char)(bits & 0xff);
	}
	out[o] = '\0';
	*outlen = o;
	return SC_OK;
}

sc_status sasl_plain_split(char *msg, size_t len, const char **authcid, const char **passwd)
{
	char *nul1 = memchr(msg, '\0', len), *nul2;
	const char *authzid = msg;

	if (!nul1)
		return SC_ERR_SYNTAX;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	/* exactly two separators: the password is the rest and holds no NUL */
	if (!nul2 || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - msg)))
		return SC_ERR_SYNTAX;
	*authcid = nul1 + 1;
	*passwd = nul2 + 1;
	if (nul2 == nul1 + 1 || (size_t)(nul2 + 1 - msg) == len)
		return SC_ERR_SYNTAX; /* empty authcid or passwd */
	/* RFC 4616 2: an authzid asks to act as someone else; allowed only when it
	 * names the authenticating user (ASCII case aside, as in addresses) */
	if (*authzid && strcasecmp(authzid, *authcid) != 0)
		return SC_ERR_MISMATCH;
	return SC_OK;
}
