/*
 * writerproto_fuzz.c - fuzz target for the writer protocol decoder
 * (daemon/writer_proto.c): what the writer process reads from the network
 * process, and what the network process reads back. The input is one datagram.
 *
 * Invariants (abort() when broken): every decoder either refuses or yields
 * NUL-terminated strings within their fields; whatever a decoder accepts
 * encodes again to the same octets (the encoding is canonical, so there is no
 * second spelling of a request for a filter to miss).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "writer_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t again[WP_MSG_MAX];

static void same(const uint8_t *data, size_t size, sc_status rc, size_t len)
{
	if (rc != SC_OK || len != size || memcmp(again, data, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_msg m;
	struct wp_submit s;
	struct sc_submission sub;
	char id[SC_QUEUE_ID_LEN + 1], msg[WP_ERRMSG_MAX];
	sc_status st, rc;
	size_t len = 0;

	if (wp_header_decode(data, size, &m) != SC_OK)
		return 0;
	if (m.len != size - WP_HDR_LEN)
		abort();
	if (wp_decode_submit(&m, &s) == SC_OK) {
		if (strlen(s.address) >= sizeof s.address || strlen(s.client) >= sizeof s.client ||
		    !s.chain || s.chain < data || s.chain + s.chain_len > data + size)
			abort();
		rc = wp_encode_submit(again, sizeof again, m.seq, &s, &len);
		same(data, size, rc, len);
	}
	if (wp_decode_store(&m, id) == SC_OK) {
		if (!sc_queue_id_valid(id))
			abort();
		rc = wp_encode_store(again, sizeof again, m.seq, id, &len);
		same(data, size, rc, len);
	}
	if (wp_decode_sub(&m, &sub) == SC_OK) {
		if (strlen(sub.subject) >= sizeof sub.subject || !sc_queue_id_valid(sub.id))
			abort();
		rc = wp_encode_sub(again, sizeof again, m.seq, &sub, &len);
		same(data, size, rc, len);
	}
	if (wp_decode_err(&m, &st, msg, sizeof msg) == SC_OK) {
		if (st == SC_OK || strlen(msg) >= sizeof msg)
			abort();
		rc = wp_encode_err(again, sizeof again, m.seq, st, msg, &len);
		same(data, size, rc, len);
	}
	return 0;
}
