/*
 * listener.c: IPv6 listening sockets and the accept loop.
 *
 * A listener is armed (its read event added) only while admit.c says its
 * worker may accept (admit_open()); listener_rearm() asks again whenever
 * that may have changed, so an accept that cannot proceed never spins.  A
 * slot is taken (admit_take()) before each accept and handed, with the
 * client, to the worker's callback.
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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "activation.h"
#include "addr.h"
#include "admit.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "tcp.h"

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
		    log_errstr(errno));
		return -1;
	}
	/* Accepted sockets inherit the keepalive options (tcp.c). */
	if (tcp_keepalive(fd, lc->lc_keepalive) == -1)
		log_warn("listen %s: keepalive", lc->lc_name);
	/* Set both options explicitly: never trust the system default. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	    sizeof(v6only)) == -1 || (reuseport && setsockopt(fd, SOL_SOCKET,
	    SO_REUSEPORT, &on, sizeof(on)) == -1)) {
		snprintf(err, errlen, "listen %s: setsockopt: %s",
		    lc->lc_name, log_errstr(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1) {
		snprintf(err, errlen, "listen %s: bind %s: %s", lc->lc_name,
		    addr_format((const struct sockaddr *)sa, buf, sizeof(buf)),
		    log_errstr(errno));
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
	    log_errstr(errno));
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
		    lc->lc_name, log_errstr(errno));
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

static void
listener_close_fds(int *fds, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
}

static void
listener_group_free(struct listener_group *g)
{
	admit_sources_free(g->g_sources);
	metrics_slots_free(g->g_metrics);
	free(g->g_ls);
	if (g->g_conf != NULL)
		conf_listen_unref(g->g_conf);
	free(g);
}

/* The group's n listeners on fds (a worker without its own shares fds[0]). */
static int
listener_group_fill(struct listener_group *g, int *fds, char *err,
    size_t errlen)
{
	struct listen_conf	*lc = g->g_conf;
	struct listener		*l;
	size_t			 i;

	for (i = 1; i < g->g_n; i++) {
		if (fds[i] == -1 &&
		    (fds[i] = fcntl(fds[0], F_DUPFD_CLOEXEC, 0)) == -1) {
			snprintf(err, errlen, "listen %s: dup: %s",
			    lc->lc_name, log_errstr(errno));
			return -1;
		}
	}
	for (i = 0; i < g->g_n; i++) {
		if ((l = calloc(1, sizeof(*l))) == NULL) {
			snprintf(err, errlen, "listen %s: out of memory",
			    lc->lc_name);
			return -1;
		}
		l->l_group = g;
		l->l_conf = conf_listen_ref(lc);
		l->l_metrics = &g->g_metrics[i];
		l->l_fd = fds[i];
		fds[i] = -1;
		g->g_ls[i] = l;
	}
	return 0;
}

/*
 * Create, bind and listen on the sockets of lc for n workers (or take the
 * passed socket of its title, which the workers then share); no event
 * loop needed yet.  On failure, nothing stays open, err says what and
 * where, and NULL is returned: a reload that cannot open a listener fails,
 * it never ends the process.
 */
