/*
 * session.h: one client <-> upstream pair.
 *
 * A session is two symmetric flows: c2u (client to upstream) and u2c.
 * Each flow reads its source socket and writes its destination socket,
 * owning one read event and one write event, so one function moves bytes
 * in either direction.  A flow holds no buffer while bytes pass straight
 * through; only what the destination could not take yet is kept, and
 * while it is kept the source is not read (backpressure).
 */
#ifndef RELAY64_SESSION_H
#define RELAY64_SESSION_H

#include <sys/queue.h>
#include <netinet/in.h>
#include <stdint.h>
#include <time.h>

#include <event2/event_struct.h>

#include "upstream.h"

struct listener;
struct listen_conf;
struct session;

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
	int			 f_pipe[2];	/* splice: -1 until bulk */
	uint32_t		 f_plen;	/* bytes waiting in f_pipe */
	uint8_t			 f_eof;		/* f_from sent FIN */
	uint8_t			 f_shut;	/* FIN passed on to f_to */
	uint8_t			 f_rarmed;
	uint8_t			 f_warmed;
	uint8_t			 f_nopipe;	/* no pipe could be had */
};

enum session_state {
	SESSION_CONNECTING,
	SESSION_RELAYING,
};

struct session {
	LIST_ENTRY(session)	 s_entry;
	struct listener		*s_listener;
	struct listen_conf	*s_conf;	/* referenced */
	uint64_t		 s_id;
	enum session_state	 s_state;
	int			 s_cfd;
	int			 s_ufd;		/* -1 until connecting */
	struct sockaddr_in6	 s_client;
	struct sockaddr_in	 s_upaddr;	/* being tried or connected */
	struct timespec		 s_start;
	time_t			 s_last;	/* last byte, monotonic s */
	int			 s_lasterr;	/* last connect errno */
	uint16_t		 s_hdrlen;	/* PROXY header bytes sent up */
	struct upstream_iter	 s_up;
	struct event		 s_timer;	/* idle timeout */
	struct flow		 s_c2u;
	struct flow		 s_u2c;
};

void	session_start(struct listener *, int fd, const struct sockaddr_in6 *);
void	session_close(struct session *, const char *reason);

#endif
