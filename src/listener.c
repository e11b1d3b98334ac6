/*
 * listener.c: IPv6 listening sockets and the accept loop.
 *
 * A listener is armed (its read event added) only while it may accept:
 * the worker is not stopping, not paused for lack of descriptors, and
 * neither the global nor the listener's own connection limit is reached.
 * listener_rearm() recomputes that whenever one of them changes, so an
 * accept that cannot proceed never spins.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "session.h"
#include "worker.h"

/* Connections taken from the backlog per readiness event. */
#define LISTENER_BURST	64
#define LISTENER_BACKLOG 4096

static void	listener_accept(evutil_socket_t, short, void *);

/*
 * Sockets passed by the service manager (socket activation: LISTEN_PID,
 * LISTEN_FDS, LISTEN_FDNAMES).  A listener whose title names one uses it
 * instead of binding.
 */
#define LISTENER_FDS_START	3
#define LISTENER_FDS_MAX	256
static struct {
	int	 fd;
	char	*name;
	int	 used;
} listener_fds[LISTENER_FDS_MAX];
static int	listener_nfds;

void
listener_activation_init(void)
{
	const char	*pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char	*names = getenv("LISTEN_FDNAMES"), *p, *colon;
	long		 n;
	int		 i;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid())
		goto out;
	n = strtol(fds, NULL, 10);
	if (n <= 0 || n > LISTENER_FDS_MAX) {
		log_warnx("LISTEN_FDS=%s: ignored", fds);
		goto out;
	}
	for (i = 0, p = names; i < n; i++) {
		listener_fds[i].fd = LISTENER_FDS_START + i;
		fcntl(listener_fds[i].fd, F_SETFD, FD_CLOEXEC);
		if (p != NULL) {
			colon = strchr(p, ':');
			listener_fds[i].name = colon ? strndup(p, (size_t)(colon -
			    p)) : strdup(p);
			if (listener_fds[i].name == NULL)
				fatal("strdup");
			p = colon ? colon + 1 : NULL;
		}
	}
	listener_nfds = (int)n;
 out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* Close the passed sockets no listener took, and forget the names. */
void
listener_activation_done(void)
{
	int	i;

	for (i = 0; i < listener_nfds; i++) {
		if (!listener_fds[i].used) {
			log_warnx("socket %d passed as \"%s\": no listener "
			    "of that title; closed", listener_fds[i].fd,
			    listener_fds[i].name ? listener_fds[i].name : "");
			close(listener_fds[i].fd);
		}
		free(listener_fds[i].name);
		listener_fds[i].name = NULL;
	}
	listener_nfds = 0;
}

/* A passed socket named like lc, checked to be a listening IPv6 socket. */
static int
listener_inherited(const struct listen_conf *lc, char *err, size_t errlen)
{
	struct sockaddr_in6	sin6;
	socklen_t		len = sizeof(sin6), olen = sizeof(int);
	int			i, fd, listening = 0, v6only = -1;

	for (i = 0; i < listener_nfds; i++) {
		if (listener_fds[i].used || listener_fds[i].name == NULL ||
		    strcmp(listener_fds[i].name, lc->lc_name) != 0)
			continue;
		fd = listener_fds[i].fd;
		if (getsockname(fd, (struct sockaddr *)&sin6, &len) == -1 ||
		    sin6.sin6_family != AF_INET6 ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		    &olen) == -1 || !listening) {
			snprintf(err, errlen, "listen %s: passed socket %d is "
			    "not a listening IPv6 TCP socket", lc->lc_name, fd);
			return -2;
		}
		olen = sizeof(int);
		getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen);
		if (v6only != lc->lc_v6only)
			log_warnx("listen %s: the passed socket has v6only %s; "
			    "the configuration's %s cannot apply (set "
			    "BindIPv6Only= in the socket unit)", lc->lc_name,
			    v6only ? "true" : "false",
			    lc->lc_v6only ? "true" : "false");
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
			snprintf(err, errlen, "listen %s: passed socket: %s",
			    lc->lc_name, strerror(errno));
			return -2;
		}
		listener_fds[i].used = 1;
		return fd;
	}
	return -1;
}

/*
 * Create, bind and listen; no event loop needed yet.  On failure, err
 * says what and where, and NULL is returned.
 */
