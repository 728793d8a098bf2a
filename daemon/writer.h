/*
 * writer.h - the writer process of smtpcertd's privilege separation (the model
 * is OpenSMTPD's queue process): the only process that writes the review queue,
 * its audit log and, under `submissions = auto`, the first repository.
 *
 * When smtpcertd starts as root with `user` set, it prepares state_dir's
 * ownership (writer_start(): the queue and audit log root's, the spool and
 * notice directories writable by `user`, LMDB data files read-only to it) and
 * forks the writer before dropping privileges. The writer stays root, closes the
 * listeners, and serves requests over a SOCK_SEQPACKET socketpair
 * (writer_proto.h). It re-reads the configuration for every request, so it
 * follows the same file SIGHUP reloads, and opens the queue and the repository
 * only for the request. The network process (uid `user`) keeps the other end and
 * asks synchronously from its worker threads, one request at a time.
 *
 * Without root or without `user` no writer runs (writer_enabled() is 0) and the
 * daemon writes the queue itself as before: there is no privilege boundary to
 * keep between two processes of one uid.
 */
#ifndef SMTPCERTD_WRITER_H
#define SMTPCERTD_WRITER_H

#include <stddef.h>
#include <sys/types.h>
#include <smtpcert/smtpcert.h>

/** Seconds the network process waits for one answer. */
#define WRITER_TIMEOUT_SECONDS 30

/* Channels one writer serves: one per serving process (`workers`). */
#define WRITER_CHANNELS_MAX 64

/**
 * As root, before the privilege drop and before any thread exists: set up the
 * ownership of state_dir and the lmdb: stores named by @p config_path for
 * @p user (see the file comment), then fork the writer with @p channels
 * sockets, one per serving process; this process uses the first until
 * writer_use_channel().
 * @return SC_OK; SC_ERR_CONFIG (unknown user, a world-writable state_dir),
 *         SC_ERR_IO with a message in @p err.
 */
SC_MUST_CHECK sc_status writer_start(const char *config_path, const char *user,
				     unsigned channels, char *err, size_t errlen);

/** In serving process @p index (prefork.c): use channel @p index and close the
 *  others, which belong to the other processes. */
void writer_use_channel(unsigned index);

/** The master (prefork.c) serves nothing: close every channel. */
void writer_close_channels(void);

/** Non-zero when a writer was started (it may have died since). */
int writer_enabled(void);

/** The writer's pid, or 0. */
pid_t writer_pid(void);

/** On SIGCHLD (event loop): when the writer has ended, reap it and log it at
 *  once, rather than at the next submission. */
void writer_reap(void);

/** The master of several serving processes (prefork.c) reaped the writer
 *  itself, with status @p status: record and log it as writer_reap() would. */
void writer_reaped_status(int status);

/**
 * Queue a checked submission through the writer (sc_queue_add() there).
 * Thread-safe (one request at a time). @p why gets the reason of a failure.
 * @return SC_OK with *@p out filled; SC_ERR_TEMP when no writer answers (gone,
 *         or silent for WRITER_TIMEOUT_SECONDS); the writer's status otherwise.
 */
SC_MUST_CHECK sc_status writer_submit(const sc_cert *c, const struct sc_addr *addr,
				      const char *auth_user, const char *client,
				      struct sc_submission *out, char *why, size_t whylen);

/**
 * submissions = auto: have the writer store the certificate it queued under
 * @p id into the first repository and record the decision (actor "auto").
 * @return as writer_submit(); *@p out holds the accepted entry.
 */
SC_MUST_CHECK sc_status writer_store(const char *id, struct sc_submission *out, char *why,
				     size_t whylen);

/* writer_serve.c: the writer process's side, answering on @p nsocks sockets
 * (never returns; exits when every one is closed). */
void writer_serve(const int *socks, unsigned nsocks, const char *config_path);

/* writer_state.c: the ownership set-up writer_start() does. */
SC_MUST_CHECK sc_status writer_prepare_state(const char *config_path, uid_t uid, gid_t gid,
					     char *err, size_t errlen);

#endif
