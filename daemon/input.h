/*
 * input.h - the command line reader between a connection's input buffer and its
 * session: splits buffered bytes into lines (RFC 5321 2.3.8, bare LF tolerated),
 * answers over-long lines and resynchronises (RFC 5321 4.5.3.1.4), and discards
 * what follows a command that ends a pipeline group (RFC 3207 4.2,
 * CVE-2011-0411). No I/O: conn_io.c and the session fuzz target share it.
 */
#ifndef SMTPCERTD_INPUT_H
#define SMTPCERTD_INPUT_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

struct session;

struct input_state {
	unsigned skipping : 1; /**< discarding the rest of an over-long line */
	unsigned partial : 1;  /**< the buffer ends in an incomplete line */
	unsigned prefetched : 1; /**< conn_batch.c prefetched the buffered lines */
};

/**
 * Hand complete lines from @p in to @p s while the session takes commands
 * (state CONNECTED or READY, fewer than SESSION_OUT_HIGH bytes queued).
 * @return the number of lines handled (the caller re-arms its idle timer).
 */
size_t input_process(struct session *s, sc_buf *in, struct input_state *st);

/** @return non-zero when @p s takes another command now. */
int input_session_ready(const struct session *s);

#endif
