/*
 * stats.h: the `stats` endpoint: /metrics over HTTP, in the control
 * thread's loop, through libevent's evhttp.
 *
 * stats.c knows HTTP and nothing of what it serves: each scrape asks the
 * render callback it was handed (pool.c's, through relay64.c) to write the
 * exposition into a buffer.  A scrape reads counters that workers write
 * into slots of their own; it never blocks or waits for a worker.
 */
#ifndef RELAY64_STATS_H
#define RELAY64_STATS_H

#include <sys/socket.h>
#include <stddef.h>

struct event_base;
struct evbuffer;
struct stats;

typedef int	stats_render_fn(void *, struct evbuffer *);

struct stats	*stats_open(const struct sockaddr *, socklen_t, char *err,
		    size_t);
int		 stats_start(struct stats *, struct event_base *,
		    stats_render_fn *, void *, char *err, size_t);
int		 stats_same(const struct stats *, const struct sockaddr *,
		    socklen_t);
const char	*stats_addr(const struct stats *, char *, size_t);
void		 stats_free(struct stats *);

#endif
