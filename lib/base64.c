/*
 * base64.c - RFC 4648 section 4 base64 (see smtpcert/base64.h). Pure functions,
 * used by every process.
 *
 * The encoder is on the path of every CERT answer (the PEM of the certificate):
 * after the LMDB lookup it was the largest cost per request (callgrind: ~4,900
 * of ~18,000 instructions for a 1.2 KB certificate; with SSSE3 still 10% of the
 * daemon's time at 256 x 16 pipelined, docs/performance.md). Chosen at run
 * time, on x86-64:
 * - with AVX-512 VBMI, 48 octets (one PEM line) per step: a byte permute, a
 *   multishift and a 64-entry permute (Wojciech Mula and Daniel Lemire,
 *   "Base64 encoding and decoding at almost the speed of a memory copy", 2019);
 * - with SSSE3, 12 octets per step (the shuffle-multiply method of their
 *   "Faster Base64 Encoding and Decoding Using AVX2 Instructions", 2018,
 *   section 2);
 * elsewhere, and for the last groups, two lookups per group in a pair table.
 */
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define B64_SSSE3 1
#define B64_VBMI 1
#endif

#include "smtpcert/smtpcert.h"
#include "base64_int.h"

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

#ifdef B64_SSSE3
/*
 * 12 octets (four groups) per step, loading 16: each 32-bit lane gets the
 * octets (1, 0, 2, 1) of its group, two masked multiplies move the four 6-bit
 * fields into the four octets of the lane, and a 16-entry table holds the
 * offset from the field to its character for each range of the alphabet.
 * @return the octets done (a multiple of 12; the caller does the rest).
 */
__attribute__((target("ssse3"))) static size_t b64_encode_ssse3(const uint8_t *in, size_t n,
								size_t avail, char *out)
{
	const __m128i order = _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
	const __m128i offsets = _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
					      '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
					      '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
	size_t i = 0, o = 0;

	for (; i + 12 <= n && i + 16 <= avail; i += 12, o += 16) {
		__m128i v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + i)), order);
		/* fields a and c: to the low bits of the lane's two 16-bit halves */
		__m128i ac = _mm_mulhi_epu16(_mm_and_si128(v, _mm_set1_epi32(0x0fc0fc00)),
					     _mm_set1_epi32(0x04000040));
		/* fields b and d: to the high octet of each half */
		__m128i bd = _mm_mullo_epi16(_mm_and_si128(v, _mm_set1_epi32(0x003f03f0)),
					     _mm_set1_epi32(0x01000010));
		__m128i idx = _mm_or_si128(ac, bd);
		/* range of each field: 0 for a-z, 1..12 for 0-9 + /, 13 for A-Z */
		__m128i r = _mm_subs_epu8(idx, _mm_set1_epi8(51));
		__m128i upper = _mm_cmpgt_epi8(_mm_set1_epi8(26), idx);

		r = _mm_or_si128(r, _mm_and_si128(upper, _mm_set1_epi8(13)));
		_mm_storeu_si128((__m128i *)(out + o),
				 _mm_add_epi8(idx, _mm_shuffle_epi8(offsets, r)));
	}
	return i;
}
#endif

#ifdef B64_VBMI
/*
 * 48 octets (16 groups) per step. The load is masked to the 48 octets, so it
 * reads nothing past them (masked-off octets do not fault). Each 32-bit lane
 * gets the octets (1, 0, 2, 1) of its group, as in the SSSE3 path; the
 * multishift then takes, for each output octet, the eight bits from offset
 * 10, 4, 22 and 16 of the lane (the four 6-bit fields, with two stray bits on
 * top), and the alphabet permute looks only at the low six bits of its index.
 * @return the octets done (a multiple of 48; the caller does the rest).
 */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static size_t
b64_encode_vbmi(const uint8_t *in, size_t n, char *out)
{
	const __m512i order = _mm512_setr_epi32(
		0x01020001, 0x04050304, 0x07080607, 0x0a0b090a, 0x0d0e0c0d, 0x10110f10,
		0x13141213, 0x16171516, 0x191a1819, 0x1c1d1b1c, 0x1f201e1f, 0x22232122,
		0x25262425, 0x28292728, 0x2b2c2a2b, 0x2e2f2d2e);
	const __m512i shifts = _mm512_set1_epi64(0x3036242a1016040aLL);
	const __m512i lookup = _mm512_loadu_si512((const void *)alphabet);
	size_t i = 0, o = 0;

	for (; i + 48 <= n; i += 48, o += 64) {
		__m512i v = _mm512_maskz_loadu_epi8(0xffffffffffffULL, in + i);

		v = _mm512_permutexvar_epi8(order, v);
		v = _mm512_multishift_epi64_epi8(shifts, v);
		_mm512_storeu_si512((void *)(out + o), _mm512_permutexvar_epi8(v, lookup));
	}
	return i;
}
#endif

/* Which encoder runs: the best the CPU has, or one a test chose. */
static enum sc_b64_path b64_path = SC_B64_BEST;

int sc_b64_use(enum sc_b64_path path)
{
	switch (path) {
	case SC_B64_BEST:
	case SC_B64_PAIRS:
		break;
#ifdef B64_SSSE3
	case SC_B64_SSSE3:
		if (!__builtin_cpu_supports("ssse3"))
			return 0;
		break;
#endif
#ifdef B64_VBMI
	case SC_B64_VBMI:
		if (!__builtin_cpu_supports("avx512vbmi") || !__builtin_cpu_supports("avx512bw"))
			return 0;
		break;
#endif
	default:
		return 0;
	}
	b64_path = path;
	return 1;
}

void sc_b64_encode_groups(const uint8_t *in, size_t n, size_t avail, char *out)
{
	size_t i = 0, o = 0;

	(void)avail;
#ifdef B64_VBMI
	if (n >= 48 && (b64_path == SC_B64_VBMI ||
			(b64_path == SC_B64_BEST && __builtin_cpu_supports("avx512vbmi") &&
			 __builtin_cpu_supports("avx512bw")))) {
		i = b64_encode_vbmi(in, n, out);
		o = i / 3 * 4;
	}
#endif
#ifdef B64_SSSE3
	if (n - i >= 12 && (b64_path == SC_B64_SSSE3 || b64_path == SC_B64_VBMI ||
			    (b64_path == SC_B64_BEST && __builtin_cpu_supports("ssse3")))) {
		size_t k = b64_encode_ssse3(in + i, n - i, avail - i, out + o);

		i += k;
		o += k / 3 * 4;
	}
#endif
	for (; i + 3 <= n; i += 3, o += 4) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		memcpy(out + o, pairs[v >> 12], 2);
		memcpy(out + o + 2, pairs[v & 4095], 2);
	}
}

sc_status sc_base64_encode(const void *in, size_t n, char *out, size_t size, size_t *outlen)
{
	const uint8_t *p = in;
	size_t o, whole, i;

	SC_ENSURE(out != NULL && (in != NULL || n == 0), SC_ERR_ARG);
	if (n > (SIZE_MAX / 4) * 3 - 3 || size < SC_BASE64_LEN(n) + 1)
		return SC_ERR_TOO_LONG;
	/* whole groups, then the padded tail */
	whole = n - n % 3;
	sc_b64_encode_groups(p, whole, n, out);
	i = whole;
	o = whole / 3 * 4;
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
