/*
 * smime_int.h - private to lib/: what S/MIME encryption (lib/smime_encrypt.c)
 * and decryption (lib/smime_decrypt.c) share beyond the streaming reader and
 * writer of smime_sig_int.h (lib/smime_sig_io.c, which all four S/MIME modules
 * use): which key types OpenSSL 3.0's CMS can encrypt to or decrypt with, and
 * the SMIMECapabilities of a certificate.
 *
 * Not installed: only lib/ includes it, and it names OpenSSL types.
 */
#ifndef SC_SMIME_INT_H
#define SC_SMIME_INT_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/**
 * Why OpenSSL 3.0 CMS cannot use a key of type @p pk for encryption (as a
 * recipient, @p decrypting = 0) or decryption (@p decrypting != 0): NULL when
 * it can (RSA key transport, EC key agreement), else a static sentence naming
 * the algorithm, e.g. "X25519 key agreement (RFC 8418) is not supported by
 * OpenSSL 3.0 CMS".
 */
const char *smime_key_unsupported(const EVP_PKEY *pk, int decrypting);

/**
 * @return non-zero when the certificate @p x carries an RFC 4262
 * SMIMECapabilities extension that lists the algorithm @p nid.
 */
int smime_cert_has_cap(const X509 *x, int nid);

/** Largest CMS structure (DER octets) decryption accepts: OpenSSL parses it in memory. */
#define SMIME_DECRYPT_MAX ((size_t)1 << 30)

#endif
