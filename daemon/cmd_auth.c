/*
 * cmd_auth.c - SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN
 * mechanisms, offered only inside TLS. Owns the per-session authentication
 * state (struct auth_dialog): the dialogue step, the credentials while they
 * are verified, the worker job and the failure-delay timer. Daemon process;
 * the dialogue runs on the event loop, verification (crypt, Dovecot) on the
 * worker threads (worker.h), the result comes back on the loop.
 *
 *   AUTH PLAIN [resp] / AUTH LOGIN [resp]    -> 334 prompts (SESSION_AUTH)
 *   credentials complete                     -> worker job (SESSION_AUTH_WAIT)
 *   job done: 235 | 454 | failure delay timer -> 535           (SESSION_READY)
 *
 * Passwords are never logged and are wiped once verified.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>

#include "authlimit.h"
#include "cmd_auth.h"
#include "commands.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"
#include "sasl.h"
#include "session.h"
#include "worker.h"

#define AUTH_USER_MAX 512
#define AUTH_PASS_MAX 1024

enum auth_mech { AUTH_PLAIN, AUTH_LOGIN };
enum auth_step { AUTH_STEP_PLAIN, AUTH_STEP_USER, AUTH_STEP_PASS, AUTH_STEP_WAIT };

/* The worker job: shared by the session (loop) and the worker thread until
 * done runs; session == NULL means the session ended (worker.h pattern). */
struct auth_job {
	struct session *session;
	struct runtime *rt;        /* referenced: keeps rt->auth open during work */
	char user[AUTH_USER_MAX + 1];
	char pass[AUTH_PASS_MAX + 1];
	char ip[64];
	char canon[SC_ADDR_KEY_MAX];
	sc_status result;
};

struct auth_dialog {
	enum auth_mech mech;
	enum auth_step step;
	struct auth_job *job;      /* in flight, NULL otherwise */
	struct event *delay;       /* 535 after auth_fail_delay */
	char user[AUTH_USER_MAX + 1];
};

static const char *cmd_auth_mech_name(enum auth_mech m)
{
	return m == AUTH_PLAIN ? "PLAIN" : "LOGIN";
}

/* Log the outcome: the user name (escaped), never the password. */
static void cmd_auth_log(struct session *s, const char *user, int code, const char *status)
{
	char u[128];

	log_escape(user, strlen(user), u, sizeof u);
	log_msg(LOG_INFO, "client=%s session=%s cmd=AUTH mech=%s user=%s result=%d status=%s",
		s->peer, s->id, s->auth ? cmd_auth_mech_name(s->auth->mech) : "-",
		user[0] ? u : "-", code, status);
}

/* End the dialogue (the timer and any job are gone) and take commands again. */
static void cmd_auth_end(struct session *s)
{
	struct auth_dialog *d = s->auth;

	if (d) {
		if (d->delay)
			event_free(d->delay);
		explicit_bzero(d, sizeof *d);
		free(d);
		s->auth = NULL;
	}
	if (s->state == SESSION_AUTH || s->state == SESSION_AUTH_WAIT)
		session_enter(s, SESSION_READY);
}

/* Reply after the dialogue ended asynchronously: let the connection send it. */
static void cmd_auth_wake(struct session *s)
{
	if (s->wake)
		s->wake(s);
}

static void cmd_auth_work(void *arg)
{
	struct auth_job *j = arg;

	j->result = sc_auth_verify(j->rt->auth, j->user, j->pass, j->ip[0] ? j->ip : NULL,
				   CMD_AUTH_TIMEOUT_MS, j->canon, sizeof j->canon);
	explicit_bzero(j->pass, sizeof j->pass);
}

static void cmd_auth_reply_535(struct session *s)
{
	/* RFC 4954 6: 535 5.7.8 */
	reply(s, "535 5.7.8 Authentication credentials invalid");
	cmd_auth_log(s, s->auth ? s->auth->user : "", 535, "5.7.8");
	cmd_auth_end(s);
}

