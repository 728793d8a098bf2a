/*
 * writer_serve.c - the writer process (see writer.h): runs as root, reads one
 * request datagram at a time from the serving processes' channels (one per
 * process; answered in turn, one request at a time), re-reads the
 * configuration, does the write and answers. It trusts nothing it is sent:
 * every message is decoded by writer_proto.c; a submission is parsed and judged
 * by the acceptance policy again (a compromised network process cannot queue
 * what the policy refuses); a STORE names only the id of a pending submission,
 * and what is stored is the certificate the writer itself queued under it.
 * A refused message gets an R_ERR answer and the loop goes on.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "seccomp_filter.h"
#include "writer.h"
#include "writer_proto.h"

/* What one request needs from the configuration, loaded per request. */
struct wsrv {
	sc_config *cfg;
	const char *state_dir;
	const char *submissions;
	char err[512];
};

static sc_status wsrv_load(struct wsrv *w, const char *config_path)
{
	memset(w, 0, sizeof *w);
	SC_TRY(sc_config_load(config_path, &w->cfg, w->err, sizeof w->err));
	w->state_dir = sc_config_str(w->cfg, "state_dir");
	w->submissions = sc_config_str(w->cfg, "submissions");
	if (!w->submissions || strcmp(w->submissions, "off") == 0) {
		snprintf(w->err, sizeof w->err, "submissions are off");
		return SC_ERR_CONFIG;
	}
	if (!w->state_dir || !*w->state_dir) {
		snprintf(w->err, sizeof w->err, "state_dir is not set");
		return SC_ERR_CONFIG;
	}
	return SC_OK;
}

static void wsrv_warn(void *arg, const char *msg)
{
	(void)arg;
	log_msg(LOG_WARNING, "writer: %s", msg);
}

static sc_status wsrv_queue(struct wsrv *w, sc_queue **q)
{
	/* where the configuration puts it: state_dir, or a shared pgsql: database */
	sc_status rc = sc_queue_open_ex(w->state_dir, sc_queue_db_spec(w->cfg), q, w->err,
					sizeof w->err);

	if (rc == SC_OK) {
		const char *host = sc_config_str(w->cfg, "hostname");

		sc_queue_set_warn(*q, wsrv_warn, NULL);
		/* audit rows name the node as the network process's would */
		if (host && *host)
			sc_queue_set_node(*q, host);
	}
	return rc;
}

/* The acceptance policy again, with the writer's own view of the CRLs. */
static sc_status wsrv_policy(struct wsrv *w, const sc_cert *c, const struct sc_addr *addr)
{
	const char *const *files;
	size_t n = sc_config_list(w->cfg, "crl_file", &files);
	struct sc_policy pol = { .cfg = w->cfg, .now = time(NULL),
				 .ca_file = sc_config_str(w->cfg, "submission_ca_file") };
	sc_crlset *crls = NULL;
	char reason[256] = "";
	sc_status rc = sc_crlset_new(&crls);

	for (size_t i = 0; i < n && rc == SC_OK; i++)
		rc = sc_crlset_add_file(crls, files[i], w->err, sizeof w->err);
	if (rc == SC_OK) {
		pol.crls = crls;
		rc = sc_policy_check(&pol, c, addr, reason, sizeof reason);
		if (rc != SC_OK)
			snprintf(w->err, sizeof w->err, "policy: %s",
				 reason[0] ? reason : sc_strerror(rc));
	}
	if (crls)
		sc_crlset_free(crls);
	return rc;
}

