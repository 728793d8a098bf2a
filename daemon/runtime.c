/*
 * runtime.c - loading, sharing and swapping the daemon's configuration bundle
 * (see runtime.h). Owns the current runtime pointer. Runs in the daemon process,
 * on the event loop thread, except runtime_load() for a reload, which runs on a
 * worker thread (main.c) so that a big CRL or a slow directory does not stop
 * the loop: it only reads the old runtime it was lent and takes references on
 * its stores, which is why a store's count is atomic (runtimes are released on
 * the loop meanwhile).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rcpt_local.h"
#include "runtime.h"

static struct runtime *current;
static unsigned generation;
static runtime_file_hook file_hook;

void runtime_set_file_hook(runtime_file_hook hook)
{
	file_hook = hook;
}

/* privilege separation (writer.h): the writer process owns the queue and the
 * repository writes, so this process opens neither for writing */
static int writer_owns_writes;
/* smtpcertd -n: check, write nothing (runtime_set_check()) */
static int runtime_checking;

void runtime_set_check(int on)
{
	runtime_checking = on;
}

void runtime_set_writer(int on)
{
	writer_owns_writes = on;
}

/* A readable path for @p path (see runtime_file_hook); *fd to close after use. */
static const char *runtime_file(const char *path, char *buf, size_t size, int *fd)
{
	*fd = -1;
	return file_hook && path ? file_hook(path, buf, size, fd) : path;
}

static void runtime_file_done(int fd)
{
	if (fd >= 0)
		close(fd);
}

static long runtime_cfg_int(const sc_config *cfg, const char *key, long def)
{
	if (!sc_config_key_known(key))
		return def;
	return (long)sc_config_int(cfg, key);
}

void runtime_repo_ref(struct runtime_repo *rr)
{
	__atomic_add_fetch(&rr->refs, 1, __ATOMIC_ACQ_REL);
}