struct listener_group *
listener_group_open(struct listen_conf *lc, size_t n, char *err,
    size_t errlen)
{
	struct listener_group	*g;
	socklen_t		 len;
	size_t			 i;
	int			*fds, fd, on = 1, shared = 0;

	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->g_ls = calloc(n, sizeof(*g->g_ls))) == NULL ||
	    (g->g_metrics = metrics_slots_new(n)) == NULL ||
	    (g->g_sources = admit_sources_new()) == NULL ||
	    (fds = calloc(n, sizeof(*fds))) == NULL) {
		if (g != NULL)
			listener_group_free(g);
		snprintf(err, errlen, "listen %s: out of memory", lc->lc_name);
		return NULL;
	}
	for (i = 0; i < n; i++)
		fds[i] = -1;
	if ((fd = activation_take(lc, err, errlen)) == -2)
		goto fail;
	if (fd >= 0) {
		shared = 1;
		if (tcp_keepalive(fd, lc->lc_keepalive) == -1)
			log_warn("listen %s: keepalive", lc->lc_name);
	} else if ((fd = listener_socket(lc, &lc->lc_bind, 0, err,
	    errlen)) == -1)
		goto fail;
	fds[0] = fd;
	g->g_conf = conf_listen_ref(lc);
	g->g_n = n;
	atomic_init(&g->g_refs, 1 + (unsigned)n);
	admit_count_init(&g->g_count, (unsigned)lc->lc_max_conns);
	atomic_init(&g->g_rr, 0);
	atomic_init(&g->g_refused_sec, 0);
	atomic_init(&g->g_refused_quiet, 0);
	len = sizeof(g->g_addr);
	if (getsockname(fd, (struct sockaddr *)&g->g_addr, &len) == -1)
		g->g_addr = lc->lc_bind;
	if (!shared && n > 1)
		listener_group_more(g, fds);
	/* Accepted sockets inherit TCP_NODELAY: no setsockopt per session. */
	for (i = 0; i < n; i++)
		if (fds[i] != -1 && setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY,
		    &on, sizeof(on)) == -1)
			log_warn("listen %s: TCP_NODELAY", lc->lc_name);
	if ((!shared && listener_listen(lc, fd, err, errlen) == -1) ||
	    listener_group_fill(g, fds, err, errlen) == -1)
		goto fail;
	free(fds);
	return g;
 fail:
	listener_close_fds(fds, n);
	free(fds);
	for (i = 0; i < n; i++)
		if (g->g_ls[i] != NULL)
			listener_free(g->g_ls[i]);
	/* The listeners freed held references of their own; the rest: */
	listener_group_free(g);
	return NULL;
}

/* A reload kept the group: the control thread's view of its settings. */
void
listener_group_set_conf(struct listener_group *g, struct listen_conf *lc)
{
	conf_listen_unref(g->g_conf);
	g->g_conf = conf_listen_ref(lc);
}

/*
 * The group's max-connections, from its settings (once every worker uses
 * them: a raised limit may wake paused workers, which must then accept
 * with the new settings).
 */
void
listener_group_set_limit(struct admit *a, struct listener_group *g)
{
	admit_count_set_max(a, &g->g_count, (unsigned)g->g_conf->lc_max_conns);
}

unsigned
listener_group_sessions(struct listener_group *g)
{
	return admit_count_get(&g->g_count);
}

const char *
listener_group_addr(struct listener_group *g, char *buf, size_t len)
{
	return addr_format_bind(&g->g_addr, buf, len);
}

