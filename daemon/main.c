/*
 * main.c - smtpcertd: arguments, start-up checks, signals and the event loop.
 *
 *   smtpcertd -c FILE [-f] [-d] [-n]
 *   smtpcertd --check-seccomp
 *
 * Start-up order: load the whole runtime (config, TLS, CRLs, repositories) so
 * that every error reaches the terminal; bind the listeners (root may be needed);
 * daemonize (the runtime is loaded again in the child: LMDB environments must not
 * cross a fork); as root with `user`: fork the writer (writer.h) and load the
 * runtime once more without write access; with `workers` > 1 the process
 * becomes the master and forks the serving processes (prefork.h), each of
 * which goes on from here; drop privileges; install the system call filter
 * (seccomp_filter.h); run the loop. Signals are libevent events, so
 * their handlers run on the loop like everything else.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <event2/event.h>
#include <smtpcert/smtpcert.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "prefork.h"
#include "privhelper.h"
#include "process.h"
#include "repo_index.h"
#include "runtime.h"
#include "seccomp_filter.h"
#include "shared.h"
#include "worker.h"
#include "writer.h"

/* bound on how long a graceful stop may take before connections are cut */
#define MAIN_DRAIN_SECONDS 5

static struct event_base *main_base;
static struct worker *main_worker;
static struct worker *index_worker; /* one thread for index builds, or NULL */
static const char *main_config;
static struct event *main_drain_ev;
static int main_stopping;
static char main_listen[1024]; /* what the listeners were bound from */

static void main_usage(FILE *f)
{
	fprintf(f,
		"usage: smtpcertd -c FILE [-f] [-d] [-n]\n"
		"  -c FILE  configuration file (smtpcertd.conf(5))\n"
		"  -f       stay in the foreground, log to stderr\n"
		"  -d       debug logging to stderr (implies -f)\n"
		"  -n       check the configuration (and the files it names) and exit\n"
		"  --check-seccomp  install the system call filter and show that it refuses execve\n"
		"  -V       print the version\n"
		"  -h       this help\n"
		"signals: SIGHUP reloads config, TLS files, CRLs and repositories;\n"
		"         SIGTERM/SIGINT stop gracefully.\n"
		"example: smtpcertd -c /etc/smtpcert/smtpcertd.conf -f\n");
}

/* A reload in flight (SIGHUP): loading parses every CRL and opens new stores,
 * 240-470 ms for a 100,000-entry CRL (docs/performance.md), so it runs on a
 * worker thread while the loop serves with the running configuration, and the
 * new runtime is swapped in on the loop. One at a time: a SIGHUP during a
 * reload starts another one after it, so the last signal's files are read. */
struct main_reload_job {
	struct runtime *old, *rt;
	sc_status rc;
	struct timespec t0;
	char err[1024];
};

static struct main_reload_job *main_reloading;
static int main_reload_again;

static void main_reload_start(void);

static void main_reload_work(void *arg)
{
	struct main_reload_job *j = arg;

	j->rc = runtime_load(main_config, j->old, &j->rt, j->err, sizeof j->err);
}

static void main_reload_done(void *arg)
{
	struct main_reload_job *j = arg;
	struct runtime *rt = j->rt;
	char listen[sizeof main_listen];
	struct timespec t1;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (long)(t1.tv_sec - j->t0.tv_sec) * 1000L + (t1.tv_nsec - j->t0.tv_nsec) / 1000000L;
	main_reloading = NULL;
	if (j->rc != SC_OK)
		log_msg(LOG_ERR, "reload failed, keeping the running configuration: %s", j->err);
	else if (main_stopping)
		runtime_unref(rt); /* stopping: the drain goes on with what it has */
	else {
		runtime_listen_text(rt, listen, sizeof listen);
		if (strcmp(listen, main_listen) != 0)
			log_msg(LOG_WARNING, "reload: `listen` changed to %s; still listening on %s "
				"until a restart", listen, main_listen);
		log_msg(LOG_INFO, "reloaded %s (generation %u): %zu repositories, %s, %zu CRLs, "
			"loaded in %ld ms", main_config, rt->generation, rt->nrepos,
			rt->tls ? "STARTTLS on" : "STARTTLS off", sc_crlset_crl_count(rt->crls), ms);
		runtime_set_current(rt);
	}
	runtime_unref(j->old);
	free(j);
	if (main_reload_again && !main_stopping) {
		main_reload_again = 0;
		main_reload_start();
	}
}

