/*
 * proc.c: descriptor limit, daemon mode, pid file, privilege drop.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

/* Every session costs two descriptors: take all the system allows. */
int
proc_raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			return -1;
	}
	return (int)(rl.rlim_cur > 0x7fffffff ? 0x7fffffff : rl.rlim_cur);
}

int
proc_lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	struct passwd	*pw;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user \"%s\": %s", user,
		    errno ? strerror(errno) : "no such user");
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/*
 * Become uid/gid for good: supplementary groups cleared, then group, then
 * user; then prove that root cannot be regained.
 */
int
proc_drop(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (setgroups(0, NULL) == -1) {
		snprintf(err, errlen, "user %s: setgroups: %s", user,
		    strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) == -1) {
		snprintf(err, errlen, "user %s: setresgid(%u): %s", user,
		    (unsigned)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "user %s: setresuid(%u): %s", user,
		    (unsigned)uid, strerror(errno));
		return -1;
	}
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		snprintf(err, errlen, "user %s: root could be regained after "
		    "dropping privileges", user);
		return -1;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid) {
		snprintf(err, errlen, "user %s: ids did not change", user);
		return -1;
	}
	return 0;
}

/* Detach from the terminal: fork, new session, stdio to /dev/null. */
int
proc_daemonize(char *err, size_t errlen)
{
	pid_t	pid;
	int	fd;

	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid != 0)
		_exit(0);
	if (setsid() == -1) {
		snprintf(err, errlen, "setsid: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid != 0)
		_exit(0);
	if (chdir("/") == -1) {
		snprintf(err, errlen, "chdir /: %s", strerror(errno));
		return -1;
	}
	if ((fd = open("/dev/null", O_RDWR)) == -1) {
		snprintf(err, errlen, "/dev/null: %s", strerror(errno));
		return -1;
	}
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

int
proc_pidfile_write(const char *path, char *err, size_t errlen)
{
	FILE	*fp;
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0644);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) == EOF) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

void
proc_pidfile_remove(const char *path)
{
	unlink(path);
}
