/*
 * tcp.h: the TCP options relay64 sets on its sockets.
 */
#ifndef RELAY64_TCP_H
#define RELAY64_TCP_H

int	tcp_keepalive(int fd, int seconds);

#endif
