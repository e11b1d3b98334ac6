/*
 * listener.h: the listening sockets of one configured listener, and the
 * accept loop.
 *
 * A listen section becomes one listener group: one socket per worker (each
 * bound to the same address with SO_REUSEPORT, so the kernel spreads new
 * connections over the workers), or one passed socket shared by all.  The
 * group holds what the workers share: the session count that the
 * listener's max-connections limits, and the round-robin cursor.  Each
 * worker runs its own struct listener on its socket.
 */
#ifndef RELAY64_LISTENER_H
#define RELAY64_LISTENER_H

#include <sys/queue.h>
#include <netinet/in.h>
#include <stdatomic.h>

#include <event2/event_struct.h>

struct listen_conf;
struct worker;

struct listener {
	TAILQ_ENTRY(listener)	 l_entry;
	struct listener_group	*l_group;	/* referenced */
	struct worker		*l_worker;
	struct listen_conf	*l_conf;	/* referenced */
	int			 l_fd;		/* -1 once closed */
	struct event		 l_ev;
	int			 l_armed;
	int			 l_retired;	/* removed by a reload */
	unsigned		 l_nsessions;	/* this worker's */
};

/*
 * Owned by the control thread (the list entry, g_conf, g_matched, g_ls);
 * the counters are shared by the workers.
 */
struct listener_group {
	TAILQ_ENTRY(listener_group) g_entry;
	struct listen_conf	*g_conf;	/* the control thread's view */
	struct sockaddr_in6	 g_addr;	/* as bound (the real port) */
	atomic_uint		 g_refs;	/* control + each listener */
	atomic_uint		 g_nsessions;	/* across workers */
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
unsigned	 listener_group_sessions(struct listener_group *);
void		 listener_group_release(struct listener_group *);
const char	*listener_group_addr(struct listener_group *, char *, size_t);

void		 listener_start(struct listener *, struct worker *);
void		 listener_rearm(struct listener *);
void		 listener_close(struct listener *);
void		 listener_set_conf(struct listener *, struct listen_conf *);
void		 listener_retire(struct listener *);
unsigned	 listener_next_rr(struct listener *);
void		 listener_session_ended(struct listener *);
void		 listener_free(struct listener *);

#endif
