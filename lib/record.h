/*
 * record.h - the binary record in which repositories store one certificate entry,
 * internal to libsmtpcert (lib/repo_lmdb.c stores it as the LMDB value).
 *
 * Layout, all integers fixed-width big-endian, no padding:
 *	u8   magic          SC_RECORD_MAGIC
 *	u8   version        SC_RECORD_VERSION
 *	u16  flags          reserved, 0 in version 1 (a decoder rejects other bits so a
 *	                    newer writer's meaning is never misread)
 *	i64  added          seconds since the epoch when stored
 *	i64  not_before     leaf validity (RFC 5280 4.1.2.5), seconds since the epoch
 *	i64  not_after
 *	u8   fingerprint[32] SHA-256 of the leaf DER
 *	u16  issuer_len, then issuer_len octets: DER of the leaf's issuer Name
 *	u16  serial_len, then serial_len octets: content octets of the leaf's serial
 *	u8   n_der          1 (leaf) + chain, 1..SC_CHAIN_MAX
 *	n_der times: u32 len (1..SC_CERT_INPUT_MAX), then len octets of DER
 * The record ends exactly after the last certificate.
 *
 * The lookup key is not part of the record: it is the LMDB key.
 * Decoding never copies: the entry's pointers point INTO the record buffer, which
 * must outlive every use of the entry. Decoding bounds-checks every length against
 * the buffer before any read, so arbitrary bytes are safe (fuzz/record_fuzz.c).
 */
#ifndef SC_RECORD_H
#define SC_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "smtpcert/repo.h"

#define SC_RECORD_MAGIC 0xC5
#define SC_RECORD_VERSION 1
/* Fixed part before the variable-length fields. */
#define SC_RECORD_HEADER_LEN (1 + 1 + 2 + 8 + 8 + 8 + 32)
/* Largest issuer Name / serial we store: a u16 length by format; serials are at most
 * 20 octets by RFC 5280 4.1.2.2 but we are lenient with real-world CAs. */
#define SC_RECORD_FIELD_MAX 0xffff

/**
 * Decode @p len bytes at @p buf into @p e (key/key_len are left untouched).
 * @return SC_OK; SC_ERR_SYNTAX (truncated, trailing bytes, bad magic, zero lengths);
 *         SC_ERR_UNSUPPORTED (other version or unknown flags); SC_ERR_TOO_MANY (more
 *         than SC_CHAIN_MAX certificates); SC_ERR_TOO_LONG (a certificate over
 *         SC_CERT_INPUT_MAX). On failure @p e is unspecified.
 */
SC_MUST_CHECK sc_status sc_record_decode(const uint8_t *buf, size_t len,
					 struct sc_repo_entry *e);

/** @return the encoded size of @p e, or 0 when it cannot be encoded (see encode). */
size_t sc_record_size(const struct sc_repo_entry *e);

/**
 * Encode @p e (all fields but key) into @p out.
 * @return SC_OK; SC_ERR_TOO_LONG (@p size too small, or a field over its limit);
 *         SC_ERR_ARG (n_der out of 1..SC_CHAIN_MAX, an empty certificate).
 *         *@p out_len (optional) receives the length written.
 */
SC_MUST_CHECK sc_status sc_record_encode(const struct sc_repo_entry *e, uint8_t *out,
					 size_t size, size_t *out_len);

#endif
