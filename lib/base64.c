/*
 * base64.c - RFC 4648 section 4 base64 (see smtpcert/base64.h). Pure functions,
 * used by every process.
 */
#include <stdint.h>
#include <string.h>

#include "smtpcert/smtpcert.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * The two characters of every 12-bit value, built by the compiler: a 3-octet
 * group is two lookups and two 2-octet stores instead of four of each (the PEM
 * of every CERT answer goes through here; 8 KiB, stays in the cache).
 */
#define B64C(v) ((v) < 26 ? 'A' + (v) : (v) < 52 ? 'a' + (v)-26 : (v) < 62 ? '0' + (v)-52 : (v) == 62 ? '+' : '/')
#define B64P1(x) { (char)B64C((x) >> 6), (char)B64C((x)&63) },
#define B64P4(x) B64P1(x) B64P1((x) + 1) B64P1((x) + 2) B64P1((x) + 3)
#define B64P16(x) B64P4(x) B64P4((x) + 4) B64P4((x) + 8) B64P4((x) + 12)
#define B64P64(x) B64P16(x) B64P16((x) + 16) B64P16((x) + 32) B64P16((x) + 48)
#define B64P256(x) B64P64(x) B64P64((x) + 64) B64P64((x) + 128) B64P64((x) + 192)
#define B64P1024(x) B64P256(x) B64P256((x) + 256) B64P256((x) + 512) B64P256((x) + 768)
static const char pairs[4096][2] = { B64P1024(0) B64P1024(1024) B64P1024(2048) B64P1024(3072) };

int sc_base64_value(unsigned char c)
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

sc_status sc_base64_encode(const void *in, size_t n, char *out, size_t size, size_t *outlen)
{
	const uint8_t *p = in;
	size_t o = 0;

	SC_ENSURE(out != NULL && (in != NULL || n == 0), SC_ERR_ARG);
	if (n > (SIZE_MAX / 4) * 3 - 3 || size < SC_BASE64_LEN(n) + 1)
		return SC_ERR_TOO_LONG;
	/* whole groups without a branch, then the padded tail */
	size_t whole = n - n % 3, i;

	for (i = 0; i < whole; i += 3, o += 4) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		memcpy(out + o, pairs[v >> 12], 2);
		memcpy(out + o + 2, pairs[v & 4095], 2);
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (n - i > 1 ? (uint32_t)p[i + 1] << 8 : 0);

		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = n - i > 1 ? alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return SC_OK;
}

sc_status sc_base64_decode(const char *in, size_t len, void *out, size_t size, size_t *outlen)
{
	uint8_t *d = out;
	size_t o = 0;

	SC_ENSURE(outlen != NULL && (in != NULL || len == 0), SC_ERR_ARG);
	*outlen = 0;
	if (len % 4 != 0)
		return SC_ERR_ENCODING;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		uint32_t bits;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			if (c == '=' && i + 4 == len && k >= 2) {
				/* padding only at the very end: "xx==" or "xxx=" */
				if (k == 2 && in[i + 3] != '=')
					return SC_ERR_ENCODING;
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return SC_ERR_ENCODING;
			v[k] = sc_base64_value(c);
			if (v[k] < 0)
				return SC_ERR_ENCODING;
		}
		bits = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		       (uint32_t)v[3];
		/* RFC 4648 3.5: the bits left over before padding must be zero */
		if ((pad == 1 && (bits & 0xff)) || (pad == 2 && (bits & 0xffff)))
			return SC_ERR_ENCODING;
		if (o + 3 - (size_t)pad > size)
			return SC_ERR_TOO_LONG;
		d[o++] = (uint8_t)(bits >> 16);
		if (pad < 2)
			d[o++] = (uint8_t)(bits >> 8 & 0xff);
		if (pad < 1)
			d[o++] = (uint8_t)(bits & 0xff);
	}
	*outlen = o;
	return SC_OK;
}
