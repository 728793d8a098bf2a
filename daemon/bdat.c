/*
 * bdat.c - BDAT, RFC 3030 CHUNKING without BINARYMIME: the message arrives in
 * chunks of announced size, no dot-stuffing, no end marker; "BDAT n LAST"
 * ends it. Owns the chunk bookkeeping of the session's transaction. Daemon
 * process, event loop.
 *
 *   BDAT n [LAST]  syntax -> 501 5.5.4 (the size is unknown: nothing can be
 *                  skipped); otherwise the n octets that follow the command are
 *                  ALWAYS read, also when the command is refused (RFC 3030 3:
 *                  "the receiver-SMTP MUST read and discard"), so the session
 *                  stays in sync: no greeting / CERC pending / no MAIL -> 503
 *                  5.5.1, no accepted RCPT -> 554 5.5.1, no delivery -> 502.
 *   a chunk        250 2.0.0 "n octets received"; over max_message_size ->
 *                  552 5.3.4 and the transaction is over (later BDATs: 503).
 *   LAST           the checks of mail_data_end() (bare CR/LF, line length,
 *                  size), then the delivery job's reply.
 * The data reader applies the DATA line checks in chunk mode (data.h): without
 * BINARYMIME the content is still CRLF lines (RFC 3030 2).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "transaction.h"

/* "n" or "n LAST" (RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [SP end-marker]). */
static int bdat_parse(const char *arg, size_t len, uint64_t *size, int *last)
{
	size_t i = 0;
	uint64_t x = 0;

	while (i < len && arg[i] >= '0' && arg[i] <= '9') {
		if (i >= 19)
			return 0;
		x = x * 10 + (uint64_t)(arg[i] - '0');
		i++;
	}
	if (i == 0)
		return 0;
	*size = x;
	*last = 0;
	if (i == len)
		return 1;
	if (arg[i] != ' ')
		return 0;
	while (i < len && arg[i] == ' ')
		i++;
	if (len - i == 4 && strncasecmp(arg + i, "LAST", 4) == 0) {
		*last = 1;
		return 1;
	}
	return 0;
}

/* SESSION_DATA input of a refused BDAT: drop the chunk. */
static void bdat_discard_input(struct session *s, sc_buf *in)
{
	size_t n = sc_buf_len(in);

	if (n > s->bdat_discard)
		n = (size_t)s->bdat_discard;
	sc_buf_consume(in, n);
	s->bdat_discard -= n;
	if (s->bdat_discard == 0)
		session_enter(s, s->helo[0] ? SESSION_READY : SESSION_CONNECTED);
}

/* The reply was given: read and drop the @p size octets of the chunk. */
static void bdat_discard(struct session *s, uint64_t size)
{
	if (size == 0)
		return;
	s->bdat_discard = size;
	s->bulk_input = bdat_discard_input;
	session_enter(s, SESSION_DATA);
}

/* The announced octets of a chunk have all arrived. */
static void bdat_chunk_done(struct session *s)
{
	struct transaction *tx = s->tx;

	if (tx->chunk_last || tx->data->verdict == DATA_TOO_BIG ||
	    tx->data->verdict == DATA_IO || tx->data->verdict == DATA_NOSPACE) {
		/* the message is complete, or can no longer succeed: say so now
		 * (RFC 3030 3: a failed chunk ends the transaction) */
		mail_data_end(s);
		return;
	}
	reply(s, "250 2.0.0 %llu octets received", (unsigned long long)tx->data->seen);
	session_enter(s, SESSION_READY);
}

/* SESSION_DATA input inside a chunk. */
static void bdat_input(struct session *s, sc_buf *in)
{
	struct transaction *tx = s->tx;
	size_t n, used = 0;

	if (s->state != SESSION_DATA || !tx || !tx->data)
		return;
	n = sc_buf_len(in);
	if (n > tx->chunk_left)
		n = (size_t)tx->chunk_left;
	(void)data_feed(tx->data, sc_buf_data(in), n, &used); /* chunk mode: all of it */
	sc_buf_consume(in, n);
	tx->chunk_left -= n;
	if (tx->chunk_left == 0)
		bdat_chunk_done(s);
}

void cmd_bdat(struct session *s, struct request *rq)
{
	struct transaction *tx = s->tx;
	uint64_t size;
	int last;

	if (!bdat_parse(rq->arg, rq->arglen, &size, &last)) {
		reply(s, "501 5.5.4 Syntax: %s", rq->cmd->usage);
		return;
	}
	if (s->state != SESSION_READY) {
		reply(s, "503 5.5.1 Send HELO/EHLO first");
		bdat_discard(s, size);
		return;
	}
	if (s->cerc) {
		reply(s, "503 5.5.1 CERC pending: send DATA, or RSET to cancel");
		bdat_discard(s, size);
		return;
	}
	if (!mail_enabled(s)) {
		bdat_discard(s, size);
		return;
	}
	if (!tx) {
		reply(s, "503 5.5.1 Need MAIL and RCPT before BDAT");
		bdat_discard(s, size);
		return;
	}
	if (tx->nrcpt == 0) {
		reply(s, "554 5.5.1 No valid recipients");
		bdat_discard(s, size);
		return;
	}
	if (!tx->bdat) {
		if (!mail_data_open(s, DATA_MODE_CHUNK)) {
			/* a reply was given; the transaction cannot go on */
			transaction_reset(s);
			bdat_discard(s, size);
			return;
		}
		tx->bdat = 1;
	}
	tx->chunk_left = size;
	tx->chunk_last = last ? 1 : 0;
	s->bulk_input = bdat_input;
	session_enter(s, SESSION_DATA);
	if (size == 0)
		bdat_chunk_done(s);
}
