/*
 * testsrv.h - line I/O for the scripted SMTP servers that unit tests run in a
 * thread (test_smtp*.c, the delivery tests): plain socket or TLS (when @p tls is
 * non-NULL), blocking, bounded; and the loopback ports they listen on.
 */
#ifndef SC_TESTSRV_H
#define SC_TESTSRV_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

/* Read one line into @p buf (CRLF or LF stripped, truncated to fit), one byte at
 * a time so the server never reads a client's TLS ClientHello early.
 * @return 0, or -1 at EOF or error. */
int ts_line(int fd, sc_tls *tls, char *buf, size_t size);

/* Write all of @p data (best effort: stops at the first error). */
void ts_send(int fd, sc_tls *tls, const char *data, size_t len);

/* Send @p text, lines separated by '\n', each sent with CRLF, in one write
 * (text beyond 8 KiB is cut). */
void ts_lines(int fd, sc_tls *tls, const char *text);

/* A socket listening on 127.0.0.1 at a free port, written in decimal to @p port.
 * @return the descriptor, or -1. */
int ts_listen(char port[8]);

/* A free 127.0.0.1 port nobody listens on (bound, then closed), into @p port:
 * connecting to it is refused. @return 0, or -1. */
int ts_dead_port(char port[8]);

#endif
