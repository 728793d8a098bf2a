/*
 * smtp_mail.c - the mail-sending half of the blocking SMTP client (smtp.c):
 * MAIL FROM, RCPT TO and DATA streamed from a file descriptor. The message is
 * read with pread() in fixed chunks, line ends are made CRLF (RFC 5321 2.3.8),
 * lines starting with "." are dot-stuffed (RFC 5321 4.5.2), and after the final
 * "." one reply is read per expected answer: one for SMTP, one per accepted
 * recipient for LMTP (RFC 2033 4.2). Owns only two chunk buffers for the
 * duration of a call, so memory does not grow with the message. Runs in the
 * CLI's process (smtpcert send) and in smtpcertd's delivery workers (LMTP).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpcert/smtpcert.h"
#include "smtp_int.h"

/* Octets read from the file per pread(); the output of one chunk is at most
 * twice as long (every octet a bare LF -> CRLF, or a stuffed dot) plus a CRLF. */
#define MAIL_CHUNK (32 * 1024)
#define MAIL_OUT_MAX (2 * MAIL_CHUNK + 8)

static sc_status mail_broken(sc_smtp *s, sc_status st)
{
	if (st != SC_OK && st != SC_ERR_ARG)
		s->broken = 1;
	return st;
}

/* The status a reply's class means for MAIL, RCPT and DATA. */
static sc_status mail_class(const sc_reply *r, int want)
{
	int code = sc_reply_code(r);

	if (code == want || (want == 250 && code / 100 == 2))
		return SC_OK;
	if (code / 100 == 4)
		return SC_ERR_TEMP;
	if (code / 100 == 5)
		return SC_ERR_REJECTED;
	return SC_ERR_PROTOCOL;
}

/* No CR, LF, and '<' or '>' only inside a quoted string (RFC 5321 4.1.2
 * qtextSMTP allows them there: "a<b"@example.org is a mailbox). */
static int path_ok(const char *p)
{
	int quoted = 0;

	for (; *p; p++) {
		if (*p == '\r' || *p == '\n')
			return 0;
		if (quoted && *p == '\\' && p[1]) {
			p++;
			if (*p == '\r' || *p == '\n')
				return 0;
			continue;
		}
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == '<' || *p == '>'))
			return 0;
	}
	return !quoted;
}

/* "VERB:<path>[ params]"; refuses what would break the command's syntax. */
static sc_status mail_path_cmd(sc_smtp *s, const char *verb, const char *path,
			       const char *params, sc_reply *reply)
{
	char cmd[SMTP_LINE_MAX];
	int n;
	sc_status st;

	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(path);
	SC_ENSURE(!s->broken, SC_ERR_NETWORK);
	/* RFC 5321 4.1.2: a Path is "<" Mailbox ">"; CR/LF (a second command
	 * smuggled in) never belong, nor do brackets outside a quoted local part. */
	if (!path_ok(path) || (params && strpbrk(params, "\r\n")))
		return SC_ERR_ARG;
	n = snprintf(cmd, sizeof cmd, "%s:<%s>%s%s", verb, path,
		     params && params[0] ? " " : "", params ? params : "");
	/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets; the extension
	 * parameters (SMTPUTF8, SIZE) lengthen it, so allow what smtp_do_command does. */
	if (n < 0 || (size_t)n >= sizeof cmd - 2)
		return SC_ERR_ARG;
	if (!reply)
		reply = s->reply;
	st = mail_broken(s, smtp_do_command(s, cmd, reply));
	if (st != SC_OK)
		return st;
	return mail_class(reply, 250);
}

sc_status sc_smtp_mail(sc_smtp *s, const char *from, const char *params, sc_reply *reply)
{
	return mail_path_cmd(s, "MAIL FROM", from, params, reply);
}

sc_status sc_smtp_rcpt(sc_smtp *s, const char *to, const char *params, sc_reply *reply)
{
	SC_ENSURE_ARG(to);
	/* RFC 5321 4.1.1.3: the forward-path is never empty (<> is MAIL only). */
	SC_ENSURE(to[0], SC_ERR_ARG);
	return mail_path_cmd(s, "RCPT TO", to, params, reply);
}

/* Line-end and dot-stuffing state carried across chunks. */
struct mail_conv {
	int line_start;   /* the next octet begins a line */
	int pending_cr;   /* a CR was seen, its LF (or not) is in the next octet */
};

