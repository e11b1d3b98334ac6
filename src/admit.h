/*
 * admit.h: whether a client may be accepted now.
 *
 * This one room decides it.  It holds the bounded counts that workers
 * share (max-connections across every listener, each listener's own, and
 * the descriptor budget: what RLIMIT_NOFILE leaves for sessions) and each
 * worker's gate (closed once the worker stops accepting, paused for a
 * while after running out of descriptors all the same).  A slot is taken before
 * each accept, so that no two workers can both take the last one, and is
 * given back when the session ends (or the accept found nobody).
 *
 * A listener whose worker may not accept disarms, so the kernel's backlog
 * holds new clients.  The rule for waking it is written once, here: a
 * worker that finds a count full marks it waited on before it disarms, and
 * the give that frees a slot in a count waited on owes one wake-up, which
 * the callback handed to admit_init() delivers (it re-arms every worker).
 * A give that nobody waits for wakes nobody.
 *
 * admit.c knows nothing of listeners, sessions or workers: it is called,
 * and calls back only through the two callbacks it is handed.
 */
#ifndef RELAY64_ADMIT_H
#define RELAY64_ADMIT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <event2/event_struct.h>

struct event_base;
struct listen_conf;

/* What admit_client() says of a client just accepted. */
enum admit_verdict {
	ADMIT_OK,
	ADMIT_NOT_ALLOWED,	/* allow is set and no entry matches */
	ADMIT_DENIED,		/* a deny entry matches */
	ADMIT_PER_SOURCE,	/* max-per-source sessions open already */
};

/*
 * Sessions open per source (an IPv6 /64, an IPv4 /32) of one listener,
 * across workers: a hash table with a lock per stripe of buckets, so
 * workers contend only when they touch the same stripe at once.  An entry
 * lives while its source has a session open: the table holds at most as
 * many entries as sessions are open, whatever the number of sources.
 */
#define ADMIT_SOURCE_BUCKETS	4096
#define ADMIT_SOURCE_LOCKS	64
struct admit_source;
struct admit_sources {
	pthread_mutex_t		 as_locks[ADMIT_SOURCE_LOCKS];
	struct admit_source	*as_buckets[ADMIT_SOURCE_BUCKETS];
	uint64_t		 as_seed[2];	/* hostile sources pick keys */
};

/* A count of open sessions that every worker shares, with its bound. */
struct admit_count {
	atomic_uint		 ac_n;
	atomic_uint		 ac_max;	/* 0 = no bound */
	atomic_int		 ac_waited;	/* found full by a worker */
};

/* Descriptors a session holds (client, upstream), and a splice pipe. */
#define ADMIT_SESSION_FDS	2
#define ADMIT_PIPE_FDS		2

/* The process's admission: shared by every worker. */
struct admit {
	struct admit_count	 a_global;	/* sessions: max-connections */
	struct admit_count	 a_fds;		/* descriptors: the budget */
	void			(*a_wake)(void *);	/* re-arm every worker */
	void			*a_wake_arg;
};

/* One worker's gate, used only in that worker's thread. */
struct admit_gate {
	struct admit		*ag_admit;
	int			 ag_closed;	/* accepts no more, for good */
	int			 ag_fdpause;	/* out of descriptors, for now */
	struct event		 ag_resume;	/* ends ag_fdpause */
	atomic_uint_fast64_t	 ag_paused;	/* listener pauses, for metrics */
	void			(*ag_rearm)(void *);	/* this worker's listeners */
	void			*ag_arg;
};

void		admit_init(struct admit *, void (*wake)(void *), void *);
void		admit_count_init(struct admit_count *, unsigned max);
void		admit_count_set_max(struct admit *, struct admit_count *,
		    unsigned max);
unsigned	admit_count_get(struct admit_count *);
void		admit_set_max(struct admit *, unsigned max);
void		admit_set_budget(struct admit *, unsigned fds);
unsigned	admit_sessions(struct admit *);
unsigned	admit_fds(struct admit *);

void		admit_gate_init(struct admit_gate *, struct admit *,
		    struct event_base *, void (*rearm)(void *), void *);
void		admit_gate_clear(struct admit_gate *);
void		admit_gate_close(struct admit_gate *);

int		admit_open(struct admit_gate *, struct admit_count *);
int		admit_take(struct admit_gate *, struct admit_count *);
void		admit_give(struct admit_gate *, struct admit_count *);
void		admit_fd_exhausted(struct admit_gate *);
void		admit_paused(struct admit_gate *);
uint64_t	admit_paused_count(struct admit_gate *);
int		admit_pipe_take(struct admit_gate *);

struct admit_sources *admit_sources_new(void);
void		admit_sources_free(struct admit_sources *);
enum admit_verdict admit_client(const struct listen_conf *,
		    struct admit_sources *, const struct sockaddr_in6 *,
		    int *rule, int *held);
void		admit_client_gone(struct admit_sources *,
		    const struct sockaddr_in6 *);
void		admit_pipe_give(struct admit_gate *);

#endif
