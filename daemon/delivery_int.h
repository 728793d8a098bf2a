/*
 * delivery_int.h - what the delivery modules share: per-recipient results,
 * the backend HOST:PORT of a spec, staging files, and the encryption-at-rest
 * decision. delivery.c dispatches; delivery_maildir.c, delivery_lmtp.c and
 * delivery_crypt.c do one job each. Worker threads of the daemon only.
 */
#ifndef SMTPCERTD_DELIVERY_INT_H
#define SMTPCERTD_DELIVERY_INT_H

#include <stddef.h>
#include <stdint.h>
#include "delivery.h"

/* Default network step timeout when cfg->timeout_ms is 0. */
#define DELIVERY_TIMEOUT_DEFAULT_MS 60000

/**
 * Set @p r's result: @p code, @p enhanced ("4.3.0"), the reply @p text and the
 * log-only @p detail (NULL = none).
 */
void delivery_set(struct delivery_rcpt *r, int code, const char *enhanced, const char *text,
		  const char *detail);

/**
 * Split "lmtp:HOST:PORT" / "proxy:HOST:PORT" ([IPv6] allowed) after the prefix.
 * @return SC_OK; SC_ERR_CONFIG.
 */
SC_MUST_CHECK sc_status delivery_hostport(const char *spec, char *host, size_t hsize, char *port,
					  size_t psize);

/**
 * An anonymous read-write file in @p cfg->tmp_dir (O_TMPFILE, or a unique name
 * unlinked at once): nothing is left behind whatever happens to the process.
 * @return the descriptor, or -1 with errno set.
 */
int delivery_tmpfile(const struct delivery_cfg *cfg);

/** What encryption at rest does with a message (delivery_crypt.c). */
struct delivery_plan {
	unsigned already_encrypted : 1; /**< S/MIME enveloped or multipart/encrypted */
	unsigned unparsable : 1;        /**< the header block cannot be split */
};

/**
 * Look at the header block of @p m (when cfg->encrypt_at_rest and a recipient
 * has a certificate; otherwise nothing is read).
 * @return SC_OK with @p plan filled; SC_ERR_IO (reading); SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status delivery_crypt_plan(const struct delivery_cfg *cfg,
					    const struct delivery_msg *m,
					    struct delivery_plan *plan);

/** @return non-zero when @p r's copy is to be encrypted under @p plan. */
int delivery_crypt_wanted(const struct delivery_cfg *cfg, const struct delivery_plan *plan,
			  const struct delivery_rcpt *r);

/**
 * Write @p m encrypted to @p cert (S/MIME enveloped-data, routing fields
 * outside) to @p out_fd, with LF line ends when @p lf.
 * @return SC_OK; SC_ERR_UNSUPPORTED (a key we cannot encrypt to); SC_ERR_IO;
 *         SC_ERR_CRYPTO; header errors. A message goes to @p err.
 */
SC_MUST_CHECK sc_status delivery_crypt_write(const struct delivery_msg *m, const sc_cert *cert,
					     int out_fd, int lf, char *err, size_t errlen);

/* The two stores: every recipient of @p m gets a result. */
SC_MUST_CHECK sc_status delivery_maildir_run(const struct delivery_cfg *cfg,
					     struct delivery_msg *m,
					     const struct delivery_plan *plan);
SC_MUST_CHECK sc_status delivery_lmtp_run(const struct delivery_cfg *cfg, struct delivery_msg *m,
					  const struct delivery_plan *plan);

/**
 * One message over SMTP (@p lmtp = 0, a proxy backend) or LMTP to one
 * recipient: delivery_send_buffer() for lmtp: and proxy:. @p r gets the result.
 */
SC_MUST_CHECK sc_status delivery_smtp_one(const struct delivery_cfg *cfg, int lmtp,
					  const char *from, int fd, uint64_t size,
					  struct delivery_rcpt *r);

#endif
