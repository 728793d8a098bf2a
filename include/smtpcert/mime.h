/*
 * smtpcert/mime.h - the header block of an RFC 5322 message, parsed with bounds:
 * what S/MIME (which fields stay outside the encrypted entity), the sendmail
 * front end (-t recipients, Bcc removal) and encryption at rest (is this message
 * already encrypted?) need. Bodies are never parsed here; they stream.
 *
 * The parser works on a memory block the caller read (at most
 * SC_MIME_HEADER_MAX octets); it reports how much of the block the header took,
 * so the caller streams the rest of the block and then the rest of its file.
 * Field views point into the caller's block, which must outlive the handle.
 */
#ifndef SMTPCERT_MIME_H
#define SMTPCERT_MIME_H

#include <stddef.h>
#include "status.h"
#include "addr.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest header block accepted (all fields plus the empty line). */
#define SC_MIME_HEADER_MAX (256 * 1024)
/** Most fields in one header block. */
#define SC_MIME_FIELDS_MAX 1024
/** RFC 5322 2.1.1: a line is at most 998 octets plus CRLF. */
#define SC_MIME_LINE_MAX 998

typedef struct sc_mime_header sc_mime_header;

/** One header field: views into the parsed block. */
struct sc_mime_field {
	const char *name;      /**< field name, not NUL-terminated */
	size_t name_len;
	const char *value;     /**< raw value after "name:", folding kept, without
				*  the final line end */
	size_t value_len;
	const char *raw;       /**< the whole field including its line end(s) */
	size_t raw_len;
};

/**
 * Parse the header block at the start of @p data (@p len octets). Line ends may
 * be CRLF or LF (a local file); the block ends at the first empty line, or at
 * the end of @p data when @p len is the whole message and it has no body.
 * @param consumed receives the octets taken, the empty line included
 * @return SC_OK; SC_AGAIN (no empty line within @p len and @p len < the whole
 *         message: the caller reads more, up to SC_MIME_HEADER_MAX);
 *         SC_ERR_TOO_LONG (block over SC_MIME_HEADER_MAX or a line over
 *         SC_MIME_LINE_MAX); SC_ERR_TOO_MANY; SC_ERR_SYNTAX (a line that is neither
 *         a field nor a continuation, NUL); SC_ERR_NOMEM.
 * @param is_all non-zero when @p data holds the entire message
 */
SC_MUST_CHECK sc_status sc_mime_header_parse(const char *data, size_t len, int is_all,
					     sc_mime_header **out, size_t *consumed);
void sc_mime_header_free(sc_mime_header *h);

/** Number of fields. */
size_t sc_mime_header_count(const sc_mime_header *h);
/** Field @p i (0-based, file order), or NULL. */
const struct sc_mime_field *sc_mime_header_field(const sc_mime_header *h, size_t i);
/** The @p nth (0-based) field named @p name (case-insensitive), or NULL. */
const struct sc_mime_field *sc_mime_header_find(const sc_mime_header *h, const char *name,
						size_t nth);

/**
 * Unfold and trim a field value into @p buf (RFC 5322 2.2.3); comments kept.
 * @return SC_OK; SC_ERR_TOO_LONG when @p size is too small.
 */
SC_MUST_CHECK sc_status sc_mime_unfold(const struct sc_mime_field *f, char *buf, size_t size);

/** What a message is, from its top-level Content-Type (RFC 8551 3.2, RFC 1847). */
enum sc_mime_kind {
	SC_MIME_PLAIN = 0,      /**< anything else */
	SC_MIME_ENCRYPTED,      /**< application/(x-)pkcs7-mime with smime-type enveloped-data
				 *  or authEnveloped-data (or none), multipart/encrypted */
	SC_MIME_SIGNED,         /**< multipart/signed, or pkcs7-mime smime-type=signed-data */
	SC_MIME_COMPRESSED      /**< pkcs7-mime smime-type=compressed-data */
};
enum sc_mime_kind sc_mime_header_kind(const sc_mime_header *h);

/**
 * The mailboxes of an RFC 5322 3.4 address-list (To, Cc, Bcc, From): display
 * names, comments, groups and obsolete syntax tolerated; each addr-spec parsed
 * with sc_addr_parse(SC_ADDR_UTF8).
 * @return SC_OK with *@p n set; SC_ERR_TOO_MANY (more than @p max);
 *         SC_ERR_SYNTAX (an address that does not parse).
 */
SC_MUST_CHECK sc_status sc_mime_addresses(const char *value, size_t len, struct sc_addr *out,
					  size_t max, size_t *n);

/**
 * Fields that stay outside an S/MIME entity (docs/protocol.md, "S/MIME
 * messages"): trace and routing fields (Return-Path, Received, From, Sender,
 * Reply-To, To, Cc, Date, Message-ID, In-Reply-To, References, and the
 * Resent-* block of RFC 5322 3.6.6) and Subject unless @p hide_subject.
 * MIME-Version is written on both levels. Every other
 * field (Content-* and all others) goes inside.
 * @return non-zero when field @p f stays in the outer header.
 */
int sc_mime_field_is_outer(const struct sc_mime_field *f, int hide_subject);

#ifdef __cplusplus
}
#endif
#endif
