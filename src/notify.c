/*
 * notify.c: READY=1, RELOADING=1, STOPPING=1, STATUS=, WATCHDOG=1 to the
 * service manager, as sd_notify(3) describes the protocol.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static int			notify_fd = -1;
static struct sockaddr_un	notify_sun;
static socklen_t		notify_len;

/* Take $NOTIFY_SOCKET (path or @abstract) and forget it for children. */
void
notify_init(void)
{
	const char	*path = getenv("NOTIFY_SOCKET");
	size_t		 n;

	if (path == NULL || *path == '\0')
		return;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') ||
	    n >= sizeof(notify_sun.sun_path)) {
		log_warnx("NOTIFY_SOCKET \"%s\": not a socket path; not "
		    "notifying", path);
		return;
	}
	memset(&notify_sun, 0, sizeof(notify_sun));
	notify_sun.sun_family = AF_UNIX;
	memcpy(notify_sun.sun_path, path, n);
	if (path[0] == '@')
		notify_sun.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd == -1)
		log_warn("notify socket");
	unsetenv("NOTIFY_SOCKET");
}

int
notify_enabled(void)
{
	return notify_fd != -1;
}

void
notify(const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	if (notify_fd == -1)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sendto(notify_fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_sun, notify_len) == -1)
		log_debug("notify \"%s\": %s", msg, log_errstr(errno));
}

/* The watchdog interval asked for this process, in microseconds; 0: none. */
uint64_t
notify_watchdog_usec(void)
{
	const char		*v = getenv("WATCHDOG_USEC");
	const char		*pid = getenv("WATCHDOG_PID");
	unsigned long long	 usec;
	char			*end;

	if (v == NULL || notify_fd == -1)
		return 0;
	if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	errno = 0;
	usec = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || usec == 0)
		return 0;
	return usec;
}
