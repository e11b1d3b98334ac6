/*
 * worker.h: one event loop, in a thread of its own, with its listeners
 * and sessions.
 *
 * A worker owns its sessions, the per-loop scratch buffer sessions read
 * into, its lazily created DNS resolver, the accept pause after running
 * out of descriptors, and its part of a stop (close its listeners, drain,
 * halt).  What spans workers (counts, limits, session ids) is the pool's.
 * Other threads speak to a worker only through its mailbox: worker_post()
 * sets flags and wakes the loop; a reload's plan goes along with it.
 */
#ifndef RELAY64_WORKER_H
#define RELAY64_WORKER_H

#include <sys/queue.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

struct listen_conf;
struct listener;
struct listener_group;
struct pool;
struct session;
struct evdns_base;

TAILQ_HEAD(listeners, listener);
LIST_HEAD(sessions, session);

/* Bytes read from a socket in one go; also the most a direction buffers. */
#define WORKER_SCRATCH	(64 * 1024)

/* Mailbox flags. */
#define WORKER_REARM	0x01	/* a limit has room again: try to accept */
#define WORKER_STOP	0x02	/* stop accepting, drain */
#define WORKER_HALT	0x04	/* close every session now */
#define WORKER_PING	0x08	/* answer the watchdog (w_pong) */
#define WORKER_RELOAD	0x10	/* apply the plans queued in w_plans */

/*
 * What a reload asks of one worker: for every listener of the new
 * configuration, its group and settings, and for a new group the worker's
 * listener to start.  The worker's listeners whose group is not named are
 * retired.  The plan holds a reference to each listen_conf.
 */
struct worker_plan {
	struct worker_plan	*wp_next;
	size_t			 wp_n;
	struct {
		struct listener_group	*group;
		struct listen_conf	*conf;
		struct listener		*fresh;	/* NULL: kept */
	}			 wp_e[];
};

struct worker {
	struct pool		*w_pool;
	size_t			 w_index;
	pthread_t		 w_thread;
	int			 w_running;	/* thread started */
	struct event_base	*w_base;
	struct evdns_base	*w_dns;		/* NULL until a name needs it */
	char			*w_scratch;
	struct listeners	 w_listeners;
	struct sessions		 w_sessions;
	unsigned		 w_nsessions;
	int			 w_once;	/* -1: one session, then stop */
	int			 w_stopping;
	int			 w_fdpause;	/* accept paused: out of fds */
	struct event		 w_resume;	/* ends w_fdpause */
	struct event		 w_drain;	/* ends a drain */
	/* The mailbox. */
	int			 w_mailfd;	/* eventfd */
	struct event		 w_mail_ev;
	atomic_uint		 w_mail;	/* WORKER_* flags pending */
	atomic_uint		 w_pong;	/* last watchdog round answered */
	pthread_mutex_t		 w_lock;	/* guards w_plans */
	struct worker_plan	*w_plans;
};

struct worker	*worker_new(struct pool *, size_t);
void		 worker_free(struct worker *);
int		 worker_run(struct worker *);
void		 worker_post(struct worker *, unsigned);
void		 worker_post_plan(struct worker *, struct worker_plan *);
void		 worker_plan_free(struct worker_plan *);
struct evdns_base *worker_dns(struct worker *);
int		 worker_can_accept(struct worker *);
void		 worker_accepted(struct worker *);
void		 worker_fd_exhausted(struct worker *);
void		 worker_session_ended(struct worker *);
void		 worker_rearm(struct worker *);
void		 worker_stop(struct worker *);
void		 worker_halt(struct worker *);
void		 worker_halt_sessions(struct worker *);

#endif
