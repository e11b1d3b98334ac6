/*
 * tcp.c: TCP options for dead peers.
 *
 * keepalive = K: after K seconds of silence the kernel probes the peer, six
 * times, K/6 seconds apart (1 s at least), so a peer that vanished without
 * a FIN or a reset is found within about 2K seconds; TCP_USER_TIMEOUT of
 * the same length ends a connection whose sent data goes unacknowledged
 * that long (a peer that stopped acknowledging cannot hold a session
 * forever either).  Set on a listening socket, the options are inherited
 * by every socket it accepts.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "tcp.h"

#define TCP_PROBES	6

/* Returns 0, or -1 with errno set; seconds = 0 turns keepalive off. */
int
tcp_keepalive(int fd, int seconds)
{
	int	on = seconds > 0, intvl = seconds / TCP_PROBES, cnt = TCP_PROBES;
	int	user;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == -1)
		return -1;
	if (!on) {
		user = 0;
		return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user,
		    sizeof(user));
	}
	if (intvl < 1)
		intvl = 1;
	user = (seconds + intvl * cnt) * 1000;
	if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &seconds,
	    sizeof(seconds)) == -1 || setsockopt(fd, IPPROTO_TCP,
	    TCP_KEEPINTVL, &intvl, sizeof(intvl)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user,
	    sizeof(user)) == -1)
		return -1;
	return 0;
}