/* One octet into @p out (room checked by the caller: at most 4 octets). */
static size_t conv_octet(struct mail_conv *c, unsigned char ch, char *out)
{
	size_t n = 0;

	if (c->pending_cr) {
		c->pending_cr = 0;
		/* CRLF, or a bare CR taken as a line end: RFC 5321 2.3.8 lets CR
		 * appear only in CRLF, so either way the wire gets CRLF. */
		out[n++] = '\r';
		out[n++] = '\n';
		c->line_start = 1;
		if (ch == '\n')
			return n;
	}
	if (ch == '\r') {
		c->pending_cr = 1;
		return n;
	}
	if (ch == '\n') {
		/* bare LF, the Unix line end of a message from a pipe */
		out[n++] = '\r';
		out[n++] = '\n';
		c->line_start = 1;
		return n;
	}
	/* RFC 5321 4.5.2: a line starting with "." gets one more. */
	if (c->line_start && ch == '.')
		out[n++] = '.';
	out[n++] = (char)ch;
	c->line_start = 0;
	return n;
}

/* Stream @p size octets of @p fd, converted, then the end-of-data line. */
static sc_status mail_stream(sc_smtp *s, int fd, uint64_t size)
{
	struct mail_conv c = { 1, 0 };
	unsigned char *in = malloc(MAIL_CHUNK);
	char *out = malloc(MAIL_OUT_MAX);
	uint64_t off = 0;
	sc_status st = SC_OK;

	if (!in || !out) {
		st = SC_ERR_NOMEM;
		goto done;
	}
	while (off < size) {
		size_t want = size - off > MAIL_CHUNK ? MAIL_CHUNK : (size_t)(size - off);
		ssize_t r = pread(fd, in, want, (off_t)off);
		size_t n = 0;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* A read error or a file shorter than promised: the server must
			 * not get a truncated message that looks complete. */
			smtp_seterr(s, "reading the message: %s",
				    r < 0 ? strerror(errno) : "file shorter than expected");
			st = SC_ERR_IO;
			goto done;
		}
		for (ssize_t i = 0; i < r; i++)
			n += conv_octet(&c, in[i], out + n);
		off += (uint64_t)r;
		st = smtp_write_all(s, out, n);
		if (st != SC_OK)
			goto done;
	}
	{
		size_t n = 0;

		if (c.pending_cr || !c.line_start) {
			/* RFC 5321 4.1.1.4: the data ends with CRLF before the "." line,
			 * so a last line without a newline gets one. */
			out[n++] = '\r';
			out[n++] = '\n';
		}
		memcpy(out + n, ".\r\n", 3);
		st = smtp_write_all(s, out, n + 3);
	}
done:
	free(in);
	free(out);
	return st;
}

sc_status sc_smtp_data_fd(sc_smtp *s, int fd, uint64_t size, sc_reply **replies,
			  size_t nreplies)
{
	sc_status st;

	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(replies);
	SC_ENSURE(nreplies > 0 && fd >= 0, SC_ERR_ARG);
	for (size_t i = 0; i < nreplies; i++) {
		SC_ENSURE_ARG(replies[i]);
		sc_reply_reset(replies[i]);
	}
	SC_ENSURE(!s->broken, SC_ERR_NETWORK);
	st = mail_broken(s, smtp_do_command(s, "DATA", replies[0]));
	if (st != SC_OK)
		return st;
	if (sc_reply_code(replies[0]) != 354)
		return mail_class(replies[0], 354);
	/* After an I/O error half a message is on the wire and SMTP has no way to
	 * abort DATA: the session is broken, sc_smtp_close() then drops the
	 * connection without the final ".", and the server discards the
	 * transaction (RFC 5321 4.1.1.4). */
	st = mail_broken(s, mail_stream(s, fd, size));
	if (st != SC_OK)
		return st;
	/* RFC 2033 4.2: after the final "." an LMTP server answers once for each
	 * recipient that RCPT accepted, in RCPT order. */
	for (size_t i = 0; i < nreplies; i++) {
		st = mail_broken(s, smtp_read_reply(s, replies[i]));
		if (st != SC_OK)
			return st;
	}
	return SC_OK;
}
