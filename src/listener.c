/*
 * listener.c: IPv6 listening sockets and the accept loop.
 *
 * A listener is armed (its read event added) only while it may accept:
 * the worker is not stopping, not paused for lack of descriptors, and
 * neither the global nor the listener's own connection limit is reached.
 * listener_rearm() recomputes that whenever one of them changes, so an
 * accept that cannot proceed never spins.  The limits count sessions of
 * every worker: a slot is reserved (pool_take(), listener_take()) before
 * each accept, so no two workers can both take the last one.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "activation.h"
#include "addr.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "pool.h"
#include "session.h"
#include "worker.h"

/* Connections taken from the backlog per readiness event. */
#define LISTENER_BURST	64
#define LISTENER_BACKLOG 4096

static void	listener_accept(evutil_socket_t, short, void *);

/* A bound (not yet listening) socket for lc, with its options set. */
static int
listener_socket(const struct listen_conf *lc, const struct sockaddr_in6 *sa,
    int reuseport, char *err, size_t errlen)
{
	char	buf[ADDR_STRLEN];
	int	fd, on = 1, v6only = lc->lc_v6only;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "listen %s: socket: %s", lc->lc_name,
		    strerror(errno));
		return -1;
	}
	/* Set both options explicitly: never trust the system default. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	    sizeof(v6only)) == -1 || (reuseport && setsockopt(fd, SOL_SOCKET,
	    SO_REUSEPORT, &on, sizeof(on)) == -1)) {
		snprintf(err, errlen, "listen %s: setsockopt: %s",
		    lc->lc_name, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1) {
		snprintf(err, errlen, "listen %s: bind %s: %s", lc->lc_name,
		    addr_format((const struct sockaddr *)sa, buf, sizeof(buf)),
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
listener_listen(const struct listen_conf *lc, int fd, char *err,
    size_t errlen)
{
	if (listen(fd, LISTENER_BACKLOG) == 0)
		return 0;
	snprintf(err, errlen, "listen %s: listen: %s", lc->lc_name,
	    strerror(errno));
	return -1;
}

/*
 * The sockets of workers 1..n-1: each its own, bound to the same address
 * with SO_REUSEPORT, so the kernel spreads connections over the workers.
 * The first socket was bound without it, so that an address some other
 * socket holds fails as it should; it takes SO_REUSEPORT only after its
 * bind (Linux checks both sockets' flags when the next one binds).  If
 * that cannot be, every worker shares the first socket.
 */
static void
listener_group_more(struct listener_group *g, int *fds)
{
	struct listen_conf	*lc = g->g_conf;
	char			 err[256];
	size_t			 i;
	int			 on = 1, fd;

	if (setsockopt(fds[0], SOL_SOCKET, SO_REUSEPORT, &on,
	    sizeof(on)) == -1) {
		snprintf(err, sizeof(err), "listen %s: setsockopt: %s",
		    lc->lc_name, strerror(errno));
		goto share;
	}
	for (i = 1; i < g->g_n; i++) {
		if ((fd = listener_socket(lc, &g->g_addr, 1, err,
		    sizeof(err))) == -1)
			goto share;
		fds[i] = fd;
		if (listener_listen(lc, fd, err, sizeof(err)) == -1)
			goto share;
	}
	return;
 share:
	log_warnx("%s: the %zu workers share one socket", err, g->g_n);
	for (i = 1; i < g->g_n; i++) {
		if (fds[i] != -1)
			close(fds[i]);
		fds[i] = -1;
	}
}

/*
 * Create, bind and listen on the sockets of lc for n workers (or take the
 * passed socket of its title, which the workers then share); no event
 * loop needed yet.  On failure, err says what and where, and NULL is
 * returned.
 */