static void
listener_group_unref(struct listener_group *g)
{
	if (atomic_fetch_sub_explicit(&g->g_refs, 1, memory_order_acq_rel) > 1)
		return;
	listener_group_free(g);
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

/*
 * A worker takes l: it joins the worker's list, accepts on base while
 * gate allows, and hands every client to accepted(arg, ...).
 */
void
listener_start(struct listener *l, struct listeners *list,
    struct event_base *base, struct admit_gate *gate,
    listener_accepted_fn *accepted, void *arg)
{
	l->l_list = list;
	l->l_gate = gate;
	l->l_accepted = accepted;
	l->l_arg = arg;
	event_assign(&l->l_ev, base, l->l_fd, EV_READ | EV_PERSIST,
	    listener_accept, l);
	TAILQ_INSERT_TAIL(list, l, l_entry);
	listener_rearm(l);
}

/*
 * A client admit.c refused: closed at once (a reset, so a flood leaves no
 * TIME_WAIT behind), counted, and logged at info with what decided, at
 * most once a second per listener, with how many were not logged since.
 */
static void
listener_refuse(struct listener *l, int fd, const struct sockaddr_in6 *peer,
    enum admit_verdict verdict, int rule)
{
	const struct listen_conf *lc = l->l_conf;
	struct listener_group	*g = l->l_group;
	struct linger		 lg = { 1, 0 };
	struct timespec		 now;
	char			 client[ADDR_STRLEN], rulebuf[ADDR_CIDRLEN];
	char			 why[ADDR_CIDRLEN + 80], more[48];
	long long		 last;
	unsigned		 quiet;

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	metrics_add(&l->l_metrics->ms_refused[verdict == ADMIT_PER_SOURCE ?
	    METRICS_REFUSED_PER_SOURCE : METRICS_REFUSED_ACL], 1);
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	last = atomic_load(&g->g_refused_sec);
	if ((long long)now.tv_sec <= last || !atomic_compare_exchange_strong(
	    &g->g_refused_sec, &last, (long long)now.tv_sec)) {
		atomic_fetch_add(&g->g_refused_quiet, 1);
		return;
	}
	quiet = atomic_exchange(&g->g_refused_quiet, 0);
	more[0] = '\0';
	if (quiet > 0)
		snprintf(more, sizeof(more), " (%u more refused since the last "
		    "line)", quiet);
	switch (verdict) {
	case ADMIT_DENIED:
		snprintf(why, sizeof(why), "deny %s", addr_format_cidr(
		    &lc->lc_deny[rule], rulebuf, sizeof(rulebuf)));
		break;
	case ADMIT_NOT_ALLOWED:
		snprintf(why, sizeof(why), "not in allow");
		break;
	default:
		snprintf(why, sizeof(why), "max-per-source %u sessions from "
		    "its %s open already", lc->lc_max_per_source,
		    IN6_IS_ADDR_V4MAPPED(&peer->sin6_addr) ? "/32" : "/64");
		break;
	}
	log_info("listen %s: refused %s: %s%s", lc->lc_name,
	    addr_format((const struct sockaddr *)peer, client, sizeof(client)),
	    why, more);
}

static void
listener_accept(evutil_socket_t fd, short what, void *arg)
{
	struct listener		*l = arg;
	struct admit_count	*count = &l->l_group->g_count;
	struct listener_client	 c;
	enum admit_verdict	 verdict;
	socklen_t		 len;
	int			 i, s, err, rule;

	(void)what;
	/* A specific address is the local one of every client: no getsockname. */
	c.lcl_local = addr_is_wildcard(&l->l_group->g_addr.sin6_addr) ? NULL :
	    &l->l_group->g_addr;
	for (i = 0; i < LISTENER_BURST && l->l_fd != -1 &&
	    admit_take(l->l_gate, count); i++) {
		len = sizeof(c.lcl_peer);
		s = accept4(fd, (struct sockaddr *)&c.lcl_peer, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1) {
			err = errno;
			admit_give(l->l_gate, count);
			switch (err) {
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
				admit_fd_exhausted(l->l_gate);
				goto out;
			default:
				log_warnx("listen %s: accept: %s",
				    l->l_conf->lc_name, log_errstr(err));
				goto out;
			}
		}
		verdict = admit_client(l->l_conf, l->l_group->g_sources,
		    &c.lcl_peer, &rule, &c.lcl_source_held);
		if (verdict != ADMIT_OK) {
			listener_refuse(l, s, &c.lcl_peer, verdict, rule);
			admit_give(l->l_gate, count);
			continue;
		}
		l->l_nsessions++;
		c.lcl_fd = s;
		/* The callback may close l (--once): look at l_fd again. */
		l->l_accepted(l->l_arg, l, &c);
	}
 out:
	listener_rearm(l);
}

void
listener_rearm(struct listener *l)
{
	int	want = l->l_fd != -1 &&
		    admit_open(l->l_gate, &l->l_group->g_count);

	if (want == l->l_armed)
		return;
	if (want)
		event_add(&l->l_ev, NULL);
	else {
		event_del(&l->l_ev);
		if (l->l_fd != -1)	/* paused, not closed */
			admit_paused(l->l_gate);
	}
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
	if (l->l_fd != -1 && lc->lc_keepalive != l->l_conf->lc_keepalive &&
	    tcp_keepalive(l->l_fd, lc->lc_keepalive) == -1)
		log_warn("listen %s: keepalive", lc->lc_name);
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

/* Which upstream a new session tries first (roundrobin: across workers). */
size_t
listener_first_upstream(struct listener *l)
{
	if (l->l_conf->lc_balance != BALANCE_ROUNDROBIN)
		return 0;
	return atomic_fetch_add_explicit(&l->l_group->g_rr, 1,
	    memory_order_relaxed);
}

/*
 * A client of l is gone (its session ended, or never started): give its
 * slot back.  A retired listener goes with its last session.
 */
void
listener_session_ended(struct listener *l, const struct sockaddr_in6 *peer,
    int source_held)
{
	l->l_nsessions--;
	if (source_held)
		admit_client_gone(l->l_group->g_sources, peer);
	admit_give(l->l_gate, &l->l_group->g_count);
	if (l->l_retired && l->l_nsessions == 0)
		listener_free(l);
}

void
listener_free(struct listener *l)
{
	struct listener_group	*g = l->l_group;

	listener_close(l);
	if (l->l_list != NULL)
		TAILQ_REMOVE(l->l_list, l, l_entry);
	conf_listen_unref(l->l_conf);
	free(l);
	listener_group_unref(g);
}
