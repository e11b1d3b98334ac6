/*
 * proc.h: the process itself: descriptor limit, daemon mode, pid file,
 * privilege drop.
 */
#ifndef RELAY64_PROC_H
#define RELAY64_PROC_H

#include <sys/types.h>

int	proc_raise_nofile(char *, size_t);
int	proc_lookup_user(const char *, uid_t *, gid_t *, char *, size_t);
int	proc_drop(const char *, uid_t, gid_t, char *, size_t);
int	proc_daemonize(char *, size_t);
void	proc_daemon_ready(int status);
int	proc_pidfile_prepare(const char *, const char *user, uid_t, gid_t,
	    char *, size_t);
int	proc_pidfile_write(char *, size_t);
void	proc_pidfile_remove(void);

#endif
