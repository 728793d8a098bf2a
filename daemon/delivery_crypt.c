/*
 * delivery_crypt.c - encryption at rest (`encrypt_at_rest = yes`, the
 * proposal's objective: mail stored encrypted by default). Decides once per
 * message whether it is already encrypted (its top-level Content-Type, read
 * from the spool's header block with sc_mime_header_kind()), and writes one
 * recipient's copy as an S/MIME enveloped message (sc_smime_encrypt(): RFC
 * 8551, the routing fields - Received, Return-Path, From, To, Date, Subject,
 * Message-ID ... - kept in the outer header so the mail store can still sort
 * and thread; everything else, body included, inside). Streams: only the header
 * block is held in memory. Worker threads of the daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery.h"
#include "delivery_int.h"

/* Read up to @p len octets at offset 0 of @p fd. @return octets read, or -1. */
static ssize_t crypt_read_head(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

sc_status delivery_crypt_plan(const struct delivery_cfg *cfg, const struct delivery_msg *m,
			      struct delivery_plan *plan)
{
	sc_mime_header *h = NULL;
	size_t want, consumed, i;
	ssize_t got;
	sc_status rc;
	char *buf;

	memset(plan, 0, sizeof *plan);
	if (!cfg->encrypt_at_rest)
		return SC_OK;
	for (i = 0; i < m->nrcpt && !m->rcpt[i].cert; i++)
		;
	if (i == m->nrcpt)
		return SC_OK; /* nobody to encrypt to: nothing to read */
	want = m->size < SC_MIME_HEADER_MAX ? (size_t)m->size : SC_MIME_HEADER_MAX;
	buf = malloc(want + 1);
	if (!buf)
		return SC_ERR_NOMEM;
	got = crypt_read_head(m->fd, buf, want);
	if (got < 0 || (size_t)got != want) {
		free(buf);
		return SC_ERR_IO;
	}
	rc = sc_mime_header_parse(buf, want, (uint64_t)want == m->size, &h, &consumed);
	if (rc == SC_OK) {
		/* RFC 8551 3.2 / RFC 1847: enveloped or authEnveloped pkcs7-mime and
		 * multipart/encrypted are stored as they came; signed and compressed
		 * messages are plaintext to anyone and get encrypted */
		plan->already_encrypted = sc_mime_header_kind(h) == SC_MIME_ENCRYPTED;
		sc_mime_header_free(h);
	} else if (rc == SC_ERR_NOMEM) {
		free(buf);
		return rc;
	} else {
		/* SC_AGAIN (no end within SC_MIME_HEADER_MAX), over-long lines, NUL... */
		plan->unparsable = 1;
	}
	free(buf);
	return SC_OK;
}

int delivery_crypt_wanted(const struct delivery_cfg *cfg, const struct delivery_plan *plan,
			  const struct delivery_rcpt *r)
{
	return cfg->encrypt_at_rest && r->cert && !plan->already_encrypted;
}

sc_status delivery_crypt_write(const struct delivery_msg *m, const sc_cert *cert, int out_fd,
			       int lf, char *err, size_t errlen)
{
	const sc_cert *rcpts[1] = { cert };
	sc_status rc;

	/* sc_smime_encrypt() reads from the file position to the end: the spool
	 * holds exactly the message, and one worker delivers it, copy after copy */
	if (lseek(m->fd, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "cannot rewind the spooled message: %s", strerror(errno));
		return SC_ERR_IO;
	}
	rc = sc_smime_encrypt(m->fd, out_fd, rcpts, 1, lf ? SC_SMIME_OUT_LF : 0, err, errlen);
	/* the callers tell three outcomes apart: a key nobody can encrypt to
	 * (stored as received), an I/O failure, and anything else (temporary) */
	if (rc == SC_OK || rc == SC_ERR_UNSUPPORTED || rc == SC_ERR_IO)
		return rc;
	return SC_ERR_CRYPTO;
}
