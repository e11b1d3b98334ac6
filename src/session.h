/*
 * session.h: one client <-> upstream pair, from accept to close.
 *
 * A session is connecting (upstream.c's attempt under way), then relaying
 * (two symmetric flows: c2u, client to upstream, and u2c), then closed;
 * the states are asserted.  Each flow reads its source socket and writes
 * its destination socket, owning one read event and one write event, so
 * one function moves bytes in either direction.  A flow holds no buffer
 * while bytes pass straight through; only what the destination could not
 * take yet is kept, and while it is kept the source is not read
 * (backpressure).  A bulk direction may move its bytes through a pipe
 * instead (splice.h).
 *
 * A session knows nothing of its worker but the session_home the worker
 * hands it: the loop, the scratch buffer, the accept gate, and the one
 * call back up, when the session has ended.
 */
#ifndef RELAY64_SESSION_H
#define RELAY64_SESSION_H

#include <sys/queue.h>
#include <netinet/in.h>
#include <stdint.h>
#include <time.h>

#include <event2/event_struct.h>

#include "metrics.h"
#include "splice.h"
#include "upstream.h"

struct admit_gate;
struct metrics_slot;
struct listen_conf;
struct listener;
struct listener_client;
struct session;

LIST_HEAD(sessions, session);

/* Bytes read from a socket in one go; also the most a direction buffers. */
#define SESSION_SCRATCH	(64 * 1024)

/* What a session needs of the worker that runs it (worker.c owns it). */
struct session_home {
	size_t			 sh_index;	/* the worker's, for debug logs */
	struct event_base	*sh_base;
	char			*sh_scratch;	/* SESSION_SCRATCH bytes */
	struct admit_gate	*sh_gate;	/* paused when out of fds */
	int			 sh_splice;	/* bulk directions may splice */
	struct sessions		 sh_sessions;	/* open ones */
	/*
	 * A session of listener l, for client peer, has ended (or never
	 * began); relayed: it reached an upstream.
	 */
	void			(*sh_ended)(struct session_home *,
				    struct listener *l,
				    const struct sockaddr_in6 *peer,
				    int source_held, int relayed);
};

struct flow {
	struct session		*f_sess;
	int			 f_from;	/* socket read */
	int			 f_to;		/* socket written */
	struct event		 f_rev;		/* f_from readable */
	struct event		 f_wev;		/* f_to writable */
	char			*f_buf;		/* bytes f_to did not take */
	uint32_t		 f_off;
	uint32_t		 f_len;
	uint64_t		 f_bytes;	/* delivered to f_to */
	uint64_t		 f_counted;	/* of them, in the metrics */
	struct splice_pipe	 f_pipe;	/* bulk: none until then */
	uint8_t			 f_eof;		/* f_from sent FIN */
	uint8_t			 f_shut;	/* FIN passed on to f_to */
	uint8_t			 f_rarmed;
	uint8_t			 f_warmed;
	uint8_t			 f_nopipe;	/* no pipe could be had */
};

enum session_state {
	SESSION_CONNECTING,
	SESSION_RELAYING,
	SESSION_CLOSED,
};

struct session {
	LIST_ENTRY(session)	 s_entry;
	struct session_home	*s_home;
	struct listener		*s_listener;	/* handed back in sh_ended */
	struct metrics_slot	*s_metrics;	/* the listener's, this worker's */
	uint8_t			 s_source_held;	/* admission's: per-source slot */
	struct listen_conf	*s_conf;	/* referenced */
	uint64_t		 s_id;
	enum session_state	 s_state;
	int			 s_cfd;
	int			 s_ufd;		/* -1 until connected */
	struct sockaddr_in6	 s_client;
	const struct sockaddr_in6 *s_local;	/* NULL: getsockname() */
	struct sockaddr_in	 s_upaddr;	/* connected to */
	struct timespec		 s_start;
	int64_t			 s_last;	/* last byte, monotonic ns */
	uint16_t		 s_hdrlen;	/* PROXY header bytes sent up */
	uint8_t			 s_ticking;	/* s_timer in use */
	uint8_t			 s_kapending;	/* upstream keepalive not set yet */
	union {
		/* SESSION_CONNECTING */
		struct upstream_attempt	 s_attempt;
		/* SESSION_RELAYING */
		struct {
			struct flow	 s_c2u;
			struct flow	 s_u2c;
			struct event	 s_timer;	/* idle, upstream keepalive */
		};
	};
};

void	session_ids_init(void);
void	session_start(struct session_home *, struct listener *,
	    struct listen_conf *, struct metrics_slot *, size_t first_upstream,
	    const struct listener_client *);
void	session_report(const struct session *);
void	session_close(struct session *, enum metrics_end, const char *, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
