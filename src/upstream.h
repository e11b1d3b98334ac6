/*
 * upstream.h: choosing and connecting the IPv4 side of a session.
 *
 * An attempt walks the addresses of a listener's upstreams once (a host
 * name stands for every address of its current answer, which resolve.c
 * hands out at once: no session waits for DNS), starting where the
 * balance mode says, and connects to one address at a time, each with
 * the listener's connect-timeout; a refused, unreachable or timed out
 * address passes on to the next.  When no socket can be had (out of
 * descriptors), the attempt waits and tries the same address again within
 * its connect-timeout, and the worker stops accepting meanwhile.  The attempt ends by calling its
 * completion callback once: with the connected socket, or with -1 and
 * why no upstream could be reached.
 *
 * upstream.c knows nothing of sessions or workers: what it needs (the
 * loop, the gate) is handed in.
 */
#ifndef RELAY64_UPSTREAM_H
#define RELAY64_UPSTREAM_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event_struct.h>

#include "resolve.h"

struct admit_gate;
struct metrics_slot;
struct listen_conf;
struct event_base;

/*
 * Which address is next: one walk over the addresses of the listener's
 * upstreams, entry by entry, from the start'th address.  When the walk
 * starts inside an entry (a name with several addresses), that entry's
 * first addresses come last: the walk is one more segment long.
 */
struct upstream_iter {
	const struct listen_conf *ui_lc;
	size_t			 ui_start;	/* entry of the first address */
	size_t			 ui_skip;	/* its addresses left for the end */
	struct resolve_answer	*ui_first;	/* its answer, when ui_skip */
	size_t			 ui_seg;	/* segments finished */
	int			 ui_open;	/* inside segment ui_seg */
	struct resolve_answer	*ui_ans;	/* the segment's answer (held) */
	const struct resolve_answer *ui_cur;	/* the one read: ui_ans, ui_first */
	size_t			 ui_pos;	/* next address of the segment */
	size_t			 ui_end;
	enum resolve_err	 ui_dnserr;	/* why a name had none, last */
	const char		*ui_dnshost;	/* and which */
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

void	upstream_attempt_start(struct upstream_attempt *,
	    const struct listen_conf *, size_t start, uint64_t id,
	    struct event_base *, struct admit_gate *, struct metrics_slot *,
	    upstream_done_fn *, void *);
void	upstream_attempt_cancel(struct upstream_attempt *);

int	upstream_connect(const struct sockaddr_in *, const struct sockaddr_in *,
	    int *);

#endif
