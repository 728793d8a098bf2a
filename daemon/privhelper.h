/*
 * privhelper.h - a minimal privileged helper so that SIGHUP can reload files
 * only root may read (the TLS key, typically) after the daemon has dropped to
 * `user`. It does one thing; queue and repository writes have a process of
 * their own (writer.h).
 *
 * Before the privilege drop smtpcertd forks the helper, which stays root and
 * answers one request over a socketpair: "open PATH read-only". It re-reads the
 * configuration itself and opens only the files the configuration names as
 * tls_cert_file, tls_key_file or crl_file, and passes the open descriptor back
 * (SCM_RIGHTS). The daemon copies the content into a memfd and hands the loaders
 * "/proc/self/fd/N", so the library's path-based loaders need no change.
 */
#ifndef SMTPCERTD_PRIVHELPER_H
#define SMTPCERTD_PRIVHELPER_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

/** Fork the helper (call as root, before dropping privileges). @p config_path:
 *  absolute path of the configuration, re-read by the helper for each request. */
SC_MUST_CHECK sc_status privhelper_start(const char *config_path);

/**
 * The runtime's file hook (runtime_set_file_hook): @p path itself when this
 * process can read it or no helper runs; otherwise a "/proc/self/fd/N" path in
 * @p buf whose descriptor is returned in *@p fd for the caller to close.
 */
const char *privhelper_path(const char *path, char *buf, size_t size, int *fd);

#endif