void runtime_repo_unref(struct runtime_repo *rr)
{
	if (!rr || __atomic_sub_fetch(&rr->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	sc_repo_close(rr->repo);
	free(rr);
}

void runtime_ref(struct runtime *rt)
{
	rt->refs++;
}

void runtime_unref(struct runtime *rt)
{
	if (!rt || --rt->refs > 0)
		return;
	for (size_t i = 0; i < rt->nrepos; i++)
		runtime_repo_unref(rt->repos[i]);
	if (rt->auth)
		sc_auth_close(rt->auth);
	if (rt->queue)
		sc_queue_close(rt->queue);
	if (rt->crls)
		sc_crlset_free(rt->crls);
	if (rt->tls)
		sc_tls_ctx_unref(rt->tls);
	rcpt_local_free(rt->local_rcpts);
	if (rt->cfg)
		sc_config_free(rt->cfg);
	free(rt);
}

struct runtime *runtime_current(void)
{
	return current;
}

void runtime_set_current(struct runtime *rt)
{
	struct runtime *old = current;

	current = rt;
	if (old)
		runtime_unref(old);
}

static sc_status runtime_load_tls(struct runtime *rt, char *err, size_t errlen)
{
	const char *cert = sc_config_str(rt->cfg, "tls_cert_file");
	const char *key = sc_config_str(rt->cfg, "tls_key_file");
	char cbuf[64], kbuf[64];
	int cfd, kfd;
	sc_status rc;

	if (!cert && !key)
		return SC_OK;
	if (!cert || !key) {
		snprintf(err, errlen, "%s: tls_cert_file and tls_key_file must be set together",
			 sc_config_source(rt->cfg));
		return SC_ERR_CONFIG;
	}
	rc = sc_tls_server_ctx_new(runtime_file(cert, cbuf, sizeof cbuf, &cfd),
				   runtime_file(key, kbuf, sizeof kbuf, &kfd), &rt->tls, err, errlen);
	if (rc != SC_OK) {
		char why[512];

		/* "FILE:LINE: key: ..." like every other config error; the library's
		 * message may name /proc/self/fd/N, so also say which files were meant */
		snprintf(why, sizeof why, "%s", err);
		if (cfd >= 0 || kfd >= 0)
			sc_config_errorf(rt->cfg, "tls_key_file", err, errlen,
					 "tls_cert_file %s, tls_key_file %s: %s", cert, key, why);
		else
			sc_config_errorf(rt->cfg, strstr(why, cert) ? "tls_cert_file" : "tls_key_file",
					 err, errlen, "%s", why);
	}
	runtime_file_done(cfd);
	runtime_file_done(kfd);
	return rc;
}

static sc_status runtime_load_crls(struct runtime *rt, char *err, size_t errlen)
{
	const char *const *files;
	size_t n = sc_config_list(rt->cfg, "crl_file", &files);

	SC_TRY(sc_crlset_new(&rt->crls));
	for (size_t i = 0; i < n; i++) {
		char buf[64];
		int fd;
		sc_status rc = sc_crlset_add_file(rt->crls, runtime_file(files[i], buf, sizeof buf, &fd),
						  err, errlen);

		runtime_file_done(fd);
		if (rc != SC_OK) {
			char why[512];

			snprintf(why, sizeof why, "%s", err);
			sc_config_errorf(rt->cfg, "crl_file", err, errlen, "%s", why);
			return rc;
		}
	}
	return SC_OK;
}

/* Reuse the store @p old has open under the same spec, if any. Also when its
 * access mode differs from what this load wants: LMDB forbids a second handle
 * on one environment in a process, so a reload that turns `submissions = auto`
 * on keeps a read-only first store (auto acceptance then leaves submissions
 * pending and says so; a restart opens it read-write). */
static struct runtime_repo *runtime_find_repo(const struct runtime *old, const char *spec)
{
	if (!old)
		return NULL;
	for (size_t i = 0; i < old->nrepos; i++)
		if (strcmp(sc_repo_spec(old->repos[i]->repo), spec) == 0)
			return old->repos[i];
	return NULL;
}

/* What a store reports without failing the lookup (an LDAP bind refused, a
 * file in a dir: store that does not parse): worker threads call it too, and
 * log_msg is thread-safe. */
static void runtime_repo_warn(void *arg, const char *msg)
{
	log_msg(LOG_WARNING, "repository %s: %s", sc_repo_name(arg), msg);
}

static sc_status runtime_load_repos(struct runtime *rt, const struct runtime *old, char *err,
				    size_t errlen)
{
	const char *const *specs;
	size_t n = sc_config_list(rt->cfg, "repository", &specs);
	/* ldap:// stores (lib/repo_ldap.c); the other backends ignore these */
	const struct sc_repo_ldap_opts ldap = {
		.bind_dn = sc_config_str(rt->cfg, "ldap_bind_dn"),
		.bind_password_file = sc_config_str(rt->cfg, "ldap_bind_password_file"),
		.starttls = sc_config_bool(rt->cfg, "ldap_starttls"),
		.ca_file = sc_config_str(rt->cfg, "ldap_ca_file"),
		.timeout = (int)runtime_cfg_int(rt->cfg, "ldap_timeout", 10),
		.cache_ttl = (unsigned)runtime_cfg_int(rt->cfg, "ldap_cache_ttl", 60),
	};

	if (n > RUNTIME_REPOS_MAX) {
		snprintf(err, errlen, "%s: repository: at most %d stores", sc_config_source(rt->cfg),
			 RUNTIME_REPOS_MAX);
		return SC_ERR_CONFIG;
	}
	for (size_t i = 0; i < n; i++) {
		struct runtime_repo *rr = runtime_find_repo(old, specs[i]);
		char why[512] = "";
		sc_status rc;

		if (rr) {
			runtime_repo_ref(rr);
			rt->repos[rt->nrepos++] = rr;
			continue;
		}
		if (runtime_checking && strncmp(specs[i], "pgsql:", 6) == 0) {
			/* opening would connect, and create or migrate the schema */
			char name[256];

			sc_repo_spec_redact(specs[i], name, sizeof name);
			log_msg(LOG_NOTICE, "check: repository %s: database not contacted by -n", name);
			continue;
		}
		rr = calloc(1, sizeof *rr);
		if (!rr)
			return SC_ERR_NOMEM;
		/* submissions = auto stores accepted certificates into the first
		 * store from the event loop thread (cmd_cerc.c); everything else
		 * is read-only */
		rr->writable = i == 0 && rt->submissions == RUNTIME_SUBMIT_AUTO &&
			       !writer_owns_writes;
		/* a missing local store is created empty (docs/design.md); not
		 * by a check, which only says so */
		rc = sc_repo_open_ex(specs[i], runtime_checking ? SC_REPO_RDONLY | SC_REPO_CHECK :
				     (rr->writable ? 0 : SC_REPO_RDONLY) | SC_REPO_CREATE,
				     &ldap, &rr->repo, why, sizeof why);
		if (rc == SC_ERR_NOT_FOUND && runtime_checking) {
			free(rr);
			log_msg(LOG_NOTICE, "check: %s; smtpcertd creates it empty at start", why);
			continue;
		}
		if (rc != SC_OK) {
			free(rr);
			if (!why[0]) {
				char name[256];

				sc_repo_spec_redact(specs[i], name, sizeof name);
				snprintf(why, sizeof why, "%s: %s", name, sc_strerror(rc));
			}
			sc_config_errorf(rt->cfg, "repository", err, errlen, "%s", why);
			return rc;
		}
		rr->refs = 1;
		sc_repo_set_warn(rr->repo, runtime_repo_warn, rr->repo);
		rt->repos[rt->nrepos++] = rr;
	}
	return SC_OK;
}

static sc_status runtime_load_scalars(struct runtime *rt, char *err, size_t errlen)
{
	const char *sub = sc_config_str(rt->cfg, "submissions");

	rt->hostname = sc_config_str(rt->cfg, "hostname");
	if (!rt->hostname || !*rt->hostname) {
		if (gethostname(rt->hostname_buf, sizeof rt->hostname_buf - 1) != 0)
			snprintf(rt->hostname_buf, sizeof rt->hostname_buf, "localhost");
		rt->hostname = rt->hostname_buf;
	}
	rt->cert_url = sc_config_key_known("cert_url") ? sc_config_str(rt->cfg, "cert_url") : NULL;
	if (rt->cert_url && !*rt->cert_url)
		rt->cert_url = NULL;
	rt->idle_timeout = runtime_cfg_int(rt->cfg, "idle_timeout", RUNTIME_IDLE_TIMEOUT_DEFAULT);
	rt->max_errors = runtime_cfg_int(rt->cfg, "max_errors", RUNTIME_MAX_ERRORS_DEFAULT);
	rt->max_connections =
		runtime_cfg_int(rt->cfg, "max_connections", RUNTIME_MAX_CONNECTIONS_DEFAULT);
	rt->size_limit = runtime_cfg_int(rt->cfg, "max_message_size", RUNTIME_SIZE_DEFAULT);
	/* abuse resistance (docs/design.md); the key table gives the defaults */
	rt->max_conns_per_ip = runtime_cfg_int(rt->cfg, "max_connections_per_ip", 50);
	rt->max_conn_rate = runtime_cfg_int(rt->cfg, "max_connection_rate", 600);
	rt->command_timeout = runtime_cfg_int(rt->cfg, "command_timeout", 300);
	rt->session_timeout = runtime_cfg_int(rt->cfg, "session_timeout", 1800);
	rt->harvest_threshold = runtime_cfg_int(rt->cfg, "harvest_threshold", 5);
	rt->harvest_limit = runtime_cfg_int(rt->cfg, "harvest_limit", 30);
	rt->harvest_ip_limit = runtime_cfg_int(rt->cfg, "harvest_ip_limit", 1000);
	rt->repository_index = !sc_config_key_known("repository_index") ||
			       sc_config_bool(rt->cfg, "repository_index");
	rt->repository_index_copy = runtime_cfg_int(rt->cfg, "repository_index_copy", 2048);
	rt->repository_index_huge = sc_config_key_known("repository_index_huge_pages") &&
				    sc_config_bool(rt->cfg, "repository_index_huge_pages");
	rt->limits_exempt_loopback = !sc_config_key_known("limits_exempt_loopback") ||
				     sc_config_bool(rt->cfg, "limits_exempt_loopback");
	if (rt->idle_timeout <= 0 || rt->max_errors <= 0 || rt->max_connections <= 0 ||
	    rt->size_limit < 0) {
		snprintf(err, errlen, "%s: idle_timeout, max_errors and max_connections must be positive",
			 sc_config_source(rt->cfg));
		return SC_ERR_CONFIG;
	}
	if (!sub || strcmp(sub, "off") == 0)
		rt->submissions = RUNTIME_SUBMIT_OFF;
	else if (strcmp(sub, "review") == 0)
		rt->submissions = RUNTIME_SUBMIT_REVIEW;
	else if (strcmp(sub, "auto") == 0)
		rt->submissions = RUNTIME_SUBMIT_AUTO;
	else {
		snprintf(err, errlen, "%s: submissions: must be off, review or auto",
			 sc_config_source(rt->cfg));
		return SC_ERR_CONFIG;
	}
	return SC_OK;
}

/* Mail reception: the `delivery` kind and its backend, limits, proxy settings.
 * The value's syntax was checked by the config parser (check_delivery()). */
static sc_status runtime_load_delivery(struct runtime *rt, char *err, size_t errlen)
{
	const char *d = sc_config_str(rt->cfg, "delivery");
	const char *pp = sc_config_str(rt->cfg, "proxy_protocol");
	const char *hp, *colon;
	size_t hl;

	rt->max_recipients = runtime_cfg_int(rt->cfg, "max_recipients", 100);
	rt->delivery_timeout = runtime_cfg_int(rt->cfg, "delivery_timeout", 60);
	rt->proxy_timeout = runtime_cfg_int(rt->cfg, "proxy_timeout", 60);
	rt->encrypt_at_rest = sc_config_bool(rt->cfg, "encrypt_at_rest") ? 1 : 0;
	rt->proxy_protocol = !pp || !strcmp(pp, "xclient") ? RUNTIME_PROXY_XCLIENT :
			     !strcmp(pp, "v2") ? RUNTIME_PROXY_V2 : RUNTIME_PROXY_NONE;
	rt->delivery_spec = d && *d ? d : NULL;
	if (!rt->delivery_spec) {
		rt->delivery = RUNTIME_DELIVERY_NONE;
		return SC_OK;
	}
	if (!strncmp(d, "maildir:", 8)) {
		rt->delivery = RUNTIME_DELIVERY_MAILDIR;
		return SC_OK;
	}
	rt->delivery = d[0] == 'l' ? RUNTIME_DELIVERY_LMTP : RUNTIME_DELIVERY_PROXY;
	/* HOST:PORT, HOST possibly [IPv6] */
	hp = strchr(d, ':') + 1;
	colon = strrchr(hp, ':');
	if (!colon || colon == hp || !colon[1] || strlen(colon + 1) >= sizeof rt->backend_port) {
		sc_config_errorf(rt->cfg, "delivery", err, errlen, "%s: expected HOST:PORT", d);
		return SC_ERR_CONFIG;
	}
	hl = (size_t)(colon - hp);
	if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {
		hp++;
		hl -= 2;
	}
	if (hl >= sizeof rt->backend_host) {
		sc_config_errorf(rt->cfg, "delivery", err, errlen, "%s: host name too long", d);
		return SC_ERR_CONFIG;
	}
	memcpy(rt->backend_host, hp, hl);
	rt->backend_host[hl] = '\0';
	snprintf(rt->backend_port, sizeof rt->backend_port, "%s", colon + 1);
	return SC_OK;
}

/* Mail reception (cmd_mail.c): the `recipients` file and the users of a
 * passwd: auth file, as one set of local recipients (rcpt_local.h). Only when
 * mail is received here: in proxy mode the backend decides. */
static sc_status runtime_load_rcpts(struct runtime *rt, char *err, size_t errlen)
{
	const char *rcpts = sc_config_str(rt->cfg, "recipients");
	const char *auth = sc_config_str(rt->cfg, "auth");
	const char *passwd = auth && !strncmp(auth, "passwd:", 7) ? auth + 7 : NULL;
	char buf[64], why[600] = "";
	int fd;
	sc_status rc;

	if (rt->delivery != RUNTIME_DELIVERY_MAILDIR && rt->delivery != RUNTIME_DELIVERY_LMTP)
		return SC_OK;
	if (rcpts && !*rcpts)
		rcpts = NULL;
	/* the passwd: file is read directly, as the auth source reads it */
	rc = rcpt_local_load(rt->cfg, rcpts ? runtime_file(rcpts, buf, sizeof buf, &fd) : NULL,
			     rcpts, passwd, passwd, &rt->local_rcpts, why, sizeof why);
	if (rcpts)
		runtime_file_done(fd);
	if (rc != SC_OK)
		sc_config_errorf(rt->cfg, rcpts && strstr(why, rcpts) == why ? "recipients" : "auth",
				 err, errlen, "%s", why[0] ? why : sc_strerror(rc));
	return rc;
}

/* The queue's own problems (a pgsql: database's error text, an unreadable
 * entry): worker threads call it, log_msg is thread-safe. */
static void runtime_queue_warn(void *arg, const char *msg)
{
	(void)arg;
	log_msg(LOG_WARNING, "submission queue: %s", msg);
}

/* CERC: the review queue, the postmaster address and the upload limit. */
static sc_status runtime_load_submissions(struct runtime *rt, char *err, size_t errlen)
{
	const char *pm = sc_config_str(rt->cfg, "postmaster");
	const char *state_dir = sc_config_str(rt->cfg, "state_dir");
	const char *const *domains;
	const char *why = NULL;
	char buf[300], msg[512] = "";
	sc_status rc;

	rt->submission_max = runtime_cfg_int(rt->cfg, "submission_max_size", 65536);
	/* default: postmaster@ the first domain (INTERFACE.md), else the host */
	if (!pm || !*pm) {
		snprintf(buf, sizeof buf, "postmaster@%s",
			 sc_config_list(rt->cfg, "domains", &domains) ? domains[0] : rt->hostname);
		pm = buf;
	}
	if (sc_addr_parse(pm, strlen(pm), SC_ADDR_UTF8, &rt->postmaster, &why) != SC_OK) {
		sc_config_errorf(rt->cfg, "postmaster", err, errlen, "%s: %s", pm,
				 why ? why : "not an address");
		return SC_ERR_CONFIG;
	}
	if (rt->submissions == RUNTIME_SUBMIT_OFF)
		return SC_OK;
	if (!state_dir || !*state_dir) {
		sc_config_errorf(rt->cfg, "state_dir", err, errlen, "needed when submissions are on");
		return SC_ERR_CONFIG;
	}
	if (writer_owns_writes || runtime_checking)
		return SC_OK; /* rt->queue stays NULL: submissions go to the writer;
			       * a check does not create the queue's directories */
	/* with a pgsql: repository the queue is that database's, shared by every
	 * node (lib/queue_pgsql.c); state_dir still holds the notice spool */
	rc = sc_queue_open_lazy(state_dir, sc_queue_db_spec(rt->cfg), &rt->queue, msg,
				sizeof msg);
	if (rc != SC_OK)
		sc_config_errorf(rt->cfg, sc_queue_db_spec(rt->cfg) ? "repository" : "state_dir",
				 err, errlen, "%s", msg[0] ? msg : sc_strerror(rc));
	if (rc == SC_OK) {
		sc_queue_set_node(rt->queue, rt->hostname); /* names this node in audit rows */
		sc_queue_set_warn(rt->queue, runtime_queue_warn, NULL);
	}
	return rc;
}

/* AUTH: the credential source and the throttling knobs. Opened anew by every
 * load (a passwd: file is read now to report errors; a dovecot: socket is
 * connected per verification). */
static sc_status runtime_load_auth(struct runtime *rt, char *err, size_t errlen)
{
	const char *spec = sc_config_str(rt->cfg, "auth");
	char why[512] = "";
	sc_status rc;

	rt->auth_fail_delay = runtime_cfg_int(rt->cfg, "auth_fail_delay", 2);
	rt->auth_max_failures = runtime_cfg_int(rt->cfg, "auth_max_failures", 10);
	if (!spec || !*spec)
		return SC_OK;
	rc = sc_auth_open(spec, &rt->auth, why, sizeof why);
	if (rc != SC_OK)
		sc_config_errorf(rt->cfg, "auth", err, errlen, "%s",
				 why[0] ? why : sc_strerror(rc));
	return rc;
}

sc_status runtime_load(const char *path, const struct runtime *old, struct runtime **out,
		       char *err, size_t errlen)
{
	struct runtime *rt;
	sc_status rc;

	SC_ENSURE_ARG(path);
	SC_ENSURE_ARG(out);
	rt = calloc(1, sizeof *rt);
	if (!rt)
		return SC_ERR_NOMEM;
	rt->refs = 1;
	err[0] = '\0';
	rc = sc_config_load(path, &rt->cfg, err, errlen);
	if (rc == SC_OK)
		rc = runtime_load_scalars(rt, err, errlen);
	/* read at start: a reload keeps the running value, so that connection
	 * batches (conn_batch.c) and the index thread (main.c) agree */
	if (rc == SC_OK && old)
		rt->repository_index = old->repository_index;
	if (rc == SC_OK)
		rc = runtime_load_tls(rt, err, errlen);
	if (rc == SC_OK)
		rc = runtime_load_crls(rt, err, errlen);
	if (rc == SC_OK)
		rc = runtime_load_repos(rt, old, err, errlen);
	if (rc == SC_OK)
		rc = runtime_load_auth(rt, err, errlen);
	if (rc == SC_OK)
		rc = runtime_load_submissions(rt, err, errlen);
	if (rc == SC_OK)
		rc = runtime_load_delivery(rt, err, errlen);
	if (rc == SC_OK)
		rc = runtime_load_rcpts(rt, err, errlen);
	if (rc != SC_OK) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", path, sc_strerror(rc));
		runtime_unref(rt);
		return rc;
	}
	rt->generation = ++generation;
	*out = rt;
	return SC_OK;
}

void runtime_listen_text(const struct runtime *rt, char *out, size_t size)
{
	const char *const *items;
	size_t n = sc_config_list(rt->cfg, "listen", &items), o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && o < size; i++) {
		int w = snprintf(out + o, size - o, "%s%s", i ? "," : "", items[i]);

		if (w < 0)
			break;
		o += (size_t)w;
	}
}
