/*
 * smtpcert/addr.h - mailbox parsing (RFC 5321 4.1.2, RFC 6531 3.3) and the
 * normalised lookup key used by every repository.
 *
 * An address is parsed from the argument of CERT/CERS/CERC/RCPT or from a
 * certificate. Angle brackets are optional ("<a@b>" and "a@b"). The local part may
 * be a dot-atom or a quoted string; with SC_ADDR_UTF8, UTF-8 (RFC 3629, no overlongs,
 * no surrogates) is allowed in atoms and quoted strings as RFC 6531 extends them.
 * Address literals ("a@[192.0.2.1]") parse only with SC_ADDR_LITERAL; certificate
 * lookups never pass it.
 *
 * The lookup key (sc_addr_key) is what repositories index on: the local part in its
 * canonical form (quotes removed when the content is a valid dot-atom, otherwise the
 * minimal quoted form), ASCII letters of the local part folded to lower case, then
 * '@', then the domain in lower case with any trailing dot removed. See
 * docs/protocol.md "Address normalisation" for why the local part is case-folded.
 */
#ifndef SMTPCERT_ADDR_H
#define SMTPCERT_ADDR_H

#include <stddef.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RFC 5321 4.5.3.1.1 and 4.5.3.1.2: octet limits; RFC 6531 keeps them in octets. */
#define SC_LOCAL_MAX 64
#define SC_DOMAIN_MAX 255
/* Key = canonical local part (quoting can add up to 2 + escapes) '@' domain + NUL. */
#define SC_ADDR_KEY_MAX (2 * SC_LOCAL_MAX + 2 + 1 + SC_DOMAIN_MAX + 1)

enum sc_addr_flags {
	SC_ADDR_UTF8 = 1u << 0,     /**< allow RFC 6531 UTF-8 in the local part and domain */
	SC_ADDR_LITERAL = 1u << 1,  /**< allow [IPv4] / [IPv6:...] domain literals */
	SC_ADDR_BRACKETS = 1u << 2, /**< require <...> (RCPT TO:, MAIL FROM:) */
	SC_ADDR_ROUTE = 1u << 3,    /**< accept and ignore a source route "<@a,@b:u@d>"
				         (RFC 5321 4.1.2 Path, Appendix C); without it a
				         route is a syntax error (CERT takes no Path) */
	/* output-only flags, set in sc_addr.flags */
	SC_ADDR_IS_QUOTED = 1u << 8,  /**< the local part was written as a quoted string */
	SC_ADDR_IS_UTF8 = 1u << 9,    /**< the address contains non-ASCII octets */
	SC_ADDR_IS_LITERAL = 1u << 10 /**< the domain is an address literal */
};

/** A parsed mailbox. Plain value type: copy freely. After a successful parse
 *  only flags and each field up to its NUL are defined (the bytes after the
 *  NUL keep what the memory held): compare with sc_addr_equal(), never memcmp(). */
struct sc_addr {
	/** local part, unquoted (quoted-pairs resolved), NUL-terminated; may contain
	 *  any printable character when it came from a quoted string */
	char local[SC_LOCAL_MAX + 1];
	/** domain exactly as written (case preserved), NUL-terminated; for a literal
	 *  the brackets are included */
	char domain[SC_DOMAIN_MAX + 1];
	unsigned flags;
};

/**
 * Parse a mailbox. @p s need not be NUL-terminated and may contain NULs (which are
 * rejected). Surrounding whitespace is not skipped: the caller trims the command.
 * @return SC_OK; SC_ERR_SYNTAX (with a static reason in *@p why when non-NULL);
 *         SC_ERR_TOO_LONG (local part > 64 or domain > 255 octets);
 *         SC_ERR_ENCODING (invalid UTF-8, or UTF-8 without SC_ADDR_UTF8);
 *         SC_ERR_UNSUPPORTED (an address literal without SC_ADDR_LITERAL).
 */
SC_MUST_CHECK sc_status sc_addr_parse(const char *s, size_t len, unsigned flags,
				      struct sc_addr *out, const char **why);

/**
 * Write the normalised lookup key, NUL-terminated, into @p buf.
 * @return SC_OK; SC_ERR_TOO_LONG if @p size is too small (SC_ADDR_KEY_MAX always
 *         suffices). *@p len (optional) receives the length without the NUL.
 */
SC_MUST_CHECK sc_status sc_addr_key(const struct sc_addr *a, char *buf, size_t size,
				    size_t *len);

/** Write the address for display: local part quoted when needed, '@', domain. */
SC_MUST_CHECK sc_status sc_addr_format(const struct sc_addr *a, char *buf, size_t size);

/** @return non-zero when both addresses have the same lookup key. */
int sc_addr_equal(const struct sc_addr *a, const struct sc_addr *b);

/**
 * Compare domains case-insensitively (ASCII), ignoring one trailing dot.
 * @return non-zero when equal.
 */
int sc_domain_equal(const char *a, const char *b);

/** Check a domain name (RFC 5321 4.1.2 Domain, or UTF-8 U-labels with SC_ADDR_UTF8). */
SC_MUST_CHECK sc_status sc_domain_check(const char *s, size_t len, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif
