/*
 * delivery.c - where an accepted message goes (see delivery.h): checks the
 * arguments, decides once per message what encryption at rest does with it
 * (delivery_crypt.c), then hands every recipient to the configured store -
 * a Maildir per recipient (delivery_maildir.c) or an LMTP server
 * (delivery_lmtp.c). delivery_send_buffer() carries the daemon's own mail
 * (postmaster notices, notify.c) the same way, or to the backend MTA of a
 * proxy: deployment. Also the small shared helpers of delivery_int.h.
 * Worker threads of the daemon: blocking, touches no session and no runtime.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery.h"
#include "delivery_int.h"

void delivery_set(struct delivery_rcpt *r, int code, const char *enhanced, const char *text,
		  const char *detail)
{
	r->code = code;
	snprintf(r->enhanced, sizeof r->enhanced, "%s", enhanced);
	snprintf(r->text, sizeof r->text, "%s", text);
	snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

sc_status delivery_hostport(const char *spec, char *host, size_t hsize, char *port, size_t psize)
{
	const char *hp = strchr(spec, ':'), *colon;
	size_t hl;

	if (!hp)
		return SC_ERR_CONFIG;
	hp++;
	colon = strrchr(hp, ':');
	if (!colon || colon == hp || !colon[1] || strlen(colon + 1) >= psize ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return SC_ERR_CONFIG;
	hl = (size_t)(colon - hp);
	if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {
		hp++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hsize)
		return SC_ERR_CONFIG;
	memcpy(host, hp, hl);
	host[hl] = '\0';
	snprintf(port, psize, "%s", colon + 1);
	return SC_OK;
}

int delivery_tmpfile(const struct delivery_cfg *cfg)
{
	const char *dir = cfg->tmp_dir[0] ? cfg->tmp_dir : getenv("TMPDIR");
	char path[PATH_MAX + 32];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* EOPNOTSUPP/EISDIR: a file system without O_TMPFILE, use a name */
#endif
	if ((size_t)snprintf(path, sizeof path, "%s/smtpcertd-delivery-XXXXXX", dir) >=
	    sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* Every recipient without a result gets this one. */
static void delivery_set_all(struct delivery_msg *m, int code, const char *enhanced,
			     const char *text, const char *detail)
{
	for (size_t i = 0; i < m->nrcpt; i++)
		if (!m->rcpt[i].code)
			delivery_set(&m->rcpt[i], code, enhanced, text, detail);
}

sc_status delivery_run(const struct delivery_cfg *cfg, struct delivery_msg *m)
{
	struct delivery_plan plan = { 0 };
	sc_status rc;

	SC_ENSURE_ARG(cfg && m && (m->rcpt || m->nrcpt == 0));
	SC_ENSURE(m->fd >= 0, SC_ERR_ARG);
	for (size_t i = 0; i < m->nrcpt; i++) {
		struct delivery_rcpt *r = &m->rcpt[i];

		r->code = 0;
		r->enhanced[0] = r->text[0] = r->detail[0] = '\0';
		r->encrypted = 0;
	}
	if (m->nrcpt == 0)
		return SC_OK;
	rc = delivery_crypt_plan(cfg, m, &plan);
	if (rc != SC_OK) {
		delivery_set_all(m, 451, "4.3.0", "Temporary local problem, try again later",
				 "cannot read the spooled message");
		return SC_OK;
	}
	if (plan.unparsable) {
		/* The routing fields cannot be told from the rest, so the copy cannot
		 * be encrypted as promised; one answer for all recipients, so the
		 * client sees a single consistent reply to DATA. */
		delivery_set_all(m, 554, "5.6.0",
				 "Message header malformed: cannot be encrypted at rest",
				 "header block unparsable (RFC 5322 2.2)");
		return SC_OK;
	}
	if (!strncmp(cfg->spec, "maildir:", 8))
		return delivery_maildir_run(cfg, m, &plan);
	if (!strncmp(cfg->spec, "lmtp:", 5))
		return delivery_lmtp_run(cfg, m, &plan);
	delivery_set_all(m, 451, "4.3.5", "Mail delivery not configured, try again later",
			 "delivery is not maildir: or lmtp:");
	return SC_ERR_CONFIG;
}

/* A temporary file holding @p msg, for the SMTP/LMTP clients that stream from an fd. */
static int delivery_buffer_file(const struct delivery_cfg *cfg, const char *msg, size_t len)
{
	int fd = delivery_tmpfile(cfg);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t w = write(fd, msg + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	return fd;
}

sc_status delivery_send_buffer(const struct delivery_cfg *cfg, const char *from,
			       const struct sc_addr *rcpt, const char *msg, size_t len, char *err,
			       size_t errlen)
{
	struct delivery_rcpt r;
	sc_status rc;
	int lmtp, fd;

	SC_ENSURE_ARG(cfg && rcpt && (msg || len == 0));
	if (err && errlen)
		err[0] = '\0';
	if (!strncmp(cfg->spec, "maildir:", 8)) {
		rc = sc_maildir_deliver(cfg->spec, rcpt, msg, len, err, errlen);
		/* an address that cannot name a Maildir never will: permanent */
		if (rc == SC_ERR_SYNTAX || rc == SC_ERR_TOO_LONG)
			return SC_ERR_REJECTED;
		return rc;
	}
	lmtp = !strncmp(cfg->spec, "lmtp:", 5);
	if (!lmtp && strncmp(cfg->spec, "proxy:", 6)) {
		if (err && errlen)
			snprintf(err, errlen, "delivery %s: not maildir:, lmtp: or proxy:",
				 cfg->spec);
		return SC_ERR_CONFIG;
	}
	fd = delivery_buffer_file(cfg, msg, len);
	if (fd < 0) {
		if (err && errlen)
			snprintf(err, errlen, "staging the message: %s", strerror(errno));
		return SC_ERR_IO;
	}
	memset(&r, 0, sizeof r);
	r.addr = *rcpt;
	rc = delivery_smtp_one(cfg, lmtp, from ? from : "", fd, len, &r);
	close(fd);
	if (rc != SC_OK && rc != SC_ERR_TEMP && rc != SC_ERR_REJECTED) {
		if (err && errlen)
			snprintf(err, errlen, "%s", r.detail[0] ? r.detail : sc_strerror(rc));
		return rc;
	}
	if (err && errlen && r.code / 100 != 2)
		snprintf(err, errlen, "%s: %d %s %s", cfg->spec, r.code, r.enhanced,
			 r.detail[0] ? r.detail : r.text);
	return r.code / 100 == 2 ? SC_OK : r.code / 100 == 4 ? SC_ERR_TEMP : SC_ERR_REJECTED;
}
