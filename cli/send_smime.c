/*
 * send_smime.c - `smtpcert send`: S/MIME for send_crypt.c. Signs the spooled
 * message with the sender's key and certificate (sc_smime_sign(): multipart/
 * signed, detached signature) and encrypts it (sc_smime_encrypt()) into a new
 * temporary file each; the library streams, so memory does not grow with the
 * message. The key's passphrase (or a token's PIN) comes from
 * `passphrase_file`, is handed to sc_key_load() and wiped. Runs in the user's
 * process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "send.h"


static int smime_exit(sc_status st)
{
	switch (st) {
	case SC_ERR_SYNTAX:
	case SC_ERR_TOO_LONG:
	case SC_ERR_ENCODING:
		return EX_DATAERR;
	case SC_ERR_IO:
		return EX_IOERR;
	case SC_ERR_UNSUPPORTED:
		return EX_UNAVAILABLE;
	default:
		return EX_SOFTWARE;
	}
}

/* Rewind the current message and open a new temporary file for the output. */
static int start(struct send_ctx *c, int *out)
{
	if (lseek(c->fd, 0, SEEK_SET) != 0 || (*out = send_tmpfile()) < 0) {
		cli_err(SEND_VERB, "temporary file: %s", strerror(errno));
		return EX_CANTCREAT;
	}
	return EX_OK;
}

/* The output becomes the message. */
static int finish(struct send_ctx *c, int out)
{
	off_t end = lseek(out, 0, SEEK_END);

	if (end < 0) {
		close(out);
		return EX_IOERR;
	}
	close(c->fd);
	c->fd = out;
	c->size = (uint64_t)end;
	return EX_OK;
}

static int load_key(struct send_ctx *c, const char *spec, sc_key **key)
{
	struct cli_key_req r = { 0 };
	char err[512] = "";
	int from_secret_file;
	sc_status st;

	r.spec = spec;
	r.secret_file = c->o.passphrase_file ? c->o.passphrase_file : c->uc.passphrase_file;
	r.module = c->uc.pkcs11_module;
	st = cli_load_key(&r, key, &from_secret_file, err, sizeof err);
	if (st == SC_OK)
		return EX_OK;
	if (from_secret_file) {
		cli_err(SEND_VERB, "%s", err);
		return EX_CONFIG;
	}
	cli_err(SEND_VERB, "your key %.*s: %s%s", cli_key_shown_len(spec), spec,
		err[0] ? err : sc_strerror(st),
		st == SC_ERR_AUTH && !r.secret_file ? " (set passphrase_file in the config, or "
						      "--passphrase-file)" : "");
	return st == SC_ERR_AUTH ? EX_NOPERM : EX_CONFIG;
}

int send_sign(struct send_ctx *c)
{
	const char *spec = c->o.key ? c->o.key : c->uc.key;
	const char *cert_file = c->o.cert ? c->o.cert : c->uc.cert;
	char err[512] = "";
	sc_cert *cert = NULL;
	sc_key *key = NULL;
	sc_status st;
	int rc, out = -1;

	if (!spec || !cert_file) {
		cli_err(SEND_VERB, "--sign needs your key and certificate: `key` and `cert` in "
			"the config (or --key and --cert)");
		return EX_CONFIG;
	}
	st = sc_cert_load_file(cert_file, &cert);
	if (st != SC_OK) {
		cli_err(SEND_VERB, "your certificate %s: %s", cert_file, sc_strerror(st));
		return EX_CONFIG;
	}
	rc = load_key(c, spec, &key);
	if (rc == EX_OK && !sc_key_matches(key, cert)) {
		cli_err(SEND_VERB, "your key %s does not belong to the certificate %s", spec,
			cert_file);
		rc = EX_CONFIG;
	}
	if (rc == EX_OK)
		rc = start(c, &out);
	if (rc == EX_OK) {
		st = sc_smime_sign(c->fd, out, key, cert, 0, 0, err, sizeof err);
		if (st != SC_OK) {
			cli_err(SEND_VERB, "signing failed: %s", err[0] ? err : sc_strerror(st));
			close(out);
			rc = smime_exit(st);
		} else {
			rc = finish(c, out);
		}
	}
	sc_key_free(key);
	sc_cert_free(cert);
	return rc;
}

int send_encrypt_fd(struct send_ctx *c, int in, const sc_cert *const *certs, size_t n,
		    int *outp, uint64_t *size)
{
	unsigned flags = c->o.hide_subject ? SC_SMIME_HIDE_SUBJECT : 0;
	char err[512] = "";
	sc_status st;
	off_t end;
	int out;

	if (lseek(in, 0, SEEK_SET) != 0 || (out = send_tmpfile()) < 0) {
		cli_err(SEND_VERB, "temporary file: %s", strerror(errno));
		return EX_CANTCREAT;
	}
	st = sc_smime_encrypt(in, out, certs, n, flags, err, sizeof err);
	if (st != SC_OK) {
		cli_err(SEND_VERB, "encryption failed, nothing was sent: %s",
			err[0] ? err : sc_strerror(st));
		close(out);
		return smime_exit(st);
	}
	end = lseek(out, 0, SEEK_END);
	if (end < 0) {
		close(out);
		return EX_IOERR;
	}
	*outp = out;
	*size = (uint64_t)end;
	return EX_OK;
}

int send_encrypt(struct send_ctx *c, const sc_cert *const *certs, size_t n)
{
	uint64_t size;
	int rc, out;

	rc = send_encrypt_fd(c, c->fd, certs, n, &out, &size);
	if (rc != EX_OK)
		return rc;
	close(c->fd);
	c->fd = out;
	c->size = size;
	return EX_OK;
}
