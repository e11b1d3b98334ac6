/*
 * worker.h: one event loop, in a thread of its own, with its listeners
 * and sessions.
 *
 * A worker owns its loop, its listeners, its sessions and what they share
 * (the scratch buffer, the gate: the session_home), its accept gate
 * (admit.h), and its part of a stop (close its listeners, drain, halt).
 * It hands each accepted client to a new session and hears from every
 * session when it ends.  Other threads speak to a worker only through its
 * mailbox: worker_post() sets flags and wakes the loop; a reload's plan
 * goes along with it.  What spans workers (the admission counts) is
 * admit.c's; starting them, reloads and the watchdog are pool.c's.
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

#include "admit.h"
#include "listener.h"
#include "session.h"

struct listen_conf;
struct listener_group;

/* Mailbox flags. */
#define WORKER_REARM	0x01	/* an admission count has room again */
#define WORKER_STOP	0x02	/* stop accepting, drain */
#define WORKER_HALT	0x04	/* close every session now */
#define WORKER_PING	0x08	/* answer the watchdog: w_pong = w_ping */
#define WORKER_RELOAD	0x10	/* apply the plans queued in w_plans */
#define WORKER_REPORT	0x20	/* log every open session (SIGUSR1) */

/* The global settings a worker reads, from start-up and each reload. */
struct worker_settings {
	int			 ws_drain_timeout;	/* seconds */
	int			 ws_splice;
};

/*
 * What a reload asks of one worker: the global settings, and for every
 * listener of the new configuration its group and settings, and for a new
 * group the worker's listener to start.  The worker's listeners whose
 * group is not named are retired.  The plan holds a reference to each
 * listen_conf.
 */
struct worker_plan {
	struct worker_plan	*wp_next;
	struct worker_settings	 wp_settings;
	size_t			 wp_n;
	struct {
		struct listener_group	*group;
		struct listen_conf	*conf;
		struct listener		*fresh;	/* NULL: kept */
	}			 wp_e[];
};

struct worker {
	size_t			 w_index;
	pthread_t		 w_thread;
	int			 w_running;	/* thread started */
	struct event_base	*w_base;
	struct session_home	 w_home;	/* what its sessions share */
	struct admit_gate	 w_gate;
	struct listeners	 w_listeners;
	struct worker_settings	 w_settings;
	unsigned		 w_nsessions;
	int			 w_once;	/* --once: one session, then stop */
	int			 w_once_failed;	/* it reached no upstream */
	int			 w_stopping;
	struct event		 w_drain;	/* ends a drain */
	/* Told when a reload plan has been applied (from this thread). */
	void			(*w_applied)(void *);
	void			*w_applied_arg;
	/* The mailbox. */
	int			 w_mailfd;	/* eventfd */
	struct event		 w_mail_ev;
	atomic_uint		 w_mail;	/* WORKER_* flags pending */
	atomic_uint		 w_ping;	/* watchdog round asked */
	atomic_uint		 w_pong;	/* watchdog round answered */
	pthread_mutex_t		 w_lock;	/* guards w_plans */
	struct worker_plan	*w_plans;
	int			 w_hook;	/* fault injection for tests */
};

struct worker	*worker_new(size_t, struct admit *,
		    const struct worker_settings *, int once,
		    void (*applied)(void *), void *);
void		 worker_free(struct worker *);
void		 worker_start_listener(struct worker *, struct listener *);
int		 worker_run(struct worker *);
void		 worker_post(struct worker *, unsigned);
void		 worker_post_plan(struct worker *, struct worker_plan *);
struct worker_plan *worker_plan_new(size_t, const struct worker_settings *);
void		 worker_plan_free(struct worker_plan *);
void		 worker_halt_sessions(struct worker *);

#endif
