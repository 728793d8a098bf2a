/*
 * writer.c - starting the writer process and asking it (see writer.h). Each
 * serving process owns one end of its own socketpair (one channel per process
 * with `workers`, made before the forks; the master keeps them all); its worker
 * threads take turns on it under a mutex, so a request and its reply are never interleaved with
 * another thread's. A reply carries its request's sequence number: a late reply
 * to a request that timed out is recognised and dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "seccomp_filter.h"
#include "shared.h"
#include "writer.h"
#include "writer_proto.h"

static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;
/* how the writer ended, once reaped (writer_reap() on the loop or
 * writer_gone() on a worker); guarded by writer_how_lock, never held long */
static pthread_mutex_t writer_how_lock = PTHREAD_MUTEX_INITIALIZER;
static char writer_how[64];
static int writer_reaped;
static int writer_fd = -1;
/* every process's channel, until each serving process keeps its own */
static int writer_fds[WRITER_CHANNELS_MAX];
static unsigned writer_nfds;
static int writer_started;
static pid_t writer_child;
static uint32_t writer_seq;
/* request and reply buffers, used under writer_lock */
static uint8_t writer_req[WP_MSG_MAX], writer_rep[WP_MSG_MAX];

int writer_enabled(void)
{
	return writer_started;
}

pid_t writer_pid(void)
{
	return writer_child;
}

sc_status writer_start(const char *config_path, const char *user, unsigned channels, char *err,
		       size_t errlen)
{
	int bufsize = 2 * WP_MSG_MAX, mine[WRITER_CHANNELS_MAX], theirs[WRITER_CHANNELS_MAX];
	struct passwd *pw;
	pid_t pid;

	SC_ENSURE_ARG(config_path && user);
	SC_ENSURE(channels >= 1 && channels <= WRITER_CHANNELS_MAX, SC_ERR_ARG);
	pw = getpwnam(user);
	if (!pw || pw->pw_uid == 0) {
		snprintf(err, errlen, "user: %s: %s", user, pw ? "must not be root" : "no such user");
		return SC_ERR_CONFIG;
	}
	SC_TRY(writer_prepare_state(config_path, pw->pw_uid, pw->pw_gid, err, errlen));
	for (unsigned c = 0; c < channels; c++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
			snprintf(err, errlen, "writer: socketpair: %s", strerror(errno));
			for (unsigned i = 0; i < c; i++) {
				close(mine[i]);
				close(theirs[i]);
			}
			return SC_ERR_IO;
		}
		/* one datagram must fit the largest message (root may exceed wmem_max) */
		for (int i = 0; i < 2; i++) {
			(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof bufsize);
			(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof bufsize);
		}
		mine[c] = sv[0];
		theirs[c] = sv[1];
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "writer: fork: %s", strerror(errno));
		for (unsigned i = 0; i < channels; i++) {
			close(mine[i]);
			close(theirs[i]);
		}
		return SC_ERR_IO;
	}
	if (pid == 0) {
		for (unsigned i = 0; i < channels; i++)
			close(mine[i]);
		listener_close_all(); /* the writer never talks to the network */
		writer_serve(theirs, channels, config_path);
		_exit(0);
	}
	for (unsigned i = 0; i < channels; i++) {
		close(theirs[i]);
		writer_fds[i] = mine[i];
	}
	writer_nfds = channels;
	writer_fd = mine[0];
	writer_child = pid;
	writer_started = 1;
	SC_TRY(seccomp_child_wait(writer_fd, "writer", err, errlen));
	log_msg(LOG_INFO, "privsep: writer process %ld owns the queue, the audit log and "
		"repository writes", (long)pid);
	return SC_OK;
}

void writer_use_channel(unsigned index)
{
	for (unsigned i = 0; i < writer_nfds; i++)
		if (i != index && writer_fds[i] >= 0) {
			close(writer_fds[i]);
			writer_fds[i] = -1;
		}
	writer_fd = index < writer_nfds ? writer_fds[index] : -1;
	/* a process restarted on a dead one's channel must not take an answer
	 * to a request the dead one left in the writer for its own */
	writer_seq = (uint32_t)shared_seed();
}