static void cmd_auth_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	cmd_auth_reply_535(s);
	cmd_auth_wake(s);
}

/* The name failures are counted under: the address lookup key, so that
 * "Alice@Example.TEST" and "alice@example.test" share one counter (as they
 * share one passwd: entry); other names ASCII-lowercased. */
static void cmd_auth_limit_key(const char *user, char *key, size_t size)
{
	struct sc_addr a;
	size_t i;

	if (sc_addr_parse(user, strlen(user), SC_ADDR_UTF8, &a, NULL) == SC_OK &&
	    sc_addr_key(&a, key, size, NULL) == SC_OK)
		return;
	for (i = 0; user[i] && i + 1 < size; i++)
		key[i] = (char)(user[i] >= 'A' && user[i] <= 'Z' ? user[i] + 32 : user[i]);
	key[i] = '\0';
}

/* A wrong user or password: count it, answer 535 after the delay. */
static void cmd_auth_failed(struct session *s)
{
	struct auth_dialog *d = s->auth;
	struct worker *w = worker_default();
	struct timeval tv = { s->rt->auth_fail_delay, 0 };
	char ip[64], key[AUTH_USER_MAX + 1];
	time_t now = time(NULL);

	authlimit_peer_ip(s->peer, ip, sizeof ip);
	authlimit_fail(AUTHLIMIT_IP, ip, now);
	cmd_auth_limit_key(d->user, key, sizeof key);
	authlimit_fail(AUTHLIMIT_USER, key, now);
	/* the delay slows guessing without holding a worker thread or the loop */
	if (w && tv.tv_sec > 0) {
		d->delay = evtimer_new(worker_base(w), cmd_auth_delay_cb, s);
		if (d->delay && evtimer_add(d->delay, &tv) == 0)
			return;
	}
	/* no delay configured (or no timer): answer now; the caller's context
	 * sends it (command handler) or wakes the connection (job done) */
	cmd_auth_reply_535(s);
}

static void cmd_auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct session *s = j->session;

	runtime_unref(j->rt);
	if (!s) {
		/* the session ended while the job ran */
		explicit_bzero(j, sizeof *j);
		free(j);
		return;
	}
	s->auth->job = NULL;
	switch (j->result) {
	case SC_OK:
		/* the source's spelling; a source that names nobody: the login name
		 * (cmd_auth_verify() keeps it shorter than auth_user) */
		{
			const char *who = j->canon[0] ? j->canon : j->user;
			size_t n = strnlen(who, sizeof s->auth_user - 1);

			memcpy(s->auth_user, who, n);
			s->auth_user[n] = '\0';
		}
		reply(s, "235 2.7.0 Authentication successful");
		cmd_auth_log(s, s->auth_user, 235, "2.7.0");
		cmd_auth_end(s);
		break;
	case SC_ERR_REJECTED:
		cmd_auth_failed(s);
		break;
	default:
		log_msg(LOG_WARNING, "client=%s session=%s auth source unavailable: %s", s->peer,
			s->id, sc_strerror(j->result));
		reply(s, "454 4.7.0 Temporary authentication failure");
		cmd_auth_log(s, s->auth->user, 454, "4.7.0");
		cmd_auth_end(s);
		break;
	}
	explicit_bzero(j, sizeof *j);
	free(j);
	if (s->state != SESSION_AUTH_WAIT)
		cmd_auth_wake(s);
}

static int cmd_auth_user_blocked(struct session *s, const char *user)
{
	char key[AUTH_USER_MAX + 1];

	cmd_auth_limit_key(user, key, sizeof key);
	return authlimit_blocked(AUTHLIMIT_USER, key, (unsigned)s->rt->auth_max_failures,
				 time(NULL));
}

