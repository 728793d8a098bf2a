/*
 * addr_int.h - address helpers internal to libsmtpcert: what the parser
 * (lib/addr.c) and the key, format and comparison module (lib/addr_key.c)
 * share, and the key guess the repositories' prefetch uses (lib/repo.c).
 *
 * Both hot paths of every CERT read the octet classes and scan words, so these
 * are macros, a static inline function and one table, never an out-of-line
 * call per octet (docs/performance.md, sixth round).
 */
#ifndef SC_ADDR_INT_H
#define SC_ADDR_INT_H

#include <stddef.h>

/* Every octet of a 64-bit word: for the word-at-a-time scans and folds. */
#define ADDR_ONES 0x0101010101010101ULL
#define ADDR_HIGHS 0x8080808080808080ULL

/* F(c) for c = 0..255, as initialisers of a table indexed by octet */
#define ADDR_T4(F, c) F(c), F((c) + 1), F((c) + 2), F((c) + 3)
#define ADDR_T16(F, c) ADDR_T4(F, c), ADDR_T4(F, (c) + 4), ADDR_T4(F, (c) + 8), ADDR_T4(F, (c) + 12)
#define ADDR_T64(F, c) \
	ADDR_T16(F, c), ADDR_T16(F, (c) + 16), ADDR_T16(F, (c) + 32), ADDR_T16(F, (c) + 48)
#define ADDR_T256(F) ADDR_T64(F, 0), ADDR_T64(F, 64), ADDR_T64(F, 128), ADDR_T64(F, 192)

/*
 * What each octet is, one table load per octet (a strchr() per octet was a
 * tenth of the address work of every CERT, and the bit table after it still
 * most of the key's checks; docs/performance.md, sixth round). The table is
 * written out by the preprocessor in lib/addr.c from the definitions:
 * - ADDR_OCTET_ATEXT: RFC 5322 3.2.3 atext, ASCII part: ALPHA / DIGIT /
 *   "!#$%&'*+-/=?^_`{|}~". RFC 6531 3.3 adds UTF8-non-ascii (checked by the
 *   callers, since whether it is allowed depends on the flags).
 * - ADDR_OCTET_LETDIG: RFC 5321 4.1.2 Let-dig, ALPHA / DIGIT.
 * Hidden: internal to the library, so it is not exported from libsmtpcert.so
 * and the loops load from it directly, as from a file-local table, not through
 * the GOT as from an exported symbol in position-independent code.
 */
#define ADDR_OCTET_ATEXT 1u
#define ADDR_OCTET_LETDIG 2u

extern const unsigned char sc_addr_octet_class[256] __attribute__((visibility("hidden")));

static inline int sc_addr_is_atext(unsigned char c)
{
	return sc_addr_octet_class[c] & ADDR_OCTET_ATEXT;
}

/**
 * The lookup key sc_addr_key() gives for the mailbox @p arg ("<a@b>" or "a@b",
 * @p len octets), derived without a full parse, for hints only: a guess that
 * is right for every address without quotes, escapes or spaces, and that may
 * be anything for an address that does not parse at all.
 * @return the key's length (NUL-terminated in @p buf), or 0 when @p arg needs
 *         a full parse or the key does not fit in @p size.
 */
size_t sc_addr_key_guess(const char *arg, size_t len, char *buf, size_t size);

#endif