void writer_close_channels(void)
{
	writer_use_channel(WRITER_CHANNELS_MAX);
}

/* Reap the writer if it has ended; *@p how gets " (killed by signal N)" or
 * " (exit status N)" once it has. @return 1 when it has ended. */
static int writer_ended(char *how, size_t size)
{
	int status = 0, ended;

	pthread_mutex_lock(&writer_how_lock);
	if (!writer_reaped && writer_child > 0 &&
	    waitpid(writer_child, &status, WNOHANG) == writer_child) {
		writer_reaped = 1;
		if (WIFSIGNALED(status))
			snprintf(writer_how, sizeof writer_how, " (killed by signal %d)",
				 WTERMSIG(status));
		else if (WIFEXITED(status))
			snprintf(writer_how, sizeof writer_how, " (exit status %d)",
				 WEXITSTATUS(status));
	}
	ended = writer_reaped;
	snprintf(how, size, "%s", writer_how);
	pthread_mutex_unlock(&writer_how_lock);
	return ended;
}

void writer_reap(void)
{
	char how[64];

	if (writer_started && !writer_reaped && writer_ended(how, sizeof how))
		log_msg(LOG_ERR, "privsep: writer process %ld ended%s; submissions are answered "
			"451 4.3.0 until smtpcertd is restarted", (long)writer_child, how);
}

void writer_reaped_status(int status)
{
	pthread_mutex_lock(&writer_how_lock);
	writer_reaped = 1;
	if (WIFSIGNALED(status))
		snprintf(writer_how, sizeof writer_how, " (killed by signal %d)", WTERMSIG(status));
	else if (WIFEXITED(status))
		snprintf(writer_how, sizeof writer_how, " (exit status %d)", WEXITSTATUS(status));
	pthread_mutex_unlock(&writer_how_lock);
	log_msg(LOG_ERR, "privsep: writer process %ld ended%s; submissions are answered "
		"451 4.3.0 until smtpcertd is restarted", (long)writer_child, writer_how);
}

/* The writer is gone (EOF, a send error): say so once, reap it, stop asking. */
static void writer_gone(const char *what, int e)
{
	char how[64];

	(void)writer_ended(how, sizeof how);
	log_msg(LOG_ERR, "privsep: writer process %ld is gone%s: %s%s%s; submissions are "
		"answered 451 4.3.0 until smtpcertd is restarted", (long)writer_child, how, what,
		e ? ": " : "", e ? strerror(e) : "");
	close(writer_fd);
	writer_fd = -1;
}

/* Send writer_req (@p len octets, sequence number @p seq) and wait for its
 * reply in writer_rep. Caller holds writer_lock. */
