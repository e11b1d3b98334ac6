/*
 * worker.h: one event loop with its listeners and sessions.
 *
 * The worker owns the counts and limits that span listeners (the global
 * connection limit, the pause after descriptor exhaustion), the per-loop
 * scratch buffer sessions read into, the lazily created DNS resolver, and
 * the stop sequence (stop accepting, drain, halt).
 */
#ifndef RELAY64_WORKER_H
#define RELAY64_WORKER_H

#include <sys/queue.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

struct conf;
struct listener;
struct session;
struct evdns_base;

TAILQ_HEAD(listeners, listener);
LIST_HEAD(sessions, session);

/* Bytes read from a socket in one go; also the most a direction buffers. */
#define WORKER_SCRATCH	(64 * 1024)

struct worker {
	struct event_base	*w_base;
	struct evdns_base	*w_dns;		/* NULL until a name needs it */
	char			*w_scratch;
	struct listeners	 w_listeners;
	struct sessions		 w_sessions;
	unsigned		 w_nsessions;
	unsigned		 w_max_conns;	/* 0 = no limit */
	int			 w_once;	/* -1: one session, then stop */
	int			 w_stopping;
	int			 w_fdpause;	/* accept paused: out of fds */
	int			 w_drain_timeout;
	struct event		 w_resume;	/* ends w_fdpause */
	struct event		 w_drain;	/* ends a drain */
	uint64_t		 w_idbase;	/* session ids: idbase + n */
	uint64_t		 w_idnext;
};

struct worker	*worker_new(void);
void		 worker_free(struct worker *);
struct evdns_base *worker_dns(struct worker *);
int		 worker_can_accept(struct worker *);
void		 worker_accepted(struct worker *);
void		 worker_fd_exhausted(struct worker *);
void		 worker_session_ended(struct worker *);
void		 worker_rearm(struct worker *);
void		 worker_stop(struct worker *);
void		 worker_halt(struct worker *);
int		 worker_reload(struct worker *, struct conf *, char *, size_t);
void		 worker_set_conf(struct worker *, const struct conf *);
uint64_t	 worker_session_id(struct worker *);

#endif
