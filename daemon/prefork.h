/*
 * prefork.h - several serving processes (`workers` > 1). The master binds the
 * listening sockets, starts the writer (privilege separation) and then forks
 * `workers` serving processes; each is a complete smtpcertd network process
 * (its own runtime, event loop, worker threads, reload helper, privilege drop
 * and system call filter) accepting on the shared listening sockets. The kernel
 * wakes whichever is idle, so one client's connections may land in any of
 * them: what must count across them lives in shared.h.
 *
 * The master serves nothing: it forwards SIGHUP, SIGTERM and SIGINT to the
 * serving processes, restarts one that ends without being asked (at most once
 * a second per process; a restart that fails is tried again), stops everything
 * when one exits with an error at its first start (that failure would only
 * repeat), and exits 0 when all of them did after SIGTERM.
 * Why processes and not threads: every module of the network process keeps its
 * state per process (sessions, timers, job completions on its loop), and a
 * crash takes one process's sessions, not the server.
 */
#ifndef SMTPCERTD_PREFORK_H
#define SMTPCERTD_PREFORK_H

/**
 * Fork @p workers serving processes and supervise them. In a serving process
 * this returns -1 with *@p index set (0-based); the caller goes on to load its
 * runtime and serve. In the master it returns the exit status once the
 * processes are stopped.
 */
int prefork_run(unsigned workers, unsigned *index);

#endif
