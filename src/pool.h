/*
 * pool.h: the workers together, as the control thread sees them.
 *
 * The pool starts one worker per CPU (or `workers`), each an event loop in
 * a thread of its own, and owns what spans them: the listener groups of
 * the running configuration, the session count that max-connections
 * limits, session ids, and the global settings a reload changes.  The
 * control thread (main(): signals, reload, notification, watchdog) speaks
 * to workers only through the pool; workers read the shared counters and
 * settings, which are atomic.
 */
#ifndef RELAY64_POOL_H
#define RELAY64_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event_struct.h>

#include "listener.h"

struct conf;
struct worker;

struct pool {
	struct worker		**p_workers;
	size_t			 p_n;
	int			 p_once;
	struct event_base	*p_base;	/* the control loop */
	int			 p_donefd;	/* eventfd: workers that ended */
	struct event		 p_done_ev;
	size_t			 p_ndone;
	struct listener_groups	 p_groups;	/* of the running configuration */
	atomic_uint		 p_nsessions;
	atomic_uint		 p_max_conns;	/* 0 = no limit */
	atomic_int		 p_drain_timeout;
	atomic_int		 p_splice;
	atomic_uint		 p_ping;	/* watchdog round */
	atomic_uint_fast64_t	 p_idnext;
	uint64_t		 p_idbase;
	pthread_mutex_t		 p_lock;	/* guards p_applied */
	pthread_cond_t		 p_applied_cv;
	unsigned long		 p_applied;	/* reload plans applied */
};

size_t		 pool_default_workers(void);
struct pool	*pool_new(size_t, int once);
int		 pool_bind(struct pool *, struct conf *, char *, size_t);
void		 pool_start(struct pool *, struct event_base *,
		    const struct conf *);
int		 pool_reload(struct pool *, struct conf *, char *, size_t);
void		 pool_stop(struct pool *);
void		 pool_halt(struct pool *);
int		 pool_alive(struct pool *);
unsigned	 pool_listeners(struct pool *);
void		 pool_free(struct pool *);

/* For the workers. */
unsigned	 pool_sessions(struct pool *);
int		 pool_has_room(struct pool *);
int		 pool_count_take(atomic_uint *, unsigned);
int		 pool_count_give(atomic_uint *, unsigned);
int		 pool_take(struct pool *);
void		 pool_give(struct pool *);
void		 pool_rearm(struct pool *);
uint64_t	 pool_session_id(struct pool *);
int		 pool_drain_timeout(struct pool *);
int		 pool_splice(struct pool *);
unsigned	 pool_ping_round(struct pool *);
void		 pool_plan_applied(struct pool *);

#endif
