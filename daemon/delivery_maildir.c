/*
 * delivery_maildir.c - `delivery = maildir:/base/%d/%n`: each recipient gets a
 * copy of its own in its own Maildir (created on demand), by the Maildir
 * protocol of lib/maildir.c: write tmp/<unique> (streamed from the spool with
 * pread, LF line ends), fsync, link into new/, fsync new/; only then 250. A
 * failure removes the tmp/ file and leaves nothing in new/. A recipient whose
 * copy is encrypted at rest has the S/MIME encryption stream straight into its
 * tmp/ file, so the plaintext never touches that Maildir.
 * Worker threads of the daemon.
 */
#include <stdio.h>
#include <string.h>

#include "delivery.h"
#include "delivery_int.h"

/* Copy what sc_maildir_deliver_with() needs to call delivery_crypt_write(). */
struct maildir_crypt {
	const struct delivery_msg *m;
	const sc_cert *cert;
};

static sc_status maildir_crypt_writer(int out_fd, void *arg, char *err, size_t errlen)
{
	const struct maildir_crypt *c = arg;

	return delivery_crypt_write(c->m, c->cert, out_fd, 1, err, errlen);
}

/* Turn a delivery status into the recipient's reply; @p err goes to the log only. */
static void maildir_result(struct delivery_rcpt *r, sc_status st, const char *err)
{
	switch (st) {
	case SC_OK:
		delivery_set(r, 250, "2.0.0",
			     r->encrypted ? "Delivered, encrypted at rest" : "Delivered", err);
		break;
	case SC_ERR_SYNTAX:
	case SC_ERR_TOO_LONG:
		/* the address cannot be a path component (RFC 3463 X.1.3): it will
		 * not become one on a retry */
		delivery_set(r, 550, "5.1.3", "Mailbox name not usable for local delivery", err);
		break;
	case SC_ERR_CONFIG:
		delivery_set(r, 451, "4.3.5", "Mail delivery misconfigured, try again later", err);
		break;
	default:
		delivery_set(r, 451, "4.3.0", "Temporary local problem, try again later", err);
		break;
	}
}

sc_status delivery_maildir_run(const struct delivery_cfg *cfg, struct delivery_msg *m,
			       const struct delivery_plan *plan)
{
	for (size_t i = 0; i < m->nrcpt; i++) {
		struct delivery_rcpt *r = &m->rcpt[i];
		char err[DELIVERY_TEXT_MAX] = "", why[DELIVERY_TEXT_MAX];
		struct maildir_crypt c = { m, r->cert };
		sc_status st;

		if (r->code)
			continue;
		if (!delivery_crypt_wanted(cfg, plan, r)) {
			st = sc_maildir_deliver_fd(cfg->spec, &r->addr, m->fd, m->size, err,
						   sizeof err);
			maildir_result(r, st, err);
			continue;
		}
		st = sc_maildir_deliver_with(cfg->spec, &r->addr, maildir_crypt_writer, &c, err,
					     sizeof err);
		if (st == SC_OK) {
			r->encrypted = 1;
		} else if (st == SC_ERR_UNSUPPORTED) {
			/* The recipient's certificate holds a key S/MIME cannot encrypt
			 * to (Ed25519...): nobody could read an encrypted copy, so it is
			 * stored as received, and the log says why. */
			snprintf(why, sizeof why, "stored unencrypted: %.175s", err);
			err[0] = '\0';
			st = sc_maildir_deliver_fd(cfg->spec, &r->addr, m->fd, m->size, err,
						   sizeof err);
			maildir_result(r, st, st == SC_OK ? why : err);
			continue;
		}
		maildir_result(r, st, err);
	}
	return SC_OK;
}
