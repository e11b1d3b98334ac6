/*
 * proc.c: descriptor limit, daemon mode, pid file, privilege drop.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

/* The write end of the pipe a detaching process waits on; -1: none. */
static int	proc_ready_fd = -1;

/* The pid file of -d, from proc_pidfile_prepare() on. */
static struct {
	const char	*pf_path;	/* as given, for messages */
	char		*pf_name;	/* its last component */
	int		 pf_dirfd;	/* its directory */
	uid_t		 pf_uid;	/* owner: the user the relay runs as */
	gid_t		 pf_gid;
	pid_t		 pf_pid;	/* the writer; 0: not written */
} pidfile = { NULL, NULL, -1, 0, 0, 0 };

static void
proc_pidfile_forget(void)
{
	if (pidfile.pf_dirfd != -1)
		close(pidfile.pf_dirfd);
	pidfile.pf_dirfd = -1;
	free(pidfile.pf_name);
	pidfile.pf_name = NULL;
}

/*
 * Every session costs two descriptors: raise the soft limit to the hard
 * one.  When that is refused (a seccomp filter, a security module), err
 * says so and which limit stays in force.
 */
int
proc_raise_nofile(char *err, size_t errlen)
{
	struct rlimit	rl;
	rlim_t		cur;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		snprintf(err, errlen, "cannot read the descriptor limit: %s",
		    strerror(errno));
		return -1;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		cur = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			snprintf(err, errlen, "cannot raise the descriptor "
			    "limit from %llu to %llu: %s; keeping %llu",
			    (unsigned long long)cur,
			    (unsigned long long)rl.rlim_max, strerror(errno),
			    (unsigned long long)cur);
			return -1;
		}
	}
	return 0;
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

/*
 * Detach from the terminal: fork, new session, fork again, chdir /.  The
 * process that was started waits until the daemon says how its start-up
 * ended (proc_daemon_ready()) and exits with that status: 0 once it is
 * ready, its exit status when it failed, 1 when it died without a word.
 * Until then the daemon keeps the standard descriptors, so that start-up
 * messages still reach the terminal.
 */
int
proc_daemonize(char *err, size_t errlen)
{
	unsigned char	st;
	ssize_t		n;
	pid_t		pid;
	int		p[2];

	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid != 0) {
		close(p[1]);
		while ((n = read(p[0], &st, 1)) == -1 && errno == EINTR)
			;
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
			;
		_exit(n == 1 ? st : 1);
	}
	close(p[0]);
	proc_ready_fd = p[1];
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
	return 0;
}

/*
 * The daemon's start-up is over: tell the waiting process (status 0:
 * ready, standard descriptors to /dev/null first; else the exit status
 * that follows).  Only the first call counts; without -d it does nothing.
 */
void
proc_daemon_ready(int status)
{
	unsigned char	st = (unsigned char)status;
	int		fd;

	if (proc_ready_fd == -1)
		return;
	if (status == 0 && (fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	while (write(proc_ready_fd, &st, 1) == -1 && errno == EINTR)
		;
	close(proc_ready_fd);
	proc_ready_fd = -1;
}

/*
 * A directory that uid/gid (no supplementary groups: the drop clears
 * them) may create and remove entries in.
 */
static int
proc_dir_writable(const struct stat *st, uid_t uid, gid_t gid)
{
	mode_t	m = st->st_mode;

	if (uid == 0)
		return 1;
	if (st->st_uid == uid)
		return (m & S_IWUSR) && (m & S_IXUSR);
	if (st->st_gid == gid)
		return (m & S_IWGRP) && (m & S_IXGRP);
	return (m & S_IWOTH) && (m & S_IXOTH);
}

/*
 * Before binding, while still privileged: the pid file's directory is
 * created (0755, owned by uid/gid, as systemd makes a RuntimeDirectory)
 * when missing, and must let user (uid/gid), the one the relay drops to
 * (NULL: none), remove the pid file at exit.  The directory stays open,
 * so the later chdir("/") and the drop do not matter.
 */
int
proc_pidfile_prepare(const char *path, const char *user, uid_t uid,
    gid_t gid, char *err, size_t errlen)
{
	struct stat	 st;
	const char	*slash;
	char		*dir;

	if (*path == '\0' || path[strlen(path) - 1] == '/') {
		snprintf(err, errlen, "pid file \"%s\": not a file name", path);
		return -1;
	}
	if ((slash = strrchr(path, '/')) == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL || (pidfile.pf_name = strdup(slash ? slash + 1 :
	    path)) == NULL) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		free(dir);
		return -1;
	}
	if (mkdir(dir, 0755) == 0) {
		if (chown(dir, uid, gid) == -1) {
			snprintf(err, errlen, "pid file %s: chown %s: %s", path,
			    dir, strerror(errno));
			goto fail;
		}
	} else if (errno != EEXIST) {
		snprintf(err, errlen, "pid file %s: mkdir %s: %s", path, dir,
		    strerror(errno));
		goto fail;
	}
	pidfile.pf_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pidfile.pf_dirfd == -1 || fstat(pidfile.pf_dirfd, &st) == -1) {
		snprintf(err, errlen, "pid file %s: %s: %s", path, dir,
		    strerror(errno));
		goto fail;
	}
	if (user != NULL && !proc_dir_writable(&st, uid, gid)) {
		snprintf(err, errlen, "pid file %s: user %s cannot write its "
		    "directory %s, so could not remove it at exit", path,
		    user, dir);
		goto fail;
	}
	pidfile.pf_path = path;
	pidfile.pf_uid = uid;
	pidfile.pf_gid = gid;
	free(dir);
	return 0;
 fail:
	free(dir);
	proc_pidfile_forget();
	return -1;
}

static void
proc_pidfile_atexit(void)
{
	proc_pidfile_remove();
}

/*
 * In the daemon, before the drop: write the pid file (owned by the user
 * the relay runs as, so that it can remove it even from a sticky
 * directory).  From here on every exit, exit() included, removes it.
 */
int
proc_pidfile_write(char *err, size_t errlen)
{
	char	buf[32];
	int	fd, n, rc = 0;

	fd = openat(pidfile.pf_dirfd, pidfile.pf_name, O_WRONLY | O_CREAT |
	    O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1) {
		snprintf(err, errlen, "pid file %s: %s", pidfile.pf_path,
		    strerror(errno));
		return -1;
	}
	pidfile.pf_pid = getpid();
	atexit(proc_pidfile_atexit);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)pidfile.pf_pid);
	if (geteuid() == 0 && fchown(fd, pidfile.pf_uid, pidfile.pf_gid) == -1)
		rc = -1;
	else if (write(fd, buf, (size_t)n) != n)
		rc = -1;
	if (rc == -1)
		snprintf(err, errlen, "pid file %s: %s", pidfile.pf_path,
		    strerror(errno));
	if (close(fd) == -1 && rc == 0) {
		snprintf(err, errlen, "pid file %s: %s", pidfile.pf_path,
		    strerror(errno));
		rc = -1;
	}
	return rc;
}

/* Remove the pid file this process wrote; idempotent. */
void
proc_pidfile_remove(void)
{
	if (pidfile.pf_pid != 0 && pidfile.pf_pid == getpid())
		unlinkat(pidfile.pf_dirfd, pidfile.pf_name, 0);
	pidfile.pf_pid = 0;
	proc_pidfile_forget();
}
