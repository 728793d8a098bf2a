/*
 * line_fuzz.c - fuzz target for the sc_buf line reader.
 *
 * The first three bytes choose max_line, the read size and the buffer maximum;
 * the rest is fed in chunks (append or reserve/commit). Lines are extracted as a
 * session would, over-long ones skipped with sc_buf_skip_line(). Every event must
 * match a simple reference split of the whole input, whatever the chunking
 * (abort() otherwise), and the buffer never exceeds its maximum.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <smtpcert/smtpcert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum ev { EV_NONE, EV_LINE, EV_TOO_LONG };

struct ref {
	const char *d;
	size_t size, pos, max_line;
};

/* Next event of the reference: lines split at LF, CR before LF stripped. */
static enum ev ref_next(struct ref *r, const char **line, size_t *len, int *bare)
{
	const char *lf;
	size_t seg;

	if (r->pos >= r->size)
		return EV_NONE;
	lf = memchr(r->d + r->pos, '\n', r->size - r->pos);
	if (!lf) {
		if (r->size - r->pos >= r->max_line) {
			r->pos = r->size;
			return EV_TOO_LONG;
		}
		return EV_NONE;
	}
	seg = (size_t)(lf - (r->d + r->pos)) + 1;
	*line = r->d + r->pos;
	r->pos += seg;
	if (seg > r->max_line)
		return EV_TOO_LONG;
	*len = seg - 1;
	*bare = 1;
	if (*len > 0 && (*line)[*len - 1] == '\r') {
		(*len)--;
		*bare = 0;
	}
	return EV_LINE;
}

/* Extract everything the buffer holds; @return 0 on success. */
static void drain(sc_buf *b, struct ref *r, int *skipping)
{
	for (;;) {
		const char *line, *rline = NULL;
		size_t len, consumed, rlen = 0;
		int bare, rbare = 0;
		sc_status rc;

		if (*skipping) {
			rc = sc_buf_skip_line(b);
			if (rc == SC_AGAIN) {
				if (sc_buf_len(b) != 0)
					abort();
				return;
			}
			if (rc != SC_OK)
				abort();
			*skipping = 0;
			continue;
		}
		rc = sc_buf_line(b, r->max_line, &line, &len, &consumed, &bare);
		if (rc == SC_AGAIN) {
			if (sc_buf_len(b) >= r->max_line)
				abort();
			return;
		}
		if (rc == SC_ERR_TOO_LONG) {
			if (ref_next(r, &rline, &rlen, &rbare) != EV_TOO_LONG)
				abort();
			*skipping = 1;
			continue;
		}
		if (rc != SC_OK || consumed > r->max_line || consumed != len + 2 - (size_t)bare)
			abort();
		if (memchr(line, '\n', len) || line[len + 1 - (size_t)bare] != '\n')
			abort();
		if (ref_next(r, &rline, &rlen, &rbare) != EV_LINE || rlen != len ||
		    rbare != bare || memcmp(rline, line, len) != 0)
			abort();
		sc_buf_consume(b, consumed);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ref r;
	sc_buf *b;
	size_t chunk, bufmax, pos = 3;
	int skipping = 0, use_reserve;
	const char *unused_line;
	size_t unused_len;
	int unused_bare;

	if (size < 3)
		return 0;
	r.d = (const char *)data;
	r.size = size;
	r.pos = 3;
	r.max_line = 1 + data[0] % 64;
	chunk = 1 + data[1] % 32;
	bufmax = r.max_line + (data[2] & 7);
	use_reserve = (data[2] & 0x80) != 0;
	if (sc_buf_new(bufmax, &b) != SC_OK)
		abort();
	for (;;) {
		size_t n;

		drain(b, &r, &skipping);
		if (pos == size)
			break;
		n = size - pos;
		if (n > chunk)
			n = chunk;
		if (n > sc_buf_room(b))
			n = sc_buf_room(b);
		if (n == 0)
			abort(); /* drained buffer must have room: no deadlock */
		if (use_reserve) {
			char *p;
			size_t room;

			if (sc_buf_reserve(b, &p, &room) != SC_OK || room == 0 ||
			    room > sc_buf_room(b))
				abort();
			if (n > room)
				n = room;
			memcpy(p, data + pos, n);
			sc_buf_commit(b, n);
		} else if (sc_buf_append(b, data + pos, n) != SC_OK) {
			abort();
		}
		pos += n;
		if (sc_buf_len(b) > bufmax)
			abort();
	}
	/* Everything the reference saw as complete has been delivered. */
	if (ref_next(&r, &unused_line, &unused_len, &unused_bare) != EV_NONE)
		abort();
	sc_buf_clear(b);
	if (sc_buf_len(b) != 0)
		abort();
	sc_buf_free(b);
	return 0;
}
