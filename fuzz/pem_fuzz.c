/*
 * pem_fuzz.c - fuzz target for sc_pem_decode() and the encoder.
 *
 * Every decoded block is re-encoded (sized with sc_pem_encoded_size) and decoded
 * again: the label and bytes must come back identical (abort() otherwise). Since
 * the decoder refuses non-canonical padding, this is a true round trip. The
 * framed encoder (the CERT answer's "250-" lines) must write that same text with
 * each line wrapped, into a buffer of exactly sc_pem_framed_size() octets (ASan
 * sees a read past the DER or a write past the buffer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <smtpcert/smtpcert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_DER 65536
#define FUZZ_MAX_BLOCKS 16

struct expect {
	const char *label;
	const uint8_t *der;
	size_t len;
	int seen;
};

static sc_status compare_block(void *arg, const char *label, const uint8_t *der, size_t len)
{
	struct expect *e = arg;

	if (e->seen++ || strcmp(label, e->label) != 0 || len != e->len ||
	    (len && memcmp(der, e->der, len) != 0))
		abort();
	return SC_OK;
}

/* sc_pem_encode_framed(der) == every line of @p pem as "250-" line "\r\n". */
static void check_framed(const uint8_t *der, size_t len, const char *label, const char *pem,
			 size_t n)
{
	size_t need = sc_pem_framed_size(len, label, 4, 2), m = 0, o = 0;
	char *framed = malloc(need ? need : 1);

	if (!framed)
		abort();
	if (sc_pem_encode_framed(der, len, label, "250-", "\r\n", framed, need, &m) != SC_OK ||
	    m != need)
		abort();
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(pem + i, '\n', n - i);
		size_t ll;

		if (!nl)
			abort();
		ll = (size_t)(nl - (pem + i));
		if (o + 4 + ll + 2 > m || memcmp(framed + o, "250-", 4) != 0 ||
		    memcmp(framed + o + 4, pem + i, ll) != 0 ||
		    memcmp(framed + o + 4 + ll, "\r\n", 2) != 0)
			abort();
		o += 4 + ll + 2;
		i += ll + 1;
	}
	if (o != m)
		abort();
	free(framed);
}

static sc_status reencode_block(void *arg, const char *label, const uint8_t *der, size_t len)
{
	size_t need = sc_pem_encoded_size(len, label), n = 0, nb = 0;
	struct expect e = { label, der, len, 0 };
	char *pem;
	size_t *blocks = arg;

	if (!der || strlen(label) > SC_PEM_LABEL_MAX || len > FUZZ_MAX_DER)
		abort();
	(*blocks)++;
	pem = malloc(need);
	if (!pem)
		abort();
	if (sc_pem_encode(der, len, label, pem, need, &n) != SC_OK || n + 1 != need ||
	    strlen(pem) != n)
		abort();
	if (sc_pem_decode(pem, n, len, 1, compare_block, &e, &nb) != SC_OK || nb != 1 ||
	    e.seen != 1)
		abort();
	check_framed(der, len, label, pem, n);
	free(pem);
	return SC_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t blocks = 0, nb = 0;
	sc_status rc;

	rc = sc_pem_decode((const char *)data, size, FUZZ_MAX_DER, FUZZ_MAX_BLOCKS,
			   reencode_block, &blocks, &nb);
	if (nb != blocks || nb > FUZZ_MAX_BLOCKS)
		abort();
	if (rc == SC_OK && nb == 0)
		abort();
	if (rc == SC_ERR_NOT_FOUND && nb != 0)
		abort();
	/* Small limits take the TOO_LONG / TOO_MANY paths on the same input. */
	blocks = 0;
	rc = sc_pem_decode((const char *)data, size, 3, 1, reencode_block, &blocks, &nb);
	if (nb != blocks || nb > 1)
		abort();
	return 0;
}
