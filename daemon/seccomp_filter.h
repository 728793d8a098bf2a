/*
 * seccomp_filter.h - the system call filter of smtpcertd's network process (Linux
 * seccomp-bpf through libseccomp). A deny list, not an allow list: the network
 * process uses libevent, OpenSSL, libldap, libpq, LMDB, worker threads, LMTP and
 * proxy connections and reloads all of it on SIGHUP, and an allow list that
 * misses one rarely used call would break a reload months later. What is denied
 * is what none of that needs and what an attacker who got code execution wants
 * next: running programs, debugging other processes, kernel attack surface
 * (modules, bpf, perf, keyrings, userfaultfd, namespaces, mounts) and getting
 * privileges back. Denied calls fail with EPERM (the daemon reports an ordinary
 * error and keeps serving) and the kernel logs them (SCMP_FLTATR_CTL_LOG) where
 * it can. The filter is applied to every thread (TSYNC) with no_new_privs set.
 * The root children (writer, reload helper) get the same filter: they need none
 * of those calls either, and it keeps a compromised one from running a shell.
 */
#ifndef SMTPCERTD_SECCOMP_FILTER_H
#define SMTPCERTD_SECCOMP_FILTER_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

/**
 * Install the filter on all threads of this process. Irrevocable.
 * @return SC_OK; SC_ERR_UNSUPPORTED (not built with libseccomp, or the kernel
 *         has no seccomp); SC_ERR_IO with a message in @p err.
 */
SC_MUST_CHECK sc_status seccomp_filter_apply(char *err, size_t errlen);

/** The `seccomp` setting of the configuration at @p config_path (yes when it
 *  cannot be read: the default). For the root children, which keep no runtime. */
int seccomp_filter_wanted(const char *config_path);

/** In a child process (writer, reload helper): install the filter when the
 *  configuration wants it (a failure is logged, not fatal), then send one
 *  "ready" octet on @p sock so that the parent, in seccomp_child_wait(), goes on
 *  only once the child is filtered. @p who names the process in the log. */
void seccomp_filter_child(const char *config_path, const char *who, int sock);

/** In the parent after forking a child that calls seccomp_filter_child(): wait
 *  (at most 10 s) for its ready octet on @p sock. Without it the daemon could
 *  serve while a root child is not yet filtered.
 *  @return SC_OK; SC_ERR_TIMEOUT; SC_ERR_IO (the child ended), with @p err. */
SC_MUST_CHECK sc_status seccomp_child_wait(int sock, const char *who, char *err, size_t errlen);

/**
 * `smtpcertd --check-seccomp`: install the filter in this process, then show
 * that execve and a few other denied calls are refused, on stdout.
 * @return the process exit status: 0 when every denied call was refused.
 */
int seccomp_filter_check(void);

#endif
