/*
 * prefork.c - the master of several serving processes (see prefork.h). Owns the
 * table of serving processes. Master process only: no event loop, no threads;
 * signals are taken synchronously with sigtimedwait().
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "anvil.h"
#include "log.h"
#include "prefork.h"
#include "shared.h"
#include "writer.h"

/* Seconds the serving processes get to drain after SIGTERM (main.c gives its
 * sessions 5) before the master kills what is left. */
#define PREFORK_STOP_SECONDS 15

struct prefork_slot {
	pid_t pid;            /* 0: not running */
	long long started;    /* monotonic milliseconds of the last fork (0: never) */
	int restart;          /* died: to be started again */
	int again;            /* this run is a restart, not the first start */
};

static struct prefork_slot slots[SHARED_WORKERS_MAX];
static unsigned nslots;
static sigset_t prefork_sigs;

static time_t prefork_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static long long prefork_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1; /* never 0 */
}

/* Fork serving process @p i. @return 1 in the child, 0 in the master, -1 when
 * fork failed (logged). */
static int prefork_spawn(unsigned i)
{
	pid_t pid, master = getpid();

	/* at most one start per second per slot: a process that keeps crashing
	 * does not turn the master into a fork loop, and a restarted process's
	 * session ids (start second, slot, serial: conn.c) never repeat its
	 * predecessor's */
	if (slots[i].started) {
		long long wait = slots[i].started + 1000 - prefork_now_ms();

		if (wait > 0) {
			struct timespec ts = { (time_t)(wait / 1000), (long)(wait % 1000) * 1000000L };

			while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
				;
		}
	}
	pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "workers: cannot fork serving process %u: %s", i, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* the master gone, nobody restarts or stops us: stop too (and if it
		 * died before the prctl took effect, at once) */
		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != master)
			_exit(1);
		return 1;
	}
	slots[i].again = slots[i].started != 0;
	slots[i].pid = pid;
	slots[i].started = prefork_now_ms();
	log_msg(LOG_INFO, "workers: serving process %u is pid %ld", i, (long)pid);
	return 0;
}

static void prefork_signal_all(int sig)
{
	for (unsigned i = 0; i < nslots; i++)
		if (slots[i].pid > 0)
			(void)kill(slots[i].pid, sig);
}

static unsigned prefork_running(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nslots; i++)
		n += slots[i].pid > 0;
	return n;
}

/* Reap what ended; mark serving processes to restart. @return 1 when one
 * exited with an error at its first start, so that everything must stop (that
 * start-up failure would only repeat; a restart that fails, say after the
 * configuration was edited, is tried again instead); *@p failed is set for the
 * exit status. */
static int prefork_reap(int stopping, int *failed)
{
	int status, fatal = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		unsigned i;

		if (writer_enabled() && pid == writer_pid()) {
			writer_reaped_status(status);
			continue;
		}
		for (i = 0; i < nslots && slots[i].pid != pid; i++)
			;
		if (i == nslots)
			continue; /* not ours (cannot happen: we fork nothing else) */
		slots[i].pid = 0;
		/* its sessions died with it */
		shared_conns_clear(i);
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			anvil_forget_conns();
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && (stopping || !slots[i].again)) {
			log_msg(LOG_ERR, "workers: serving process %u (pid %ld) exited with status %d%s",
				i, (long)pid, WEXITSTATUS(status), stopping ? "" : "; stopping smtpcertd");
			*failed = 1;
			fatal = 1;
			continue;
		}
		if (stopping) {
			*failed |= !WIFEXITED(status); /* killed while draining: not clean */
			continue;
		}
		if (WIFEXITED(status))
			log_msg(WEXITSTATUS(status) ? LOG_ERR : LOG_WARNING, "workers: serving process %u "
				"(pid %ld) exited with status %d; restarting it", i, (long)pid,
				WEXITSTATUS(status));
		else
			log_msg(LOG_ERR, "workers: serving process %u (pid %ld) killed by signal %d; "
				"restarting it", i, (long)pid, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		slots[i].restart = 1;
	}
	return fatal;
}

/* Stop every serving process: SIGTERM, wait, SIGKILL after PREFORK_STOP_SECONDS. */
static void prefork_stop(int sig, int *failed)
{
	time_t deadline = prefork_now() + PREFORK_STOP_SECONDS;

	prefork_signal_all(sig);
	while (prefork_running() > 0) {
		struct timespec tick = { 0, 200 * 1000 * 1000 };
		siginfo_t si;

		(void)sigtimedwait(&prefork_sigs, &si, &tick);
		(void)prefork_reap(1, failed);
		if (prefork_now() >= deadline && prefork_running() > 0) {
			log_msg(LOG_ERR, "workers: %u serving processes still running after %d s; "
				"killing them", prefork_running(), PREFORK_STOP_SECONDS);
			prefork_signal_all(SIGKILL);
			deadline = prefork_now() + 5;
			*failed = 1;
		}
	}
}

int prefork_run(unsigned workers, unsigned *index)
{
	int failed = 0, sig = 0;

	nslots = workers < SHARED_WORKERS_MAX ? workers : SHARED_WORKERS_MAX;
	sigemptyset(&prefork_sigs);
	sigaddset(&prefork_sigs, SIGCHLD);
	sigaddset(&prefork_sigs, SIGHUP);
	sigaddset(&prefork_sigs, SIGTERM);
	sigaddset(&prefork_sigs, SIGINT);
	/* taken synchronously below; the children unblock them once they
	 * handle them (main.c) */
	sigprocmask(SIG_BLOCK, &prefork_sigs, NULL);
	for (unsigned i = 0; i < nslots; i++) {
		int r = prefork_spawn(i);

		if (r == 1) {
			*index = i;
			return -1;
		}
		if (r < 0) {
			prefork_stop(SIGTERM, &failed);
			return 1;
		}
	}
	log_msg(LOG_INFO, "workers: %u serving processes started", nslots);
	for (;;) {
		/* a second at most: a restart whose fork failed is tried again */
		struct timespec tick = { 1, 0 };
		siginfo_t si;
		int s = sigtimedwait(&prefork_sigs, &si, &tick);

		if (s == SIGHUP) {
			log_msg(LOG_INFO, "SIGHUP: reloading in %u serving processes", prefork_running());
			prefork_signal_all(SIGHUP);
		} else if (s == SIGTERM || s == SIGINT) {
			sig = s;
			break;
		} else if (s == SIGCHLD && prefork_reap(0, &failed)) {
			break;
		}
		for (unsigned i = 0; i < nslots; i++) {
			int r;

			if (!slots[i].restart)
				continue;
			r = prefork_spawn(i);
			if (r == 1) {
				*index = i;
				return -1;
			}
			if (r == 0)
				slots[i].restart = 0;
		}
	}
	if (sig)
		log_msg(LOG_INFO, "%s: stopping %u serving processes",
			sig == SIGINT ? "SIGINT" : "SIGTERM", prefork_running());
	else
		log_msg(LOG_ERR, "workers: stopping %u serving processes after that failure",
			prefork_running());
	prefork_stop(SIGTERM, &failed);
	writer_close_channels(); /* the writer ends with its last channel */
	log_msg(LOG_INFO, "stopped");
	return failed ? 1 : 0;
}