struct listener_group *
listener_group_open(struct listen_conf *lc, size_t n, char *err,
    size_t errlen)
{
	struct listener_group	*g;
	struct listener		*l;
	socklen_t		 len = sizeof(g->g_addr);
	size_t			 i;
	int			*fds, fd, on = 1, shared = 0;

	if ((fd = activation_take(lc, err, errlen)) == -2)
		return NULL;
	if (fd >= 0)
		shared = 1;
	else if ((fd = listener_socket(lc, &lc->lc_bind, 0, err,
	    errlen)) == -1)
		return NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->g_ls = calloc(n, sizeof(*g->g_ls))) == NULL ||
	    (fds = calloc(n, sizeof(*fds))) == NULL)
		fatal("calloc");
	g->g_conf = conf_listen_ref(lc);
	g->g_n = n;
	atomic_init(&g->g_refs, 1 + (unsigned)n);
	atomic_init(&g->g_nsessions, 0);
	atomic_init(&g->g_rr, 0);
	fds[0] = fd;
	for (i = 1; i < n; i++)
		fds[i] = -1;
	if (getsockname(fd, (struct sockaddr *)&g->g_addr, &len) == -1)
		g->g_addr = lc->lc_bind;
	if (!shared && n > 1)
		listener_group_more(g, fds);
	/* Accepted sockets inherit TCP_NODELAY: no setsockopt per session. */
	for (i = 0; i < n; i++)
		if (fds[i] != -1 && setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY,
		    &on, sizeof(on)) == -1)
			log_warn("listen %s: TCP_NODELAY", lc->lc_name);
	if (!shared && listener_listen(lc, fd, err, errlen) == -1) {
		for (i = 0; i < n; i++)
			if (fds[i] != -1)
				close(fds[i]);
		free(fds);
		free(g->g_ls);
		conf_listen_unref(g->g_conf);
		free(g);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if ((l = calloc(1, sizeof(*l))) == NULL)
			fatal("calloc");
		l->l_group = g;
		l->l_conf = conf_listen_ref(lc);
		/* Workers without a socket of their own share the first. */
		l->l_fd = i == 0 || fds[i] != -1 ? fds[i] :
		    fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (l->l_fd == -1)
			fatal("listen %s: dup", lc->lc_name);
		g->g_ls[i] = l;
	}
	free(fds);
	return g;
}

/* A reload kept the group: the control thread's view of its settings. */
void
listener_group_set_conf(struct listener_group *g, struct listen_conf *lc)
{
	conf_listen_unref(g->g_conf);
	g->g_conf = conf_listen_ref(lc);
}

unsigned
listener_group_sessions(struct listener_group *g)
{
	return atomic_load_explicit(&g->g_nsessions, memory_order_relaxed);
}

const char *
listener_group_addr(struct listener_group *g, char *buf, size_t len)
{
	return addr_format((struct sockaddr *)&g->g_addr, buf, len);
}

static void
listener_group_unref(struct listener_group *g)
{
	if (atomic_fetch_sub_explicit(&g->g_refs, 1, memory_order_acq_rel) > 1)
		return;
	free(g->g_ls);
	conf_listen_unref(g->g_conf);
	free(g);
}

/*
 * The control thread lets go of g: listeners not handed to a worker yet
 * are closed; the group itself lives on until the workers' listeners are
 * freed too.
 */
void
listener_group_release(struct listener_group *g)
{
	struct listener	*l;
	size_t		 i;

	for (i = 0; i < g->g_n; i++) {
		if ((l = g->g_ls[i]) != NULL) {
			g->g_ls[i] = NULL;
			listener_free(l);
		}
	}
	listener_group_unref(g);
}

void
listener_start(struct listener *l, struct worker *w)
{
	l->l_worker = w;
	event_assign(&l->l_ev, w->w_base, l->l_fd, EV_READ | EV_PERSIST,
	    listener_accept, l);
	TAILQ_INSERT_TAIL(&w->w_listeners, l, l_entry);
	listener_rearm(l);
}

