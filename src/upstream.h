/*
 * upstream.h: choosing and connecting the IPv4 side of a session.
 *
 * An attempt walks a listener's upstreams once, starting where the
 * balance mode says, expanding host names into their IPv4 addresses
 * (resolved asynchronously), and connects to one address at a time, each
 * with the listener's connect-timeout; a refused, unreachable or timed
 * out address passes on to the next.  When no socket can be had (out of
 * descriptors), the attempt waits and tries the same address again within
 * its connect-timeout, and the worker stops accepting meanwhile.  The attempt ends by calling its
 * completion callback once: with the connected socket, or with -1 and
 * why no upstream could be reached.
 *
 * upstream.c knows nothing of sessions or workers: what it needs (the
 * loop, a resolver) is handed in.
 */
#ifndef RELAY64_UPSTREAM_H
#define RELAY64_UPSTREAM_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event_struct.h>

struct admit_gate;
struct metrics_slot;
struct listen_conf;
struct event_base;
struct evdns_base;
struct evutil_addrinfo;
struct evdns_getaddrinfo_request;

/* A worker's resolver, created on first use (only names need one). */
struct upstream_resolver {
	struct event_base	*ur_base;
	struct evdns_base	*ur_dns;
	int			 ur_failed;	/* cannot be created: said once */
};

enum upstream_step {
	UPSTREAM_TRY,		/* an address to connect to */
	UPSTREAM_WAIT,		/* resolving; the callback resumes */
	UPSTREAM_END,		/* every upstream was tried */
};

/* Which address is next: one walk over the listener's upstreams. */
struct upstream_iter {
	const struct listen_conf *ui_lc;
	struct upstream_resolver *ui_res;
	size_t			 ui_start;	/* first entry tried */
	size_t			 ui_done;	/* entries finished */
	struct evutil_addrinfo	*ui_ai;		/* addresses of a name */
	struct evutil_addrinfo	*ui_cur;
	struct evdns_getaddrinfo_request *ui_req;
	int			 ui_resolving;	/* inside evdns_getaddrinfo() */
	int			 ui_resolved;
	int			 ui_dnserr;	/* last resolution error */
	void			(*ui_cb)(void *);
	void			*ui_arg;
};

/*
 * The completion: fd is the connected socket (the attempt's address in
 * ua_addr), or -1 with err (the last errno, 0 when no address was found)
 * and reason ("no upstream reachable (...)").  It is the attempt's last
 * act: the attempt's memory may be reused as soon as it is called.
 */
typedef void	upstream_done_fn(void *arg, int fd, int err, const char *reason);

struct upstream_attempt {
	struct upstream_iter	 ua_it;
	struct event		 ua_ev;		/* connected, or connect-timeout */
	const struct listen_conf *ua_lc;
	uint64_t		 ua_id;		/* the session's, for its logs */
	struct event_base	*ua_base;
	struct admit_gate	*ua_gate;	/* paused when out of fds */
	struct metrics_slot	*ua_metrics;	/* failures are counted */
	int64_t			 ua_deadline;	/* of this address, monotonic ns */
	int			 ua_fd;		/* -1 between tries */
	int			 ua_lasterr;
	struct sockaddr_in	 ua_addr;	/* being tried, or connected */
	upstream_done_fn	*ua_done;
	void			*ua_arg;
};

void	upstream_resolver_init(struct upstream_resolver *, struct event_base *);
void	upstream_resolver_free(struct upstream_resolver *);

void	upstream_attempt_start(struct upstream_attempt *,
	    const struct listen_conf *, size_t start, uint64_t id,
	    struct event_base *, struct upstream_resolver *,
	    struct admit_gate *, struct metrics_slot *, upstream_done_fn *,
	    void *);
void	upstream_attempt_cancel(struct upstream_attempt *);

int	upstream_connect(const struct sockaddr_in *, const struct sockaddr_in *,
	    int *);

#endif