static void main_reload_start(void)
{
	struct main_reload_job *j;

	if (main_reloading) {
		log_msg(LOG_INFO, "SIGHUP: a reload is running; reloading again after it");
		main_reload_again = 1;
		return;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		log_msg(LOG_ERR, "reload failed, keeping the running configuration: out of memory");
		return;
	}
	j->old = runtime_current();
	runtime_ref(j->old);
	clock_gettime(CLOCK_MONOTONIC, &j->t0);
	main_reloading = j;
	if (worker_submit(main_worker, main_reload_work, main_reload_done, j) != SC_OK) {
		/* the pool's queue is full: load here rather than not at all */
		log_msg(LOG_WARNING, "SIGHUP: worker queue full, reloading on the event loop");
		main_reload_work(j);
		main_reload_done(j);
	}
}

static void main_all_gone(void)
{
	log_msg(LOG_INFO, "all connections closed, exiting");
	event_base_loopexit(main_base, NULL);
}

static void main_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_msg(LOG_WARNING, "stop: %zu connections still open after %d s, closing them",
		conn_count(), MAIN_DRAIN_SECONDS);
	conn_close_all();
	event_base_loopexit(main_base, NULL);
}

static void main_stop(int sig)
{
	struct timeval tv = { MAIN_DRAIN_SECONDS, 0 };

	if (main_stopping)
		return;
	main_stopping = 1;
	log_msg(LOG_INFO, "%s: stopping, %zu connections open", sig == SIGINT ? "SIGINT" : "SIGTERM",
		conn_count());
	listener_close_all();
	main_drain_ev = evtimer_new(main_base, main_drain_timeout, NULL);
	if (main_drain_ev)
		evtimer_add(main_drain_ev, &tv);
	conn_shutdown_all(main_all_gone);
}

static void main_signal(evutil_socket_t sig, short what, void *arg)
{
	if (sig == SIGCHLD)
		writer_reap(); /* the writer ended (a no-op in a serving process of
				* prefork.c: the writer is the master's child) */
	else if (sig == SIGHUP && !main_stopping)
		main_reload_start();
	else
		main_stop((int)sig);
}

static void main_startup_line(const struct runtime *rt)
{
	char listen[512] = "", repos[1024] = "";
	const char *const *domains, *const *gateways;
	size_t nd = sc_config_list(rt->cfg, "domains", &domains);
	size_t ng = sc_config_list(rt->cfg, "gateway_domains", &gateways);
	size_t o = 0;
	const char *name;

	for (size_t i = 0; (name = listener_name(i)) != NULL && o < sizeof listen; i++)
		o += (size_t)snprintf(listen + o, sizeof listen - o, "%s%s", i ? "," : "", name);
	o = 0;
	for (size_t i = 0; i < rt->nrepos && o < sizeof repos; i++)
		o += (size_t)snprintf(repos + o, sizeof repos - o, "%s%s", i ? "," : "",
				      sc_repo_name(rt->repos[i]->repo));
	log_msg(LOG_INFO,
		"smtpcertd %s (libsmtpcert %s) starting: hostname=%s listen=%s repository=%s "
		"domains=%zu gateway_domains=%zu starttls=%s crls=%zu submissions=%s",
		SMTPCERT_VERSION_STRING, smtpcert_version(), rt->hostname, listen,
		repos[0] ? repos : "(none)", nd, ng, rt->tls ? "on" : "off",
		sc_crlset_crl_count(rt->crls),
		rt->submissions == RUNTIME_SUBMIT_OFF ? "off" :
		rt->submissions == RUNTIME_SUBMIT_AUTO ? "auto" : "review");
}

static int main_fail(const char *what, const char *msg)
{
	log_msg(LOG_ERR, "%s%s%s", what, *msg ? ": " : "", msg);
	return 1;
}

/* The system call filter (seccomp_filter.h): the last step before serving, after
 * the privilege drop, the worker threads and the children exist. */
static int main_sandbox(const struct runtime *rt)
{
	char err[256];
	sc_status rc;

	if (!sc_config_bool(rt->cfg, "seccomp")) {
		log_msg(LOG_INFO, "seccomp = no: running without a system call filter");
		return 0;
	}
	rc = seccomp_filter_apply(err, sizeof err);
	if (rc == SC_ERR_UNSUPPORTED) {
		log_msg(LOG_WARNING, "%s; running without a system call filter", err);
		return 0;
	}
	if (rc != SC_OK)
		return main_fail("cannot install the system call filter", err);
	log_msg(LOG_INFO, "seccomp: system call filter installed: execve, ptrace, mount, "
		"modules, bpf, namespaces and identity changes are refused (EPERM)");
	return 0;
}