static sc_status wsrv_submit(struct wsrv *w, const struct wp_submit *s, struct sc_submission *out)
{
	struct sc_addr addr;
	const char *why = NULL;
	sc_cert *c = NULL;
	sc_queue *q = NULL;
	sc_status rc;

	rc = sc_addr_parse(s->address, strlen(s->address), SC_ADDR_UTF8, &addr, &why);
	if (rc != SC_OK) {
		snprintf(w->err, sizeof w->err, "address: %s", why ? why : sc_strerror(rc));
		return rc;
	}
	rc = sc_cert_parse(s->chain, s->chain_len, &c);
	if (rc != SC_OK) {
		snprintf(w->err, sizeof w->err, "certificate: %s", sc_strerror(rc));
		return rc;
	}
	rc = wsrv_policy(w, c, &addr);
	if (rc == SC_OK)
		rc = wsrv_queue(w, &q);
	if (rc == SC_OK) {
		rc = sc_queue_add(q, c, &addr, s->auth_user, s->client, out);
		if (rc != SC_OK)
			snprintf(w->err, sizeof w->err, "queue: %s", sc_strerror(rc));
	}
	if (q)
		sc_queue_close(q);
	sc_cert_free(c);
	return rc;
}

/* The first repository, read-write (as runtime.c opens the others). */
static sc_status wsrv_repo(struct wsrv *w, sc_repo **out)
{
	const char *const *specs;
	const struct sc_repo_ldap_opts ldap = {
		.bind_dn = sc_config_str(w->cfg, "ldap_bind_dn"),
		.bind_password_file = sc_config_str(w->cfg, "ldap_bind_password_file"),
		.starttls = sc_config_bool(w->cfg, "ldap_starttls"),
		.ca_file = sc_config_str(w->cfg, "ldap_ca_file"),
		.timeout = (int)sc_config_int(w->cfg, "ldap_timeout"),
		.cache_ttl = 0,
	};
	char why[400] = "";
	sc_status rc;

	if (sc_config_list(w->cfg, "repository", &specs) == 0) {
		snprintf(w->err, sizeof w->err, "no repository configured");
		return SC_ERR_CONFIG;
	}
	rc = sc_repo_open_ex(specs[0], SC_REPO_CREATE, &ldap, out, why, sizeof why);
	if (rc != SC_OK)
		snprintf(w->err, sizeof w->err, "%s", why[0] ? why : sc_strerror(rc));
	return rc;
}

static sc_status wsrv_store(struct wsrv *w, const char *id, struct sc_submission *out)
{
	struct sc_addr addr;
	const char *why = NULL;
	sc_cert *c = NULL;
	sc_queue *q = NULL;
	sc_repo *r = NULL;
	sc_status rc;

	if (strcmp(w->submissions, "auto") != 0) {
		snprintf(w->err, sizeof w->err, "submissions are not auto");
		return SC_ERR_PERM;
	}
	SC_TRY(wsrv_queue(w, &q));
	rc = sc_queue_get(q, id, out, &c);
	if (rc != SC_OK)
		snprintf(w->err, sizeof w->err, "%s: %s", id, sc_strerror(rc));
	else if (out->state != SC_SUB_PENDING) {
		snprintf(w->err, sizeof w->err, "%s: already decided", id);
		rc = SC_ERR_EXISTS;
	} else if ((rc = sc_addr_parse(out->address, strlen(out->address), SC_ADDR_UTF8, &addr,
				       &why)) != SC_OK)
		snprintf(w->err, sizeof w->err, "%s: stored address: %s", id, why ? why : "bad");
	else if ((rc = wsrv_repo(w, &r)) == SC_OK) {
		rc = sc_repo_store(r, &addr, c);
		if (rc != SC_OK)
			snprintf(w->err, sizeof w->err, "cannot store into %s: %s", sc_repo_name(r),
				 sc_strerror(rc));
		sc_repo_close(r);
	}
	if (rc == SC_OK) {
		rc = sc_queue_decide(q, id, 1, NULL, "auto");
		if (rc != SC_OK)
			snprintf(w->err, sizeof w->err, "%s: stored, but recording the decision "
				 "failed: %s", id, sc_strerror(rc));
		else {
			out->state = SC_SUB_ACCEPTED;
			out->decided = (int64_t)time(NULL);
		}
	}
	if (c)
		sc_cert_free(c);
	sc_queue_close(q);
	return rc;
}

