/*
 * writer_state.c - the file ownership privilege separation relies on (see
 * writer.h), set up as root by the daemon process just before it forks the
 * writer. Runs once at start-up.
 *
 *   state_dir               root:GROUP 1770  `user` may create files (the mail
 *                                            spool, O_TMPFILE) but, sticky, may
 *                                            not rename or remove root's entries
 *   state_dir/submissions/  root:root  0700  the queue: the writer and the admin
 *     {tmp,pending,...}/    root:root  0700
 *   state_dir/audit.log     root:root  0600
 *   state_dir/notices/      USER:GROUP 0700  postmaster notices (network process)
 *   lmdb: store directory   root:GROUP g+rx  not writable by `user`
 *     data.mdb              root:GROUP g+r   read through the map only
 *     lock.mdb              OWNER:GROUP g+rw LMDB readers write their reader
 *                                            slot here (even with MDB_RDONLY)
 *
 * dir: stores are left as they are (a warning when `user` could write the
 * directory). GROUP is `user`'s primary group. Entries inside the queue directories keep
 * whatever owner they had: nobody but root can reach them through a 0700
 * directory. A world-writable state_dir is refused rather than changed (a
 * state_dir of /tmp must not turn /tmp into root's directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "writer.h"

/* chown + chmod of @p name under @p dirfd (no symlinks followed). Missing: fine. */
static sc_status wstate_set(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode,
			    char *err, size_t errlen)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? SC_OK : SC_ERR_IO;
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "privsep: %s is a symbolic link: refused", name);
		return SC_ERR_PERM;
	}
	if ((st.st_uid != uid || st.st_gid != gid) &&
	    fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
		snprintf(err, errlen, "privsep: chown %s: %s", name, strerror(errno));
		return SC_ERR_IO;
	}
	if ((st.st_mode & 07777) != mode && fchmodat(dirfd, name, mode, 0) != 0) {
		snprintf(err, errlen, "privsep: chmod %s: %s", name, strerror(errno));
		return SC_ERR_IO;
	}
	return SC_OK;
}

static sc_status wstate_dir(const char *path, int *fd, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, 0750) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "state_dir: %s: %s", path, strerror(errno));
		return SC_ERR_IO;
	}
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &st) != 0) {
		snprintf(err, errlen, "state_dir: %s: %s", path, strerror(errno));
		return SC_ERR_IO;
	}
	if ((st.st_mode & S_IWOTH) != 0) {
		snprintf(err, errlen, "state_dir: %s: world-writable; privilege separation needs a "
			 "directory of its own", path);
		return SC_ERR_CONFIG;
	}
	return SC_OK;
}

static sc_status wstate_queue(const char *state_dir, uid_t uid, gid_t gid, char *err,
			      size_t errlen)
{
	static const char *const sub[] = { "tmp", "pending", "accepted", "rejected" };
	int sfd = -1, qfd;
	sc_status rc = wstate_dir(state_dir, &sfd, err, errlen);

	if (rc == SC_OK)
		rc = wstate_set(sfd, ".", 0, gid, 01770, err, errlen);
	if (rc == SC_OK)
		rc = wstate_set(sfd, "submissions", 0, 0, 0700, err, errlen);
	qfd = rc == SC_OK ? openat(sfd, "submissions", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				   O_CLOEXEC) : -1;
	for (size_t i = 0; qfd >= 0 && rc == SC_OK && i < sizeof sub / sizeof sub[0]; i++)
		rc = wstate_set(qfd, sub[i], 0, 0, 0700, err, errlen);
	if (qfd >= 0)
		close(qfd);
	if (rc == SC_OK)
		rc = wstate_set(sfd, "audit.log", 0, 0, 0600, err, errlen);
	if (rc == SC_OK && mkdirat(sfd, "notices", 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "state_dir: %s/notices: %s", state_dir, strerror(errno));
		rc = SC_ERR_IO;
	}
	if (rc == SC_OK)
		rc = wstate_set(sfd, "notices", uid, gid, 0700, err, errlen);
	if (sfd >= 0)
		close(sfd);
	return rc;
}

/* @p name readable (and for a directory searchable) by @p gid, writable by
 * root alone: the owner becomes root when it was @p uid, the group @p gid,
 * group and other write bits are cleared. Missing: fine. */
static sc_status wstate_readonly(int dirfd, const char *name, uid_t uid, gid_t gid,
				 mode_t readbits, char *err, size_t errlen)
{
	struct stat st;
	mode_t mode;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return SC_OK;
	mode = (st.st_mode & 07777 & ~(mode_t)(S_IWGRP | S_IWOTH)) | readbits;
	return wstate_set(dirfd, name, st.st_uid == uid ? 0 : st.st_uid, gid, mode, err, errlen);
}

/* An lmdb: store: data read-only to `user`, the lock file writable by it
 * (an LMDB reader, even MDB_RDONLY, writes its slot in lock.mdb). */
static sc_status wstate_lmdb(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct stat st;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	sc_status rc;

	if (dfd < 0)
		return SC_OK; /* not created yet: the daemon creates it as root */
	rc = wstate_readonly(dfd, ".", uid, gid, 0050, err, errlen);
	if (rc == SC_OK)
		rc = wstate_readonly(dfd, "data.mdb", uid, gid, 0040, err, errlen);
	if (rc == SC_OK && fstatat(dfd, "lock.mdb", &st, AT_SYMLINK_NOFOLLOW) == 0)
		rc = wstate_set(dfd, "lock.mdb", st.st_uid, gid, (st.st_mode & 07777) | 0060, err,
				errlen);
	close(dfd);
	return rc;
}

sc_status writer_prepare_state(const char *config_path, uid_t uid, gid_t gid, char *err,
			       size_t errlen)
{
	const char *const *specs;
	const char *state_dir;
	sc_config *cfg = NULL;
	size_t n;
	sc_status rc;

	SC_TRY(sc_config_load(config_path, &cfg, err, errlen));
	state_dir = sc_config_str(cfg, "state_dir");
	rc = state_dir && *state_dir ? wstate_queue(state_dir, uid, gid, err, errlen) : SC_OK;
	n = sc_config_list(cfg, "repository", &specs);
	for (size_t i = 0; i < n && rc == SC_OK; i++) {
		struct stat st;

		if (strncmp(specs[i], "lmdb:", 5) == 0)
			rc = wstate_lmdb(specs[i] + 5, uid, gid, err, errlen);
		/* a dir: store is the administrator's tree of files: not changed
		 * here, but a writable one defeats the separation, so say so */
		else if (strncmp(specs[i], "dir:", 4) == 0 && stat(specs[i] + 4, &st) == 0 &&
			 (st.st_uid == uid || (st.st_mode & S_IWOTH) ||
			  (st.st_gid == gid && (st.st_mode & S_IWGRP))))
			log_msg(LOG_WARNING, "privsep: repository %s is writable by the daemon's "
				"user: make it root's", specs[i]);
	}
	sc_config_free(cfg);
	return rc;
}