/* As root with `user`: start the writer, then load the runtime again so that
 * this process holds no queue and no writable store (runtime_set_writer()).
 * The writer is forked while no repository is open here (LMDB environments
 * must not cross a fork). @return the new runtime, or NULL after logging. */
static struct runtime *main_privsep(struct runtime *rt)
{
	const char *u = sc_config_str(rt->cfg, "user");
	char err[1024], user[256];

	if (geteuid() != 0 || !u || !*u)
		return rt;
	snprintf(user, sizeof user, "%s", u); /* the config goes with the runtime */
	runtime_unref(rt);
	rt = NULL;
	if (writer_start(main_config, user, 1, err, sizeof err) != SC_OK) {
		main_fail("cannot start the writer process", err);
		return NULL;
	}
	runtime_set_writer(1);
	if (runtime_load(main_config, NULL, &rt, err, sizeof err) != SC_OK) {
		main_fail("start-up", err);
		return NULL;
	}
	return rt;
}

/* `workers` > 1 (prefork.h): drop the runtime (no LMDB environment may cross a
 * fork), map the shared tables, start the writer with one channel per serving
 * process, then fork them. @return in a serving process its runtime; NULL in
 * the master once it is done (*@p status its exit status) or after a failure. */
static struct runtime *main_prefork(struct runtime *rt, unsigned workers, int *status)
{
	const char *u = sc_config_str(rt->cfg, "user");
	int privsep = geteuid() == 0 && u && *u;
	char err[1024], user[256];
	unsigned index = 0;

	snprintf(user, sizeof user, "%s", u ? u : ""); /* the config goes with the runtime */
	runtime_unref(rt);
	*status = 1;
	if (shared_init(workers) != SC_OK) {
		main_fail("workers: cannot map the state the processes share", strerror(errno));
		return NULL;
	}
	if (privsep) {
		if (writer_start(main_config, user, workers, err, sizeof err) != SC_OK) {
			main_fail("cannot start the writer process", err);
			return NULL;
		}
		runtime_set_writer(1);
	}
	*status = prefork_run(workers, &index);
	if (*status >= 0)
		return NULL;
	shared_set_index(index);
	if (privsep)
		writer_use_channel(index);
	/* ps and /proc tell the master and the serving processes apart */
	(void)prctl(PR_SET_NAME, "smtpcertd-serve");
	*status = 1;
	rt = NULL;
	if (runtime_load(main_config, NULL, &rt, err, sizeof err) != SC_OK) {
		main_fail("start-up", err);
		return NULL;
	}
	return rt;
}