struct listener *
listener_open(struct listen_conf *lc, char *err, size_t errlen)
{
	struct listener	*l;
	char		 buf[ADDR_STRLEN];
	socklen_t	 len = sizeof(l->l_addr);
	int		 fd, on = 1, v6only = lc->lc_v6only;

	addr_format((struct sockaddr *)&lc->lc_bind, buf, sizeof(buf));
	if ((fd = listener_inherited(lc, err, errlen)) >= 0)
		goto ready;
	if (fd == -2)
		return NULL;
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "listen %s: socket: %s", lc->lc_name,
		    strerror(errno));
		return NULL;
	}
	/* Set both options explicitly: never trust the system default. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	    sizeof(v6only)) == -1) {
		snprintf(err, errlen, "listen %s: setsockopt: %s",
		    lc->lc_name, strerror(errno));
		close(fd);
		return NULL;
	}
	if (bind(fd, (struct sockaddr *)&lc->lc_bind, sizeof(lc->lc_bind)) ==
	    -1 || listen(fd, LISTENER_BACKLOG) == -1) {
		snprintf(err, errlen, "listen %s: bind %s: %s", lc->lc_name,
		    buf, strerror(errno));
		close(fd);
		return NULL;
	}
 ready:
	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatal("calloc");
	l->l_fd = fd;
	l->l_conf = conf_listen_ref(lc);
	if (getsockname(fd, (struct sockaddr *)&l->l_addr, &len) == -1)
		l->l_addr = lc->lc_bind;
	return l;
}

void
listener_start(struct listener *l, struct worker *w)
{
	char	addr[ADDR_STRLEN], ups[1024];

	l->l_worker = w;
	event_assign(&l->l_ev, w->w_base, l->l_fd, EV_READ | EV_PERSIST,
	    listener_accept, l);
	TAILQ_INSERT_TAIL(&w->w_listeners, l, l_entry);
	log_notice("listen %s: listening on %s, upstream %s",
	    l->l_conf->lc_name,
	    addr_format((struct sockaddr *)&l->l_addr, addr, sizeof(addr)),
	    conf_upstreams_str(l->l_conf, ups, sizeof(ups)));
	listener_rearm(l);
}

static int
listener_may_accept(const struct listener *l)
{
	const struct listen_conf *lc = l->l_conf;

	if (l->l_fd == -1 || !worker_can_accept(l->l_worker))
		return 0;
	return lc->lc_max_conns == 0 ||
	    l->l_nsessions < (unsigned)lc->lc_max_conns;
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

static void
listener_accept(evutil_socket_t fd, short what, void *arg)
{
	struct listener		*l = arg;
	struct sockaddr_in6	 peer;
	socklen_t		 len;
	int			 i, s;

	(void)what;
	for (i = 0; i < LISTENER_BURST && listener_may_accept(l); i++) {
		len = sizeof(peer);
		s = accept4(fd, (struct sockaddr *)&peer, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1) {
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
	char	addr[ADDR_STRLEN], ups[1024];

	conf_listen_unref(l->l_conf);
	l->l_conf = conf_listen_ref(lc);
	log_notice("listen %s: kept on %s, upstream %s", lc->lc_name,
	    addr_format((struct sockaddr *)&l->l_addr, addr, sizeof(addr)),
	    conf_upstreams_str(lc, ups, sizeof(ups)));
	listener_rearm(l);
}

/*
 * A reload removed this listener: stop accepting now; its open sessions
 * run on, and the last one to end frees it.
 */
void
listener_retire(struct listener *l)
{
	log_notice("listen %s: removed; %u open sessions run on",
	    l->l_conf->lc_name, l->l_nsessions);
	listener_close(l);
	l->l_retired = 1;
	if (l->l_nsessions == 0)
		listener_free(l);
}

void
listener_session_ended(struct listener *l)
{
	struct worker	*w = l->l_worker;

	l->l_nsessions--;
	if (l->l_retired && l->l_nsessions == 0)
		listener_free(l);
	worker_session_ended(w);
}

void
listener_free(struct listener *l)
{
	listener_close(l);
	if (l->l_worker != NULL)
		TAILQ_REMOVE(&l->l_worker->w_listeners, l, l_entry);
	conf_listen_unref(l->l_conf);
	free(l);
}
