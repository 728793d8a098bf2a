/*
 * send_input.c - `smtpcert send`: the message from standard input into an
 * anonymous temporary file, in fixed-size chunks (memory does not grow with
 * the message), bounded by --max-size. Without -i (-oi) a line holding a single
 * "." ends the message, as sendmail(8) has always done for terminal input; with
 * it, such a line is data. Runs in the user's process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "send.h"

#define INPUT_CHUNK (64 * 1024)

int send_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !dir[0])
		dir = "/tmp";
	/* O_TMPFILE: the file never has a name another user could open. */
	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if ((size_t)snprintf(path, sizeof path, "%s/smtpcert-send.XXXXXX", dir) >= sizeof path)
		return -1;
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	return fd;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t r = write(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Where a "." line may be forming at the start of a line. */
enum dot_state {
	DOT_MID = 0,    /* inside a line */
	DOT_START,      /* at the start of a line */
	DOT_SEEN,       /* "." at the start of a line */
	DOT_SEEN_CR     /* ".\r" at the start of a line */
};

/* Copy @p in[0..n) to @p out, stopping at a "." line. @return octets written to
 * @p out; *@p end set when the terminating line was seen. Octets held back while
 * a "." line forms are emitted once it turns out to be data. */
static size_t dot_filter(enum dot_state *st, const char *in, size_t n, char *out, int *end)
{
	size_t o = 0;

	for (size_t i = 0; i < n && !*end; i++) {
		char ch = in[i];

		switch (*st) {
		case DOT_START:
			if (ch == '.') {
				*st = DOT_SEEN;
				continue;
			}
			break;
		case DOT_SEEN:
			if (ch == '\n') {
				*end = 1;
				continue;
			}
			if (ch == '\r') {
				*st = DOT_SEEN_CR;
				continue;
			}
			out[o++] = '.';
			break;
		case DOT_SEEN_CR:
			if (ch == '\n') {
				*end = 1;
				continue;
			}
			out[o++] = '.';
			out[o++] = '\r';
			break;
		case DOT_MID:
			break;
		}
		out[o++] = ch;
		*st = ch == '\n' ? DOT_START : DOT_MID;
	}
	return o;
}

int send_read_input(const struct send_opts *o, int *fdp, uint64_t *sizep)
{
	enum dot_state st = DOT_START;
	char *in = malloc(INPUT_CHUNK), *out = malloc(INPUT_CHUNK + 2);
	uint64_t size = 0;
	int fd = send_tmpfile(), end = 0, rc = EX_OK;

	if (!in || !out || fd < 0) {
		cli_err(SEND_VERB, "cannot create a temporary file: %s", strerror(errno));
		rc = EX_CANTCREAT;
		goto out;
	}
	while (!end) {
		ssize_t r = read(STDIN_FILENO, in, INPUT_CHUNK);
		size_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_err(SEND_VERB, "reading the message: %s", strerror(errno));
			rc = EX_IOERR;
			goto out;
		}
		if (r == 0)
			break;
		if (o->ignore_dots) {
			memcpy(out, in, (size_t)r);
			n = (size_t)r;
		} else {
			n = dot_filter(&st, in, (size_t)r, out, &end);
		}
		if (n > o->max_size - size) {
			cli_err(SEND_VERB, "message larger than %llu octets (--max-size): not sent",
				(unsigned long long)o->max_size);
			rc = EX_DATAERR;
			goto out;
		}
		if (write_all(fd, out, n) != 0) {
			cli_err(SEND_VERB, "writing the temporary file: %s", strerror(errno));
			rc = EX_IOERR;
			goto out;
		}
		size += n;
	}
	/* A "." (or ".\r") at the very end without its newline is still held back:
	 * at end of input sendmail takes it as the end too. */
out:
	free(in);
	free(out);
	if (rc != EX_OK) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*fdp = fd;
	*sizep = size;
	return EX_OK;
}