/* Credentials complete: hand them to a worker thread. */
static void cmd_auth_verify(struct session *s, const char *user, const char *pass)
{
	struct auth_dialog *d = s->auth;
	struct worker *w = worker_default();
	struct auth_job *j;

	snprintf(d->user, sizeof d->user, "%s", user);
	/* a name longer than any address (the identity CERC compares) is wrong */
	if (strlen(user) >= sizeof s->auth_user || strlen(pass) > AUTH_PASS_MAX) {
		d->step = AUTH_STEP_WAIT;
		session_enter(s, SESSION_AUTH_WAIT);
		cmd_auth_failed(s);
		return;
	}
	if (cmd_auth_user_blocked(s, user)) {
		reply(s, "454 4.7.0 Too many authentication failures");
		cmd_auth_log(s, d->user, 454, "4.7.0");
		cmd_auth_end(s);
		return;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		reply(s, "454 4.7.0 Temporary authentication failure");
		cmd_auth_end(s);
		return;
	}
	j->session = s;
	j->rt = s->rt;
	runtime_ref(j->rt);
	snprintf(j->user, sizeof j->user, "%s", user);
	snprintf(j->pass, sizeof j->pass, "%s", pass);
	authlimit_peer_ip(s->peer, j->ip, sizeof j->ip);
	d->job = j;
	d->step = AUTH_STEP_WAIT;
	session_enter(s, SESSION_AUTH_WAIT);
	if (!w) {
		/* no pool (unit tests, fuzz target): verify inline */
		cmd_auth_work(j);
		cmd_auth_done(j);
		return;
	}
	if (worker_submit(w, cmd_auth_work, cmd_auth_done, j) != SC_OK) {
		d->job = NULL;
		runtime_unref(j->rt);
		explicit_bzero(j, sizeof *j);
		free(j);
		reply(s, "454 4.7.0 Temporary authentication failure");
		cmd_auth_log(s, d->user, 454, "4.7.0");
		cmd_auth_end(s);
	}
}

/* One decoded response, in the dialogue step it answers. */
static void cmd_auth_response(struct session *s, char *msg, size_t len)
{
	struct auth_dialog *d = s->auth;
	const char *user, *pass;
	sc_status rc;

	switch (d->step) {
	case AUTH_STEP_PLAIN:
		rc = sasl_plain_split(msg, len, &user, &pass);
		if (rc == SC_ERR_SYNTAX) {
			reply(s, "501 5.5.2 Malformed PLAIN response");
			cmd_auth_end(s);
			return;
		}
		if (rc != SC_OK) {
			/* RFC 4616 2: authorization as another identity: refused */
			snprintf(d->user, sizeof d->user, "%s", user);
			d->step = AUTH_STEP_WAIT;
			session_enter(s, SESSION_AUTH_WAIT);
			cmd_auth_failed(s);
			return;
		}
		cmd_auth_verify(s, user, pass);
		return;
	case AUTH_STEP_USER:
		if (len == 0 || memchr(msg, '\0', len) || len > AUTH_USER_MAX) {
			reply(s, "501 5.5.2 Malformed user name");
			cmd_auth_end(s);
			return;
		}
		memcpy(d->user, msg, len);
		d->user[len] = '\0';
		d->step = AUTH_STEP_PASS;
		/* draft-murchison-sasl-login: "Password:" */
		reply(s, "334 UGFzc3dvcmQ6");
		if (s->state != SESSION_AUTH)
			session_enter(s, SESSION_AUTH);
		return;
	case AUTH_STEP_PASS:
		if (len == 0 || memchr(msg, '\0', len)) {
			reply(s, "501 5.5.2 Malformed password");
			cmd_auth_end(s);
			return;
		}
		{
			char user_copy[AUTH_USER_MAX + 1];

			snprintf(user_copy, sizeof user_copy, "%s", d->user);
			cmd_auth_verify(s, user_copy, msg);
		}
		return;
	case AUTH_STEP_WAIT:
		break;
	}
}

