/*
 * input.c - command lines from the input buffer to the session (see input.h).
 * Daemon process; pure (no sockets, no libevent).
 */
#include "cert_job.h"
#include "input.h"
#include "session.h"

int input_session_ready(const struct session *s)
{
	return (s->state == SESSION_CONNECTED || s->state == SESSION_READY ||
		s->state == SESSION_AUTH) &&
	       session_out_len(s) < SESSION_OUT_HIGH;
}

size_t input_process(struct session *s, sc_buf *in, struct input_state *st)
{
	size_t lines = 0;

	st->partial = 0;
	/* pipelined CERTs (RFC 2920): their lookups' memory misses overlap */
	if (s->state == SESSION_READY && !st->skipping && !st->prefetched && sc_buf_len(in) > 0)
		cert_prefetch(s->rt, sc_buf_data(in), sc_buf_len(in));
	st->prefetched = 0;
	while (sc_buf_len(in) > 0 && input_session_ready(s)) {
		const char *line;
		size_t len, used;
		int bare_lf;
		sc_status rc;

		if (st->skipping) {
			/* RFC 5321 4.5.3.1.4: drop the rest of an over-long line */
			if (sc_buf_skip_line(in) == SC_AGAIN)
				break;
			st->skipping = 0;
			continue;
		}
		rc = sc_buf_line(in, session_line_max(s), &line, &len, &used, &bare_lf);
		if (rc == SC_AGAIN) {
			st->partial = 1;
			break;
		}
		if (rc != SC_OK) {
			/* SC_ERR_TOO_LONG: answer once, then skip to the line end */
			session_line_too_long(s);
			st->skipping = 1;
			lines++;
			continue;
		}
		session_line(s, line, len);
		sc_buf_consume(in, used);
		lines++;
		if (s->discard_input) {
			/* RFC 3207 4.2, CVE-2011-0411: nothing read after STARTTLS (or
			 * QUIT) is ever executed */
			s->discard_input = 0;
			st->skipping = 0;
			sc_buf_clear(in);
		}
	}
	return lines;
}