static int
listener_may_accept(const struct listener *l)
{
	const struct listen_conf *lc = l->l_conf;

	if (l->l_fd == -1 || !worker_can_accept(l->l_worker) ||
	    !pool_has_room(l->l_worker->w_pool))
		return 0;
	return lc->lc_max_conns == 0 ||
	    listener_group_sessions(l->l_group) < (unsigned)lc->lc_max_conns;
}

/* Reserve a session slot in the global and the listener's limit. */
static int
listener_take(struct listener *l)
{
	struct pool	*p = l->l_worker->w_pool;

	if (!pool_take(p))
		return 0;
	if (!pool_count_take(&l->l_group->g_nsessions,
	    (unsigned)l->l_conf->lc_max_conns)) {
		pool_give(p);
		return 0;
	}
	return 1;
}

/* Give a slot back; if the listener was full, every worker may accept. */
static void
listener_give(struct listener *l)
{
	struct pool	*p = l->l_worker->w_pool;
	int		 full;

	full = pool_count_give(&l->l_group->g_nsessions,
	    (unsigned)l->l_conf->lc_max_conns);
	pool_give(p);
	if (full)
		pool_rearm(p);
}

static void
listener_accept(evutil_socket_t fd, short what, void *arg)
{
	struct listener		*l = arg;
	struct sockaddr_in6	 peer;
	socklen_t		 len;
	int			 i, s;

	(void)what;
	for (i = 0; i < LISTENER_BURST && listener_may_accept(l); i++) {
		if (!listener_take(l))
			break;
		len = sizeof(peer);
		s = accept4(fd, (struct sockaddr *)&peer, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1) {
			listener_give(l);
			switch (errno) {
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
				goto out;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				worker_fd_exhausted(l->l_worker);
				goto out;
			default:
				log_warn("listen %s: accept", l->l_conf->lc_name);
				goto out;
			}
		}
		l->l_nsessions++;
		worker_accepted(l->l_worker);
		session_start(l, s, &peer);
	}
 out:
	listener_rearm(l);
}

void
listener_rearm(struct listener *l)
{
	int	want = listener_may_accept(l);

	if (want == l->l_armed)
		return;
	if (want)
		event_add(&l->l_ev, NULL);
	else
		event_del(&l->l_ev);
	l->l_armed = want;
}

/* Stop accepting: pending connections in the backlog are refused. */
void
listener_close(struct listener *l)
{
	if (l->l_fd == -1)
		return;
	if (l->l_armed)
		event_del(&l->l_ev);
	l->l_armed = 0;
	close(l->l_fd);
	l->l_fd = -1;
}

/* A reload kept this socket: new sessions take the new settings. */
void
listener_set_conf(struct listener *l, struct listen_conf *lc)
{
	conf_listen_unref(l->l_conf);
	l->l_conf = conf_listen_ref(lc);
	listener_rearm(l);
}

/*
 * A reload removed this listener: stop accepting now; its open sessions
 * run on, and the last one to end frees it.
 */
void
listener_retire(struct listener *l)
{
	listener_close(l);
	l->l_retired = 1;
	if (l->l_nsessions == 0)
		listener_free(l);
}

/* Where a roundrobin listener's next session starts, across workers. */
unsigned
listener_next_rr(struct listener *l)
{
	return atomic_fetch_add_explicit(&l->l_group->g_rr, 1,
	    memory_order_relaxed);
}

/* A session of l ended (or never started): give back its slot. */
void
listener_session_ended(struct listener *l)
{
	struct worker	*w = l->l_worker;

	l->l_nsessions--;
	listener_give(l);
	if (l->l_retired && l->l_nsessions == 0)
		listener_free(l);
	worker_session_ended(w);
}

void
listener_free(struct listener *l)
{
	struct listener_group	*g = l->l_group;

	listener_close(l);
	if (l->l_worker != NULL)
		TAILQ_REMOVE(&l->l_worker->w_listeners, l, l_entry);
	conf_listen_unref(l->l_conf);
	free(l);
	listener_group_unref(g);
}
