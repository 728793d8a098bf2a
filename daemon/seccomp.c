/*
 * seccomp.c - the network process's system call filter (see seccomp_filter.h). Runs
 * once in the network process, after the privilege drop and after the worker
 * threads exist (TSYNC puts them under the filter too), before the event loop.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "log.h"
#include "seccomp_filter.h"

/* LeakSanitizer stops the process's threads with ptrace() at exit: sanitizer
 * builds (tests, `make asan`) leave ptrace allowed; release builds deny it. */
#if defined(__SANITIZE_ADDRESS__)
#define SECCOMP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define SECCOMP_SANITIZED 1
#endif
#endif
#ifndef SECCOMP_SANITIZED
#define SECCOMP_SANITIZED 0
#endif

#ifdef SC_HAVE_SECCOMP
#include <sched.h>
#include <seccomp.h>

/* Denied with EPERM. Names, not numbers: libseccomp resolves them for the
 * native architecture and skips ones it does not have there. */
static const char *const seccomp_denied[] = {
	/* running other programs */
	"execve", "execveat",
	/* reading or changing other processes */
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	/* file system namespace */
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
	"fsmount", "fsconfig", "fspick", "mount_setattr",
	/* kernel attack surface */
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
	"unshare", "setns", "personality", "acct", "swapon", "swapoff", "reboot",
	"syslog", "iopl", "ioperm", "quotactl", "lookup_dcookie", "open_by_handle_at",
	"name_to_handle_at",
	/* privileges: the drop is done, nothing may change identity again */
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
	"setfsuid", "setfsgid", "setgroups", "capset",
};

/* libseccomp's answer when the kernel (or valgrind, which does not emulate
 * seccomp(2)) lacks a feature the filter needs: run without, with a warning. */
static int seccomp_unsupported(int rc)
{
	return rc == -EOPNOTSUPP || rc == -ENOSYS || rc == -EINVAL;
}

static sc_status seccomp_build(scmp_filter_ctx *out, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = 0;

	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot create a filter");
		return SC_ERR_NOMEM;
	}
	/* every thread, and no set-uid program could gain privileges anyway */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	/* kernel logging of denials (Linux >= 4.14); without it the filter still works */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	for (size_t i = 0; rc == 0 && i < sizeof seccomp_denied / sizeof seccomp_denied[0]; i++) {
		int nr = seccomp_syscall_resolve_name(seccomp_denied[i]);

		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if (SECCOMP_SANITIZED && strcmp(seccomp_denied[i], "ptrace") == 0)
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	/* new namespaces through clone() flags (threads never ask for them) */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWNS, CLONE_NEWNS));
	/* clone3 passes its flags in memory a filter cannot read: ENOSYS makes
	 * glibc fall back to clone(), which the rules above can see */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp: cannot build the filter: %s", strerror(-rc));
		seccomp_release(ctx);
		return seccomp_unsupported(rc) ? SC_ERR_UNSUPPORTED : SC_ERR_IO;
	}
	*out = ctx;
	return SC_OK;
}

sc_status seccomp_filter_apply(char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	int rc;

	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) {
		snprintf(err, errlen, "seccomp: not supported by this kernel");
		return SC_ERR_UNSUPPORTED;
	}
	SC_TRY(seccomp_build(&ctx, err, errlen));
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp: cannot load the filter: %s", strerror(-rc));
		return seccomp_unsupported(rc) ? SC_ERR_UNSUPPORTED : SC_ERR_IO;
	}
	return SC_OK;
}
#else
sc_status seccomp_filter_apply(char *err, size_t errlen)
{
	snprintf(err, errlen, "seccomp: not built in (libseccomp missing at build time)");
	return SC_ERR_UNSUPPORTED;
}
#endif

int seccomp_filter_wanted(const char *config_path)
{
	sc_config *cfg = NULL;
	char err[256];
	int on = 1;

	if (config_path && sc_config_load(config_path, &cfg, err, sizeof err) == SC_OK) {
		on = sc_config_bool(cfg, "seccomp");
		sc_config_free(cfg);
	}
	return on;
}

void seccomp_filter_child(const char *config_path, const char *who, int sock)
{
	const unsigned char ready = 'R';
	char err[256];
	sc_status rc;

	if (seccomp_filter_wanted(config_path)) {
		rc = seccomp_filter_apply(err, sizeof err);
		if (rc != SC_OK && rc != SC_ERR_UNSUPPORTED)
			log_msg(LOG_WARNING, "%s: %s; running without a system call filter",
				who, err);
	}
	(void)!send(sock, &ready, 1, MSG_NOSIGNAL);
}

sc_status seccomp_child_wait(int sock, const char *who, char *err, size_t errlen)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	unsigned char ready = 0;
	ssize_t n;
	int r;

	do
		r = poll(&p, 1, 10000);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		snprintf(err, errlen, "%s: not ready%s%s", who, r ? ": " : " after 10 s",
			 r ? strerror(errno) : "");
		return r ? SC_ERR_IO : SC_ERR_TIMEOUT;
	}
	do
		n = recv(sock, &ready, 1, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n != 1 || ready != 'R') {
		snprintf(err, errlen, "%s: ended before it was ready%s%s", who,
			 n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
		return SC_ERR_IO;
	}
	return SC_OK;
}

/* One probe of --check-seccomp: @p ret/@p e what the call did. @return 1 when
 * it was refused with EPERM. */
static int seccomp_probe(const char *what, long ret, int e)
{
	int ok = ret < 0 && e == EPERM;

	printf("  %-28s %s%s%s\n", what, ok ? "refused: " : "NOT REFUSED",
	       ok ? strerror(e) : "", ok ? "" : (ret < 0 ? " (failed otherwise)" : ""));
	return ok;
}

int seccomp_filter_check(void)
{
	char *const argv[] = { "/bin/true", NULL }, *const envp[] = { NULL };
	char err[256];
	int ok = 1;
	long r;

	if (seccomp_filter_apply(err, sizeof err) != SC_OK) {
		printf("smtpcertd: %s\n", err);
		return 1;
	}
	printf("smtpcertd: seccomp filter installed (mode %d, no_new_privs %d)\n",
	       prctl(PR_GET_SECCOMP, 0, 0, 0, 0), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	errno = 0;
	r = execve(argv[0], argv, envp);
	ok &= seccomp_probe("execve(/bin/true)", r, errno);
	if (SECCOMP_SANITIZED) {
		printf("  %-28s allowed in this sanitizer build (LeakSanitizer needs it)\n",
		       "ptrace");
	} else {
		errno = 0;
		r = syscall(SYS_ptrace, 0L, 0L, 0L, 0L);
		ok &= seccomp_probe("ptrace(PTRACE_TRACEME)", r, errno);
	}
	errno = 0;
	r = syscall(SYS_unshare, 0L);
	ok &= seccomp_probe("unshare", r, errno);
	errno = 0;
	/* raw syscall: glibc's setuid() would signal every thread */
	r = syscall(SYS_setresuid, -1L, -1L, -1L);
	ok &= seccomp_probe("setresuid", r, errno);
	printf("smtpcertd: seccomp check %s\n", ok ? "passed" : "FAILED");
	return ok ? 0 : 1;
}
