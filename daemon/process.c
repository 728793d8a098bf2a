/*
 * process.c - file descriptor limit, daemonizing and privilege drop (see
 * process.h). Runs once in the daemon process at start-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include "process.h"

long process_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
	}
	return rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
}

sc_status process_daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return SC_ERR_IO;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return SC_ERR_IO;
	if (chdir("/") != 0)
		return SC_ERR_IO;
	fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return SC_ERR_IO;
	if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		close(fd);
		return SC_ERR_IO;
	}
	if (fd > 2)
		close(fd);
	return SC_OK;
}

sc_status process_drop_privileges(const char *user, int *dropped, char *err, size_t errlen)
{
	struct passwd *pw;

	*dropped = 0;
	if (geteuid() != 0)
		return SC_OK;
	if (!user || !*user) {
		snprintf(err, errlen, "running as root: set `user` to the account to run as");
		return SC_OK;
	}
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "user: %s: no such user", user);
		return SC_ERR_CONFIG;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user: %s: must not be root", user);
		return SC_ERR_CONFIG;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "user: %s: cannot switch: %s", user, strerror(errno));
		return SC_ERR_PERM;
	}
	/* verify: neither identity may come back */
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != pw->pw_uid || geteuid() != pw->pw_uid ||
	    getgid() != pw->pw_gid || getegid() != pw->pw_gid) {
		snprintf(err, errlen, "user: %s: privileges could be regained", user);
		return SC_ERR_PERM;
	}
	*dropped = 1;
	return SC_OK;
}
