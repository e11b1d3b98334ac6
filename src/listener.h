/*
 * listener.h: the listening sockets of one configured listener, and the
 * accept loop.
 *
 * A listen section becomes one listener group: one socket per worker (each
 * bound to the same address with SO_REUSEPORT, so the kernel spreads new
 * connections over the workers), or one passed socket shared by all.  The
 * group holds what the workers share: the session count that the
 * listener's max-connections limits, and the round-robin cursor.  Each
 * worker runs its own struct listener on its socket: the accept loop,
 * which asks admit.c before each accept and about each client accepted
 * (allow, deny, max-per-source: a refused client is closed at once), and
 * hands every other client to the worker's callback.  listener.c knows nothing of sessions or workers.
 */
#ifndef RELAY64_LISTENER_H
#define RELAY64_LISTENER_H

#include <sys/queue.h>
#include <netinet/in.h>
#include <stdatomic.h>

#include <event2/event_struct.h>

#include "admit.h"
#include "metrics.h"

struct event_base;
struct listen_conf;
struct listener;

/* An accepted client, as the listener hands it on. */
struct listener_client {
	int			 lcl_fd;
	struct sockaddr_in6	 lcl_peer;
	/* The address it connected to; NULL for a wildcard bind. */
	const struct sockaddr_in6 *lcl_local;
	int			 lcl_source_held;	/* admit's per-source slot */
};

/*
 * Where an accepted client goes: the worker's callback, handed to
 * listener_start().  The client holds a slot of the admission counts
 * from here on; listener_session_ended() gives it back.  lcl_local lives
 * as long as the listener.
 */
typedef void	listener_accepted_fn(void *arg, struct listener *,
		    const struct listener_client *);

struct listener {
	TAILQ_ENTRY(listener)	 l_entry;
	struct listeners	*l_list;	/* its worker's, once started */
	struct listener_group	*l_group;	/* referenced */
	struct listen_conf	*l_conf;	/* referenced */
	struct admit_gate	*l_gate;	/* its worker's */
	struct metrics_slot	*l_metrics;	/* its worker's slot */
	listener_accepted_fn	*l_accepted;
	void			*l_arg;
	int			 l_fd;		/* -1 once closed */
	struct event		 l_ev;
	int			 l_armed;
	int			 l_retired;	/* removed by a reload */
	unsigned		 l_nsessions;	/* this worker's */
};
TAILQ_HEAD(listeners, listener);

/*
 * Owned by the control thread (the list entry, g_conf, g_matched, g_ls);
 * the counters are shared by the workers.
 */
struct listener_group {
	TAILQ_ENTRY(listener_group) g_entry;
	struct listen_conf	*g_conf;	/* the control thread's view */
	struct sockaddr_in6	 g_addr;	/* as bound (the real port) */
	atomic_uint		 g_refs;	/* control + each listener */
	struct admit_count	 g_count;	/* sessions, max-connections */
	struct metrics_slot	*g_metrics;	/* one slot per worker */
	struct admit_sources	*g_sources;	/* sessions per source */
	atomic_llong		 g_refused_sec;	/* last refusal logged */
	atomic_uint		 g_refused_quiet; /* refusals not logged */
	atomic_uint		 g_rr;		/* round-robin cursor */
	int			 g_matched;	/* scratch for a reload */
	size_t			 g_n;
	struct listener		**g_ls;		/* per worker, until started */
};
TAILQ_HEAD(listener_groups, listener_group);

struct listener_group *listener_group_open(struct listen_conf *, size_t,
		    char *err, size_t);
void		 listener_group_set_conf(struct listener_group *,
		    struct listen_conf *);
void		 listener_group_set_limit(struct admit *,
		    struct listener_group *);
unsigned	 listener_group_sessions(struct listener_group *);
void		 listener_group_release(struct listener_group *);
const char	*listener_group_addr(struct listener_group *, char *, size_t);

void		 listener_start(struct listener *, struct listeners *,
		    struct event_base *, struct admit_gate *,
		    listener_accepted_fn *, void *);
void		 listener_rearm(struct listener *);
void		 listener_close(struct listener *);
void		 listener_set_conf(struct listener *, struct listen_conf *);
void		 listener_retire(struct listener *);
size_t		 listener_first_upstream(struct listener *);
void		 listener_session_ended(struct listener *,
		    const struct sockaddr_in6 *, int source_held);
void		 listener_free(struct listener *);

#endif
