/*
 * privhelper.c - the reload helper (see privhelper.h). The helper process runs
 * as root and owns nothing but its end of the socketpair; the daemon process
 * owns the other end. Requests are rare (one per file per SIGHUP) and answered
 * at once, so the daemon waits for them synchronously (bounded by a timeout).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "privhelper.h"
#include "seccomp_filter.h"

/* Largest file passed through (config files are at most this size too). */
#define PRIVHELPER_FILE_MAX SC_CONFIG_MAX_BYTES

static int privhelper_fd = -1;

/* Is @p path one of the files the configuration names? */
static int privhelper_allowed(const char *config_path, const char *path)
{
	static const char *const keys[] = { "tls_cert_file", "tls_key_file", "crl_file" };
	char err[512];
	sc_config *cfg = NULL;
	int ok = 0;

	if (sc_config_load(config_path, &cfg, err, sizeof err) != SC_OK)
		return 0;
	for (size_t k = 0; k < sizeof keys / sizeof keys[0] && !ok; k++) {
		const char *const *items;
		size_t n = sc_config_list(cfg, keys[k], &items);
		const char *one = n ? NULL : sc_config_str(cfg, keys[k]);

		for (size_t i = 0; i < n && !ok; i++)
			ok = strcmp(items[i], path) == 0;
		if (one && strcmp(one, path) == 0)
			ok = 1;
	}
	sc_config_free(cfg);
	return ok;
}

static void privhelper_reply(int sock, int err, int fd)
{
	unsigned char status = (unsigned char)(err > 255 ? 255 : err);
	struct iovec iov = { &status, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof u);
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof u.buf;
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	}
	(void)!sendmsg(sock, &msg, MSG_NOSIGNAL);
}

static void privhelper_serve(int sock, const char *config_path)
{
	char path[PATH_MAX + 1];
	sigset_t none;

	/* a serving process of prefork.c forks this with signals blocked */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* the daemon decides when to stop: its end closing ends this loop */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* ps and /proc tell the three processes apart (smtpcertd(8)) */
	(void)prctl(PR_SET_NAME, "smtpcertd-priv");
	seccomp_filter_child(config_path, "reload helper", sock);
	for (;;) {
		ssize_t n = recv(sock, path, sizeof path - 1, 0);
		int fd;

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			_exit(0);
		}
		path[n] = '\0';
		if (memchr(path, '\0', (size_t)n) || !privhelper_allowed(config_path, path)) {
			log_msg(LOG_WARNING, "reload helper: refused to open %s", path);
			privhelper_reply(sock, EPERM, -1);
			continue;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		privhelper_reply(sock, fd < 0 ? errno : 0, fd);
		if (fd >= 0)
			close(fd);
	}
}

sc_status privhelper_start(const char *config_path)
{
	char err[256];
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		log_msg(LOG_ERR, "reload helper: socketpair: %s", strerror(errno));
		return SC_ERR_IO;
	}
	pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "reload helper: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return SC_ERR_IO;
	}
	if (pid == 0) {
		close(sv[0]);
		listener_close_all(); /* the helper never talks to the network */
		privhelper_serve(sv[1], config_path);
		_exit(0);
	}
	close(sv[1]);
	privhelper_fd = sv[0];
	if (seccomp_child_wait(privhelper_fd, "reload helper", err, sizeof err) != SC_OK) {
		log_msg(LOG_ERR, "%s", err);
		return SC_ERR_IO;
	}
	return SC_OK;
}

/* Receive one reply (status byte, maybe a descriptor). @return the descriptor or -1
 * (errno set); @p flags e.g. MSG_DONTWAIT. *@p got is 1 when a reply was read. */
static int privhelper_recv(int flags, int *got)
{
	unsigned char status = 0;
	struct iovec iov = { &status, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof u.buf };
	struct cmsghdr *cm;
	int fd = -1;

	*got = recvmsg(privhelper_fd, &msg, MSG_CMSG_CLOEXEC | flags) == 1;
	if (!*got)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	if (status != 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		errno = status ? status : EIO;
	return fd;
}

/* Ask the helper for @p path. @return an open descriptor or -1 (errno set). */
static int privhelper_open(const char *path)
{
	struct timeval tv = { 5, 0 };
	int fd, got;

	/* A reply that arrived after an earlier request timed out belongs to that
	 * request: drop it (and its descriptor) so it is never taken for this one. */
	while ((fd = privhelper_recv(MSG_DONTWAIT, &got)), got)
		if (fd >= 0)
			close(fd);
	(void)setsockopt(privhelper_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (send(privhelper_fd, path, strlen(path), MSG_NOSIGNAL) < 0)
		return -1;
	return privhelper_recv(0, &got);
}

/* Copy an open file into a new memfd. @return the memfd or -1. */
static int privhelper_copy(int in)
{
	static char chunk[16384];
	size_t total = 0;
	int mfd = memfd_create("smtpcertd-priv", MFD_CLOEXEC);

	if (mfd < 0)
		return -1;
	for (;;) {
		ssize_t n = read(in, chunk, sizeof chunk);

		if (n == 0)
			break;
		if (n < 0 || (total += (size_t)n) > PRIVHELPER_FILE_MAX ||
		    write(mfd, chunk, (size_t)n) != n) {
			close(mfd);
			return -1;
		}
	}
	return mfd;
}

const char *privhelper_path(const char *path, char *buf, size_t size, int *fd)
{
	int in, mfd;

	*fd = -1;
	if (privhelper_fd < 0 || !path || access(path, R_OK) == 0 || errno != EACCES)
		return path;
	in = privhelper_open(path);
	if (in < 0) {
		log_msg(LOG_WARNING, "reload helper: %s: %s", path, strerror(errno));
		return path;
	}
	mfd = privhelper_copy(in);
	close(in);
	if (mfd < 0)
		return path;
	snprintf(buf, size, "/proc/self/fd/%d", mfd);
	*fd = mfd;
	return buf;
}
