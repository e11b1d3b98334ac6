/*
 * notify.h: the service manager's notification protocol (sd_notify(3)),
 * spoken directly: a datagram to $NOTIFY_SOCKET.  No libsystemd needed;
 * without NOTIFY_SOCKET every call does nothing.
 */
#ifndef RELAY64_NOTIFY_H
#define RELAY64_NOTIFY_H

#include <stdint.h>

void		notify_init(void);
int		notify_enabled(void);
void		notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t	notify_watchdog_usec(void);

#endif
