/*
 * addr_int.h - address helpers internal to libsmtpcert (lib/addr.c).
 */
#ifndef SC_ADDR_INT_H
#define SC_ADDR_INT_H

#include <stddef.h>

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
