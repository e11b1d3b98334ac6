/*
 * activation.c: sockets passed by the service manager (socket activation:
 * LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES).
 *
 * A listener whose title names a passed socket uses it instead of
 * binding.  activation_init() reads the environment once at start-up;
 * activation_done() closes what no listener took.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activation.h"
#include "conf.h"
#include "log.h"

#define ACTIVATION_FDS_START	3
#define ACTIVATION_FDS_MAX	256
static struct {
	int	 fd;
	char	*name;
	int	 used;
} activation_fds[ACTIVATION_FDS_MAX];
static int	activation_nfds;

void
activation_init(void)
{
	const char	*pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char	*names = getenv("LISTEN_FDNAMES"), *p, *colon;
	long		 n;
	int		 i;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid())
		goto out;
	n = strtol(fds, NULL, 10);
	if (n <= 0 || n > ACTIVATION_FDS_MAX) {
		log_warnx("LISTEN_FDS=%s: ignored", fds);
		goto out;
	}
	for (i = 0, p = names; i < n; i++) {
		activation_fds[i].fd = ACTIVATION_FDS_START + i;
		fcntl(activation_fds[i].fd, F_SETFD, FD_CLOEXEC);
		if (p != NULL) {
			colon = strchr(p, ':');
			activation_fds[i].name = colon ? strndup(p, (size_t)(colon -
			    p)) : strdup(p);
			if (activation_fds[i].name == NULL)
				fatal("strdup");
			p = colon ? colon + 1 : NULL;
		}
	}
	activation_nfds = (int)n;
 out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* Close the passed sockets no listener took, and forget the names. */
void
activation_done(void)
{
	int	i;

	for (i = 0; i < activation_nfds; i++) {
		if (!activation_fds[i].used) {
			log_warnx("socket %d passed as \"%s\": no listener "
			    "of that title; closed", activation_fds[i].fd,
			    activation_fds[i].name ? activation_fds[i].name : "");
			close(activation_fds[i].fd);
		}
		free(activation_fds[i].name);
		activation_fds[i].name = NULL;
	}
	activation_nfds = 0;
}

/*
 * The passed socket named like lc, checked to be a listening IPv6 socket
 * and made non-blocking: its descriptor, -1 when none is named so, or -2
 * with err set when the one named so cannot serve.
 */
int
activation_take(const struct listen_conf *lc, char *err, size_t errlen)
{
	struct sockaddr_in6	sin6;
	socklen_t		len = sizeof(sin6), olen = sizeof(int);
	int			i, fd, listening = 0, v6only = -1;

	for (i = 0; i < activation_nfds; i++) {
		if (activation_fds[i].used || activation_fds[i].name == NULL ||
		    strcmp(activation_fds[i].name, lc->lc_name) != 0)
			continue;
		fd = activation_fds[i].fd;
		if (getsockname(fd, (struct sockaddr *)&sin6, &len) == -1 ||
		    sin6.sin6_family != AF_INET6 ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		    &olen) == -1 || !listening) {
			snprintf(err, errlen, "listen %s: passed socket %d is "
			    "not a listening IPv6 TCP socket", lc->lc_name, fd);
			return -2;
		}
		olen = sizeof(int);
		getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen);
		if (v6only != lc->lc_v6only)
			log_warnx("listen %s: the passed socket has v6only %s; "
			    "the configuration's %s cannot apply (set "
			    "BindIPv6Only= in the socket unit)", lc->lc_name,
			    v6only ? "true" : "false",
			    lc->lc_v6only ? "true" : "false");
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
			snprintf(err, errlen, "listen %s: passed socket: %s",
			    lc->lc_name, log_errstr(errno));
			return -2;
		}
		activation_fds[i].used = 1;
		return fd;
	}
	return -1;
}
