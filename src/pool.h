/*
 * pool.h: the workers together, as the control thread sees them.
 *
 * The pool starts one worker per CPU (or `workers`), each an event loop in
 * a thread of its own, and owns what spans them: the listener groups of
 * the running configuration, the admission that every worker asks
 * (admit.h), and the global settings, which reach the workers with each
 * reload's plan.  The control thread (main(): signals, reload,
 * notification, watchdog) speaks to workers only through the pool, and
 * the pool to each worker only through its mailbox.
 */
#ifndef RELAY64_POOL_H
#define RELAY64_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event_struct.h>

#include "admit.h"
#include "listener.h"
#include "worker.h"

struct conf;
struct evbuffer;

struct pool {
	struct worker		**p_workers;
	size_t			 p_n;
	int			 p_once;
	struct admit		 p_admit;	/* what every worker asks */
	struct worker_settings	 p_settings;	/* of the running configuration */
	unsigned		 p_budget;	/* sessions the descriptors allow */
	struct event_base	*p_base;	/* the control loop */
	int			 p_donefd;	/* eventfd: workers that ended */
	struct event		 p_done_ev;
	size_t			 p_ndone;
	atomic_int		 p_failed;	/* a worker's loop failed */
	int			 p_stopping;
	struct listener_groups	 p_groups;	/* of the running configuration */
	unsigned		 p_ping;	/* watchdog round */
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
unsigned	 pool_sessions(struct pool *);
int		 pool_metrics(void *, struct evbuffer *);
void		 pool_report(struct pool *);
int		 pool_free(struct pool *);

#endif