/* Handle one datagram of @p n octets; the answer goes into @p out. */
static size_t wsrv_handle(const char *config_path, const uint8_t *in, size_t n, uint8_t *out,
			  size_t cap)
{
	struct wp_msg m;
	struct wp_submit s;
	struct sc_submission sub;
	char id[SC_QUEUE_ID_LEN + 1];
	struct wsrv w;
	size_t len = 0;
	sc_status rc = wp_header_decode(in, n, &m);

	memset(&w, 0, sizeof w);
	if (rc != SC_OK)
		snprintf(w.err, sizeof w.err, "%s", rc == SC_ERR_UNSUPPORTED ?
			 "unsupported protocol version" : "malformed header");
	else if (m.type == WP_SUBMIT) {
		rc = wp_decode_submit(&m, &s);
		if (rc != SC_OK)
			snprintf(w.err, sizeof w.err, "malformed SUBMIT");
		else if ((rc = wsrv_load(&w, config_path)) == SC_OK)
			rc = wsrv_submit(&w, &s, &sub);
	} else if (m.type == WP_STORE) {
		rc = wp_decode_store(&m, id);
		if (rc != SC_OK)
			snprintf(w.err, sizeof w.err, "malformed STORE");
		else if ((rc = wsrv_load(&w, config_path)) == SC_OK)
			rc = wsrv_store(&w, id, &sub);
	} else {
		rc = SC_ERR_UNSUPPORTED;
		snprintf(w.err, sizeof w.err, "unknown message type %u", m.type);
	}
	if (w.cfg)
		sc_config_free(w.cfg);
	if (rc == SC_OK && wp_encode_sub(out, cap, m.seq, &sub, &len) == SC_OK)
		return len;
	if (rc == SC_OK) {
		rc = SC_ERR_INTERNAL;
		snprintf(w.err, sizeof w.err, "answer does not encode");
	}
	log_msg(LOG_WARNING, "writer: request refused: %s", w.err[0] ? w.err : sc_strerror(rc));
	if (wp_encode_err(out, cap, m.seq, rc, w.err[0] ? w.err : sc_strerror(rc), &len) != SC_OK)
		return 0;
	return len;
}

/* One datagram from @p sock: answer it. @return 0 when the socket is done. */
static int writer_serve_one(int sock, const char *config_path)
{
	static uint8_t in[WP_MSG_MAX], out[WP_MSG_MAX];
	ssize_t n = recv(sock, in, sizeof in, MSG_TRUNC | MSG_DONTWAIT);
	size_t len;

	if (n <= 0)
		return n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK);
	if ((size_t)n > sizeof in) {
		struct wp_msg m;

		/* truncated by the socket: answer with what the header says */
		if (wp_header_decode(in, sizeof in, &m) != SC_OK && !m.seq)
			m.seq = 0;
		log_msg(LOG_WARNING, "writer: request refused: %zd octets, over %d", n, WP_MSG_MAX);
		if (wp_encode_err(out, sizeof out, m.seq, SC_ERR_TOO_LONG, "message too large",
				  &len) != SC_OK)
			return 1;
	} else
		len = wsrv_handle(config_path, in, (size_t)n, out, sizeof out);
	if (len)
		(void)send(sock, out, len, MSG_NOSIGNAL);
	return 1;
}

void writer_serve(const int *socks, unsigned nsocks, const char *config_path)
{
	struct pollfd p[WRITER_CHANNELS_MAX];
	unsigned open_socks = 0;

	/* the network processes decide when to stop: all their ends closing ends it */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	(void)prctl(PR_SET_NAME, "smtpcertd-write");
	seccomp_filter_child(config_path, "writer", socks[0]);
	for (unsigned i = 0; i < nsocks && i < WRITER_CHANNELS_MAX; i++) {
		p[i].fd = socks[i];
		p[i].events = POLLIN;
		open_socks++;
	}
	while (open_socks > 0) {
		/* one request at a time, whichever process sent it: the queue and
		 * the stores see one writer */
		if (poll(p, nsocks, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (unsigned i = 0; i < nsocks; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if (!writer_serve_one(p[i].fd, config_path)) {
				close(p[i].fd);
				p[i].fd = -1; /* poll ignores it from now on */
				open_socks--;
			}
		}
	}
	_exit(0);
}
