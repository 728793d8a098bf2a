/*
 * smime_sig_int.h - private to lib/: the streaming pieces S/MIME signing
 * (lib/smime_sign.c) and verification (lib/smime_verify.c) share, implemented in
 * lib/smime_sig_io.c: a bounded buffered reader that hands out line segments, a
 * buffered writer that converts line ends, CRLF canonicalisation (RFC 8551
 * 3.1.1), the header block read, Content-Type parameters, base64 output of
 * CMS structures, and certificate conversion.
 *
 * Not installed: only lib/ includes it, and it names OpenSSL types.
 */
#ifndef SC_SMIME_SIG_INT_H
#define SC_SMIME_SIG_INT_H

#include <stddef.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/x509.h>

#include "smtpcert/cert.h"
#include "smtpcert/mime.h"
#include "smtpcert/status.h"

/** Longest segment sig_in_segment() returns (a longer line comes in pieces). */
#define SIG_SEGMENT_MAX (64 * 1024)

/** Buffered reader over a file descriptor. */
struct sig_in {
	int fd;
	int eof;
	int bol;          /**< the next segment starts a line */
	size_t start;     /**< first unread octet in buf */
	size_t end;       /**< end of the data in buf */
	size_t cap;
	unsigned long long total; /**< octets read from fd */
	char *buf;
};

/** Buffered writer over a file descriptor; text goes out with CRLF or LF. */
struct sig_out {
	int fd;
	int lf;           /**< text written with LF line ends (SC_SMIME_OUT_LF) */
	int prev_cr;      /**< text state: the last octet seen was CR */
	size_t n;
	char buf[16 * 1024];
};

SC_MUST_CHECK sc_status sig_in_init(struct sig_in *in, int fd);
void sig_in_fini(struct sig_in *in);

/**
 * The next piece of input: up to and including the next LF, or at most
 * SIG_SEGMENT_MAX octets when no LF comes first. *@p bol says whether the piece
 * starts a line. Valid until the next call.
 * @return SC_OK; SC_EOF (no more input); SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sig_in_segment(struct sig_in *in, const char **p, size_t *n, int *bol);

/**
 * Read the header block at the start of the input and parse it. The block is
 * copied to *@p block (malloc'ed; the views of *@p hdr point into it), the reader
 * stays positioned on the body.
 * @return SC_OK; mime.h's header errors; SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sig_read_header(struct sig_in *in, sc_mime_header **hdr, char **block);

/** Peek at the first octets of the input without consuming (fills the buffer). */
SC_MUST_CHECK sc_status sig_in_peek(struct sig_in *in, const char **p, size_t *n);

void sig_out_init(struct sig_out *o, int fd, int lf);
/** Raw octets. @return SC_OK or SC_ERR_IO. */
SC_MUST_CHECK sc_status sig_out_raw(struct sig_out *o, const void *p, size_t n);
/** Text: LF or CRLF line ends in, the writer's convention out. */
SC_MUST_CHECK sc_status sig_out_text(struct sig_out *o, const void *p, size_t n);
/** A NUL-terminated text line without its end, then the line end. */
SC_MUST_CHECK sc_status sig_out_line(struct sig_out *o, const char *s);
SC_MUST_CHECK sc_status sig_out_flush(struct sig_out *o);

/** Free the filter BIOs BIO_new_CMS() (or a digest chain) pushed on top of
 *  @p mem, which stays; *@p sink becomes NULL. */
void sig_free_sink(BIO **sink, BIO *mem);

/** @return non-zero when header field @p f ends with its line end (the last
 *  field of a header-only message without a final newline does not). */
int sig_field_ends_line(const struct sc_mime_field *f);
/** Header field @p f as text, with a line end added when it has none. */
SC_MUST_CHECK sc_status sig_out_field(struct sig_out *o, const struct sc_mime_field *f);

/**
 * CRLF canonical form of @p n octets (RFC 8551 3.1.1: a bare LF becomes CRLF,
 * CRLF stays, other octets unchanged) into @p dst (room for 2 * @p n).
 * *@p prev_cr carries "the last octet was CR" across calls.
 * @return the octets written.
 */
size_t sig_canon(const char *p, size_t n, int *prev_cr, char *dst);

/**
 * Content-Type @p value (unfolded): the media type lower-cased into @p type, and
 * parameter @p name (case-insensitive; quoted-string unquoted) into @p out.
 * @return SC_OK; SC_ERR_NOT_FOUND (no such parameter); SC_ERR_TOO_LONG;
 *         SC_ERR_SYNTAX.
 */
SC_MUST_CHECK sc_status sig_ct_type(const char *value, char *type, size_t size);
SC_MUST_CHECK sc_status sig_ct_param(const char *value, const char *name, char *out,
				     size_t size);

/** Unfolded value of the first field @p name into @p buf ("" when absent). */
SC_MUST_CHECK sc_status sig_field(const sc_mime_header *h, const char *name, char *buf,
				  size_t size);

/**
 * Base64-encode what the memory BIO @p mem holds into @p o, in lines of 76
 * characters (RFC 2045 6.8): whole 57-octet groups only, the rest stays in
 * @p mem for the next call, unless @p final. CMS output streams through a
 * memory BIO drained this way, so memory stays bounded.
 * @return SC_OK; SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sig_b64_drain(struct sig_out *o, BIO *mem, int final);

struct sc_smime_signer;

/**
 * lib/smime_vcms.c: verify every SignerInfo of the SignedData @p cms over its
 * encapsulated content, or over @p dcont (detached content, read once), then,
 * unless @p no_chain, each signer certificate against @p ca_file (NULL: the
 * system store) for S/MIME signing. Fills @p signer from the first signer and
 * returns its certificate in *@p signer_cert (X509_free()) when non-NULL.
 * @return SC_OK; SC_ERR_UNSUPPORTED (not signed-data, no signer, an algorithm or
 *         key OpenSSL cannot use: the message names it); SC_ERR_VERIFY (bad
 *         signature, signer certificate missing or not trusted); SC_ERR_IO
 *         (@p ca_file unreadable).
 */
SC_MUST_CHECK sc_status sig_verify_cms(CMS_ContentInfo *cms, BIO *dcont, const char *ca_file,
				       int no_chain, struct sc_smime_signer *signer,
				       X509 **signer_cert, char *err, size_t errlen);

/** Certificate @p i of @p c as a new X509 (X509_free()), or NULL. */
X509 *sig_cert_x509(const sc_cert *c, size_t i);

/** Write "fmt..." to @p err, with the last OpenSSL error reason appended when
 *  @p ossl is non-zero; clears the OpenSSL error queue. @return @p st. */
sc_status sig_fail(char *err, size_t errlen, sc_status st, int ossl, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