static sc_status writer_call(size_t len, uint32_t seq, struct wp_msg *m, char *why,
			     size_t whylen)
{
	struct timeval tv = { WRITER_TIMEOUT_SECONDS, 0 };

	if (writer_fd < 0) {
		snprintf(why, whylen, "writer: not running");
		return SC_ERR_TEMP;
	}
	/* replies to requests that timed out earlier: not ours */
	while (recv(writer_fd, writer_rep, sizeof writer_rep, MSG_DONTWAIT) > 0)
		;
	(void)setsockopt(writer_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (send(writer_fd, writer_req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		snprintf(why, whylen, "writer: %s", strerror(errno));
		writer_gone("cannot send a request", errno);
		return SC_ERR_TEMP;
	}
	for (;;) {
		ssize_t n = recv(writer_fd, writer_rep, sizeof writer_rep, MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			snprintf(why, whylen, "writer: no answer within %d s", WRITER_TIMEOUT_SECONDS);
			log_msg(LOG_ERR, "privsep: writer process %ld did not answer within %d s",
				(long)writer_child, WRITER_TIMEOUT_SECONDS);
			return SC_ERR_TEMP;
		}
		if (n <= 0) {
			snprintf(why, whylen, "writer: %s", n == 0 ? "exited" : strerror(errno));
			writer_gone(n == 0 ? "its socket closed" : "cannot read its answer",
				    n == 0 ? 0 : errno);
			return SC_ERR_TEMP;
		}
		if ((size_t)n > sizeof writer_rep || wp_header_decode(writer_rep, (size_t)n, m) != SC_OK) {
			/* the writer is root and trusted, but never crash on it */
			snprintf(why, whylen, "writer: malformed answer");
			log_msg(LOG_ERR, "privsep: malformed answer from the writer process");
			return SC_ERR_PROTOCOL;
		}
		if (m->seq == seq)
			return SC_OK;
	}
}

/* Decode a R_SUB or R_ERR answer into @p out / the returned status. */
static sc_status writer_answer(const struct wp_msg *m, struct sc_submission *out, char *why,
			       size_t whylen)
{
	char msg[WP_ERRMSG_MAX];
	sc_status st;

	if (m->type == WP_R_SUB) {
		if (wp_decode_sub(m, out) == SC_OK)
			return SC_OK;
	} else if (m->type == WP_R_ERR && wp_decode_err(m, &st, msg, sizeof msg) == SC_OK) {
		snprintf(why, whylen, "writer: %s", msg[0] ? msg : sc_strerror(st));
		return st;
	}
	snprintf(why, whylen, "writer: malformed answer");
	return SC_ERR_PROTOCOL;
}

/* With writer_lock held, after encoding request writer_seq (@p len bytes in
 * writer_req) returned @p enc: send it and decode the answer into @p out, or
 * report @p enc_why when the encoding failed. */
static sc_status writer_exchange(sc_status enc, const char *enc_why, size_t len,
				 struct sc_submission *out, char *why, size_t whylen)
{
	struct wp_msg m;
	sc_status rc;

	if (enc != SC_OK) {
		snprintf(why, whylen, "%s", enc_why);
		return enc;
	}
	rc = writer_call(len, writer_seq, &m, why, whylen);
	if (rc == SC_OK)
		rc = writer_answer(&m, out, why, whylen);
	return rc;
}

sc_status writer_submit(const sc_cert *c, const struct sc_addr *addr, const char *auth_user,
			const char *client, struct sc_submission *out, char *why, size_t whylen)
{
	struct wp_submit s;
	uint8_t *chain;
	size_t len = 0, n = sc_cert_count(c);
	sc_status rc;

	SC_ENSURE_ARG(c && addr && out && why);
	memset(&s, 0, sizeof s);
	why[0] = '\0';
	if (sc_addr_format(addr, s.address, sizeof s.address) != SC_OK) {
		snprintf(why, whylen, "writer: address too long");
		return SC_ERR_TOO_LONG;
	}
	snprintf(s.auth_user, sizeof s.auth_user, "%s", auth_user ? auth_user : "");
	snprintf(s.client, sizeof s.client, "%s", client ? client : "");
	chain = malloc(WP_PAYLOAD_MAX);
	if (!chain)
		return SC_ERR_NOMEM;
	/* the chain as DER, back to back: what sc_cert_parse() reads in the writer */
	for (size_t i = 0; i < n; i++) {
		const uint8_t *der;
		size_t dlen;

		if (sc_cert_der(c, i, &der, &dlen) != SC_OK || dlen > WP_PAYLOAD_MAX - len) {
			free(chain);
			snprintf(why, whylen, "writer: certificate chain too large");
			return SC_ERR_TOO_LONG;
		}
		memcpy(chain + len, der, dlen);
		len += dlen;
	}
	s.chain = chain;
	s.chain_len = len;
	pthread_mutex_lock(&writer_lock);
	rc = wp_encode_submit(writer_req, sizeof writer_req, ++writer_seq, &s, &len);
	free(chain);
	rc = writer_exchange(rc, "writer: request too large", len, out, why, whylen);
	pthread_mutex_unlock(&writer_lock);
	return rc;
}

sc_status writer_store(const char *id, struct sc_submission *out, char *why, size_t whylen)
{
	size_t len = 0;
	sc_status rc;

	SC_ENSURE_ARG(id && out && why);
	why[0] = '\0';
	pthread_mutex_lock(&writer_lock);
	rc = wp_encode_store(writer_req, sizeof writer_req, ++writer_seq, id, &len);
	rc = writer_exchange(rc, "writer: not a submission id", len, out, why, whylen);
	pthread_mutex_unlock(&writer_lock);
	return rc;
}
