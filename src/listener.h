/*
 * listener.h: one IPv6 listening socket and its accept loop.
 */
#ifndef RELAY64_LISTENER_H
#define RELAY64_LISTENER_H

#include <sys/queue.h>
#include <netinet/in.h>

#include <event2/event_struct.h>

struct listen_conf;
struct worker;

struct listener {
	TAILQ_ENTRY(listener)	 l_entry;
	struct worker		*l_worker;
	struct listen_conf	*l_conf;	/* referenced */
	int			 l_fd;		/* -1 once closed */
	struct sockaddr_in6	 l_addr;	/* as bound (real port) */
	struct event		 l_ev;
	int			 l_armed;
	int			 l_retired;	/* removed by a reload */
	int			 l_matched;	/* scratch for worker_reload() */
	unsigned		 l_nsessions;
	unsigned		 l_rr;		/* round-robin cursor */
};

void		 listener_activation_init(void);
void		 listener_activation_done(void);
struct listener	*listener_open(struct listen_conf *, char *err, size_t);
void		 listener_start(struct listener *, struct worker *);
void		 listener_rearm(struct listener *);
void		 listener_close(struct listener *);
void		 listener_set_conf(struct listener *, struct listen_conf *);
void		 listener_retire(struct listener *);
void		 listener_session_ended(struct listener *);
void		 listener_free(struct listener *);

#endif