static int main_run(long nofile)
{
	struct event *sigs[4];
	const int signos[4] = { SIGHUP, SIGTERM, SIGINT, SIGCHLD };
	const char *user;
	char err[1024] = "";
	int dropped = 0;
	sc_status rc;

	user = sc_config_str(runtime_current()->cfg, "user");
	if (geteuid() == 0 && user && *user) {
		/* SIGHUP must still read root-only files (the TLS key) after the drop */
		if (privhelper_start(main_config) != SC_OK)
			return main_fail("cannot start the reload helper", ""); /* it said why */
		runtime_set_file_hook(privhelper_path);
	}
	rc = process_drop_privileges(user, &dropped, err, sizeof err);
	if (rc != SC_OK)
		return main_fail("cannot drop privileges", err);
	if (dropped)
		log_msg(LOG_INFO, "running as user %s", user);
	else if (err[0])
		log_msg(LOG_WARNING, "%s", err);
	else if (user && *user)
		log_msg(LOG_INFO, "not started as root: `user = %s` ignored", user);

	main_base = event_base_new();
	if (!main_base)
		return main_fail("cannot create the event loop", "");
	if (log_attach(main_base) != 0)
		log_msg(LOG_WARNING, "log lines are not batched: out of memory");
	if (conn_module_init(main_base) != SC_OK || listener_start(main_base) != SC_OK)
		return main_fail("cannot start", "out of memory");
	/* blocking work (AUTH verification, durable queue writes) runs here */
	/* remote lookups take all but one thread (cert_job.c): a pgsql: or
	 * ldap:// site raises worker_threads for more lookups in flight */
	if (worker_create(main_base, (unsigned)sc_config_int(runtime_current()->cfg,
							     "worker_threads"),
			  &main_worker) != SC_OK)
		return main_fail("cannot start the worker threads", strerror(errno));
	worker_set_default(main_worker);
	/* index builds (repo_index.h) get a thread of their own: one takes
	 * seconds with a large store, and AUTH and CERC must not wait behind it */
	if (runtime_current()->repository_index &&
	    worker_create(main_base, 1, &index_worker) != SC_OK)
		return main_fail("cannot start the index thread", strerror(errno));
	/* postmaster notices left undelivered (a crash, a full disk) go out now
	 * and are retried periodically (notify.h) */
	if (notify_start(main_base) != SC_OK)
		return main_fail("cannot start the notice retry timer", "out of memory");
	for (int i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(main_base, signos[i], main_signal, NULL);
		if (!sigs[i] || event_add(sigs[i], NULL) != 0)
			return main_fail("cannot register signal handlers", "");
	}
	{
		/* a serving process of prefork.c starts with them blocked: what
		 * arrived meanwhile is handled by the loop from now on */
		sigset_t set;

		sigemptyset(&set);
		for (int i = 0; i < 4; i++)
			sigaddset(&set, signos[i]);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
	}
	if (main_sandbox(runtime_current()) != 0)
		return 1;
	/* lookup indexes of the local stores, built on their thread (repo_index.h) */
	if (index_worker && repo_index_start(main_base, index_worker) != SC_OK)
		return main_fail("cannot start the index timer", "out of memory");
	main_startup_line(runtime_current());
	log_msg(LOG_INFO, "file descriptor limit %ld, max_connections %ld%s", nofile,
		runtime_current()->max_connections,
		nofile > 0 && nofile < runtime_current()->max_connections + 32 ?
			" (warning: limit below max_connections)" : "");
	event_base_dispatch(main_base);

	conn_module_fini();
	notify_stop();
	repo_index_stop();
	worker_destroy(index_worker);
	worker_destroy(main_worker);
	listener_close_all();
	for (int i = 0; i < 4; i++)
		event_free(sigs[i]);
	if (main_drain_ev)
		event_free(main_drain_ev);
	log_detach();
	event_base_free(main_base);
	runtime_set_current(NULL);
	log_msg(LOG_INFO, "stopped");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "check-seccomp", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int foreground = 0, debug = 0, check = 0, opt;
	const char *conf = NULL;
	char path[PATH_MAX], err[1024];
	struct runtime *rt = NULL;
	const char *const *listen;
	size_t nlisten;
	unsigned workers;
	long nofile;
	sc_status rc;

	while ((opt = getopt_long(argc, argv, "c:fdnhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf = optarg; break;
		case 'f': foreground = 1; break;
		case 'd': debug = foreground = 1; break;
		case 'n': check = 1; break;
		case 'h': main_usage(stdout); return 0;
		case 'V': printf("smtpcertd %s\n", SMTPCERT_VERSION_STRING); return 0;
		case 'S': return seccomp_filter_check();
		default: main_usage(stderr); return 2;
		}
	}
	if (!conf || optind != argc) {
		main_usage(stderr);
		return 2;
	}
	/* the daemon chdirs to /: SIGHUP must find the file again */
	if (!realpath(conf, path)) {
		fprintf(stderr, "smtpcertd: %s: cannot open: %m\n", conf);
		return 1;
	}
	main_config = path;
	log_init(LOG_SINK_STDERR, debug);
	signal(SIGPIPE, SIG_IGN);
	runtime_set_check(check); /* a check writes nothing */

	rc = runtime_load(main_config, NULL, &rt, err, sizeof err);
	if (rc != SC_OK) {
		fprintf(stderr, "smtpcertd: %s\n", err);
		return 1;
	}
	if (check) {
		printf("smtpcertd: %s: configuration OK\n", main_config);
		runtime_unref(rt);
		return 0;
	}
	nofile = process_raise_nofile();
	runtime_listen_text(rt, main_listen, sizeof main_listen);
	nlisten = sc_config_list(rt->cfg, "listen", &listen);
	rc = listener_bind_all(listen, nlisten, err, sizeof err);
	if (rc != SC_OK) {
		fprintf(stderr, "smtpcertd: %s: %s\n", main_config, err);
		runtime_unref(rt);
		return 1;
	}
	if (!foreground) {
		runtime_unref(rt);
		rt = NULL;
		if (process_daemonize() != SC_OK) {
			fprintf(stderr, "smtpcertd: cannot daemonize: %m\n");
			return 1;
		}
		log_init(LOG_SINK_SYSLOG, 0);
		rc = runtime_load(main_config, NULL, &rt, err, sizeof err);
		if (rc != SC_OK)
			return main_fail("start-up", err);
	}
	workers = (unsigned)sc_config_int(rt->cfg, "workers");
	if (workers > 1) {
		int status;

		rt = main_prefork(rt, workers, &status);
		if (!rt)
			return status;
	} else {
		rt = main_privsep(rt);
		if (!rt)
			return 1;
	}
	runtime_set_current(rt);
	return main_run(nofile);
}