/* Decode a base64 response and act on it; wipes the decoded bytes. */
static void cmd_auth_b64(struct session *s, const char *b64, size_t len)
{
	static char msg[SASL_DECODED_MAX + 1]; /* event loop thread only */
	size_t n = 0;

	if (sasl_b64_decode(b64, len, msg, sizeof msg, &n) != SC_OK) {
		/* RFC 4954 4: a response that cannot be decoded */
		reply(s, "501 5.5.2 Cannot decode response");
		cmd_auth_log(s, "", 501, "5.5.2");
		cmd_auth_end(s);
		session_count_error(s);
		return;
	}
	cmd_auth_response(s, msg, n);
	explicit_bzero(msg, n);
}

void cmd_auth(struct session *s, struct request *rq)
{
	const struct runtime *rt = s->rt;
	const char *arg = rq->arg, *resp;
	size_t mlen, rlen;
	enum auth_mech mech;
	char ip[64];

	if (!rt->auth) {
		reply(s, "502 5.5.1 AUTH not available");
		return;
	}
	if (!s->tls_active) {
		/* RFC 4954 6: offered only inside TLS, so passwords never travel in clear */
		reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		return;
	}
	if (s->auth_user[0]) {
		/* RFC 4954 4: no AUTH after a successful one */
		reply(s, "503 5.5.1 Already authenticated");
		return;
	}
	/* the argument is a view into the line, not NUL-terminated */
	for (mlen = 0; mlen < rq->arglen && arg[mlen] != ' '; mlen++)
		;
	if (mlen == 5 && !strncasecmp(arg, "PLAIN", 5)) {
		mech = AUTH_PLAIN;
	} else if (mlen == 5 && !strncasecmp(arg, "LOGIN", 5)) {
		mech = AUTH_LOGIN;
	} else {
		reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	authlimit_peer_ip(s->peer, ip, sizeof ip);
	if (authlimit_blocked(AUTHLIMIT_IP, ip, (unsigned)rt->auth_max_failures, time(NULL))) {
		reply(s, "454 4.7.0 Too many authentication failures");
		return;
	}
	resp = arg + mlen;
	rlen = rq->arglen - mlen;
	while (rlen > 0 && *resp == ' ') {
		resp++;
		rlen--;
	}
	if (rlen && memchr(resp, ' ', rlen)) {
		reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	s->auth = calloc(1, sizeof *s->auth);
	if (!s->auth) {
		reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	s->auth->mech = mech;
	s->auth->step = mech == AUTH_PLAIN ? AUTH_STEP_PLAIN : AUTH_STEP_USER;
	if (rlen) {
		/* RFC 4954 4: the initial response saves a round trip */
		cmd_auth_b64(s, resp, rlen);
		return;
	}
	/* PLAIN: an empty challenge; LOGIN: "Username:" */
	reply(s, mech == AUTH_PLAIN ? "334 " : "334 VXNlcm5hbWU6");
	session_enter(s, SESSION_AUTH);
}

void cmd_auth_line(struct session *s, const char *line, size_t len)
{
	if (!s->auth) {
		session_enter(s, SESSION_READY);
		return;
	}
	if (len == 1 && line[0] == '*') {
		/* RFC 4954 4: the client cancels the exchange */
		reply(s, "501 5.7.0 Authentication cancelled");
		cmd_auth_log(s, s->auth->user, 501, "5.7.0");
		cmd_auth_end(s);
		return;
	}
	cmd_auth_b64(s, line, len);
}

void cmd_auth_line_too_long(struct session *s)
{
	/* RFC 4954 6 */
	reply(s, "500 5.5.6 Authentication Exchange line is too long");
	cmd_auth_log(s, s->auth ? s->auth->user : "", 500, "5.5.6");
	cmd_auth_end(s);
	session_count_error(s);
}

void cmd_auth_free(struct session *s)
{
	struct auth_dialog *d = s->auth;

	if (!d)
		return;
	if (d->job) {
		/* worker.h: done will find no session and free the job */
		d->job->session = NULL;
		d->job = NULL;
	}
	cmd_auth_end(s);
}
