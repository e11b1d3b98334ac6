/*
 * session.c: one client <-> upstream pair, from accept to close.
 *
 *   session_start()  accepted client; start walking the upstreams
 *   session_connect_next() / session_connected()
 *                    one connect attempt at a time, each with the
 *                    listener's connect-timeout; failover on any error
 *   session_relay()  both flows run; flow_pump() moves bytes one way
 *   session_close()  the one way out: every path ends here
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "pool.h"
#include "proxyhdr.h"
#include "session.h"
#include "upstream.h"
#include "worker.h"

/* Reads per readiness event, so one busy flow cannot starve the rest. */
#define FLOW_READS	16
#define SESSION_REASONMAX 256
/*
 * The pipe of a bulk direction, and the most bytes one splice moves.  Four
 * times the default pipe: fewer, larger splices (tests/bench on loopback:
 * about a third less proxy CPU per GB than with 64 KiB).  An
 * unprivileged user's pipes share a budget (fs/pipe-user-pages-soft, 64 MiB
 * by default) that this keeps enough of for 256 such pipes; beyond it the
 * kernel hands out tiny pipes, and those directions copy instead.
 */
#define FLOW_PIPE_CHUNK	(256 * 1024)
/* A pipe smaller than this would move bulk bytes slower than copying. */
#define FLOW_PIPE_MIN	(64 * 1024)

static void	session_connect_next(void *);
static void	session_connected(evutil_socket_t, short, void *);
static void	session_relay(struct session *);
static void	session_idle(evutil_socket_t, short, void *);
static void	session_end(struct session *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	flow_event(evutil_socket_t, short, void *);
static void	flow_arm(struct flow *);
static int	flow_write(struct flow *, const char *, size_t);
static int	flow_pump(struct flow *);
static void	flow_error(struct flow *, int, const char *, int);

static time_t
session_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

void
session_start(struct listener *l, int fd, const struct sockaddr_in6 *peer)
{
	struct worker		*w = l->l_worker;
	struct listen_conf	*lc = l->l_conf;
	struct session		*s;
	size_t			 start = 0;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("listen %s: session", lc->lc_name);
		close(fd);
		listener_session_ended(l);
		return;
	}
	s->s_listener = l;
	s->s_conf = conf_listen_ref(lc);
	s->s_id = pool_session_id(w->w_pool);
	s->s_state = SESSION_CONNECTING;
	s->s_cfd = fd;
	s->s_ufd = -1;
	s->s_client = *peer;
	clock_gettime(CLOCK_MONOTONIC, &s->s_start);
	LIST_INSERT_HEAD(&w->w_sessions, s, s_entry);
	/* TCP_NODELAY: inherited from the listening socket (listener.c). */
	if (log_debugging()) {
		char	client[ADDR_STRLEN];

		log_debug("listen %s: session %016llx from %s on worker %zu",
		    lc->lc_name, (unsigned long long)s->s_id,
		    addr_format((const struct sockaddr *)peer, client,
		    sizeof(client)), w->w_index);
	}

	if (lc->lc_balance == BALANCE_ROUNDROBIN)
		start = listener_next_rr(l);
	upstream_iter_init(&s->s_up, lc, start, w, session_connect_next, s);
	session_connect_next(s);
}

/* Try upstream addresses until one connect is under way, or none is left. */
static void
session_connect_next(void *arg)
{
	struct session		*s = arg;
	struct worker		*w = s->s_listener->l_worker;
	struct listen_conf	*lc = s->s_conf;
	struct timeval		 tv = { lc->lc_connect_timeout, 0 };
	char			 up[ADDR_STRLEN];
	const char		*dnserr;
	int			 err;

	for (;;) {
		switch (upstream_next(&s->s_up, &s->s_upaddr)) {
		case UPSTREAM_WAIT:
			return;
		case UPSTREAM_END:
			if (s->s_lasterr == 0 &&
			    (dnserr = upstream_dns_error(&s->s_up)) != NULL) {
				session_end(s, 0, "no upstream reachable "
				    "(cannot resolve: %s)", dnserr);
			} else
				session_end(s, 0, "no upstream reachable "
				    "(last: %s: %s)", addr_format((struct
				    sockaddr *)&s->s_upaddr, up, sizeof(up)),
				    s->s_lasterr == ETIMEDOUT ?
				    "connect timeout" : strerror(s->s_lasterr));
			return;
		case UPSTREAM_TRY:
			break;
		}
		err = upstream_connect(&s->s_upaddr,
		    lc->lc_has_source ? &lc->lc_source : NULL, &s->s_ufd);
		if (err == 0)
			break;
		s->s_lasterr = err;
		if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
		    err == ENOMEM) {
			worker_fd_exhausted(w);
			session_end(s, 0, "cannot connect: %s", strerror(err));
			return;
		}
		log_info("listen %s: session %016llx: upstream %s: %s",
		    lc->lc_name, (unsigned long long)s->s_id,
		    addr_format((struct sockaddr *)&s->s_upaddr, up,
		    sizeof(up)), strerror(err));
	}
	/* The c2u write event doubles as the connect-completion event. */
	event_assign(&s->s_c2u.f_wev, w->w_base, s->s_ufd, EV_WRITE,
	    session_connected, s);
	event_add(&s->s_c2u.f_wev, &tv);
}

static void
session_connected(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	char		 up[ADDR_STRLEN];
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0) {
		upstream_iter_clear(&s->s_up);
		session_relay(s);
		return;
	}
	s->s_lasterr = err;
	log_info("listen %s: session %016llx: upstream %s: %s",
	    s->s_conf->lc_name, (unsigned long long)s->s_id,
	    addr_format((struct sockaddr *)&s->s_upaddr, up, sizeof(up)),
	    err == ETIMEDOUT ? "connect timeout" : strerror(err));
	close(s->s_ufd);
	s->s_ufd = -1;
	session_connect_next(s);
}

static void
flow_init(struct flow *f, struct session *s, int from, int to)
{
	struct event_base	*base = s->s_listener->l_worker->w_base;

	f->f_sess = s;
	f->f_from = from;
	f->f_to = to;
	f->f_pipe[0] = f->f_pipe[1] = -1;
	event_assign(&f->f_rev, base, from, EV_READ | EV_PERSIST, flow_event,
	    f);
	event_assign(&f->f_wev, base, to, EV_WRITE | EV_PERSIST, flow_event,
	    f);
}

/*
 * Write the PROXY header to the upstream, together with any client bytes
 * already waiting, in one write.  Returns 0, or -1 when the session ended.
 */
static int
session_proxyhdr(struct session *s)
{
	struct listen_conf	*lc = s->s_conf;
	struct flow		*f = &s->s_c2u;
	char			*buf = s->s_listener->l_worker->w_scratch;
	char			 id[17];
	struct proxyhdr_tlvs	 tlvs;
	struct sockaddr_in6	 local;
	socklen_t		 len = sizeof(local);
	size_t			 n;
	ssize_t			 r;

	/* The address the client connected to, not the upstream's. */
	if (getsockname(s->s_cfd, (struct sockaddr *)&local, &len) == -1) {
		flow_error(f, s->s_cfd, "getsockname", errno);
		return -1;
	}
	if (lc->lc_proxy == PROXYHDR_V1)
		n = proxyhdr_v1((struct sockaddr *)&s->s_client,
		    (struct sockaddr *)&local, buf, PROXYHDR_MAX);
	else {
		snprintf(id, sizeof(id), "%016llx", (unsigned long long)s->s_id);
		tlvs.pt_mask = lc->lc_proxy_tlvs;
		tlvs.pt_unique_id = id;
		tlvs.pt_unique_id_len = strlen(id);
		n = proxyhdr_v2((struct sockaddr *)&s->s_client,
		    (struct sockaddr *)&local, &tlvs, (uint8_t *)buf,
		    PROXYHDR_MAX);
	}
	if (n == 0) {
		session_end(s, 1, "cannot encode the PROXY header");
		return -1;
	}
	s->s_hdrlen = (uint16_t)n;
	r = recv(s->s_cfd, buf + n, WORKER_SCRATCH - n, 0);
	if (r > 0)
		n += (size_t)r;
	else if (r == 0)
		f->f_eof = 1;
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		flow_error(f, s->s_cfd, "read", errno);
		return -1;
	}
	return flow_write(f, buf, n);
}

static void
session_relay(struct session *s)
{
	struct timeval	tv = { s->s_conf->lc_idle_timeout, 0 };

	s->s_state = SESSION_RELAYING;
	flow_init(&s->s_c2u, s, s->s_cfd, s->s_ufd);
	flow_init(&s->s_u2c, s, s->s_ufd, s->s_cfd);
	if (s->s_conf->lc_idle_timeout > 0) {
		s->s_last = session_now();
		evtimer_assign(&s->s_timer, s->s_listener->l_worker->w_base,
		    session_idle, s);
		evtimer_add(&s->s_timer, &tv);
	}
	flow_arm(&s->s_u2c);
	if (s->s_conf->lc_proxy == PROXYHDR_OFF) {
		flow_arm(&s->s_c2u);
		return;
	}
	if (session_proxyhdr(s) == 0)
		flow_pump(&s->s_c2u);	/* the rest, or a FIN seen early */
}

static void
session_idle(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	struct timeval	 tv = { 0, 0 };
	time_t		 idle = session_now() - s->s_last;

	(void)fd;
	(void)what;
	if (idle >= s->s_conf->lc_idle_timeout) {
		session_end(s, 0, "idle timeout");
		return;
	}
	tv.tv_sec = s->s_conf->lc_idle_timeout - idle;
	evtimer_add(&s->s_timer, &tv);
}

static const char *
flow_side(const struct flow *f, int fd)
{
	return fd == f->f_sess->s_cfd ? "client" : "upstream";
}

/* An I/O error on fd ends the session; a reset is passed on as a reset. */
static void
flow_error(struct flow *f, int fd, const char *op, int err)
{
	if (err == ECONNRESET || err == EPIPE)
		session_end(f->f_sess, 1, "%s reset", flow_side(f, fd));
	else
		session_end(f->f_sess, 1, "%s: %s: %s", flow_side(f, fd), op,
		    strerror(err));
}

static void
flow_arm(struct flow *f)
{
	int	rwant = !f->f_eof && f->f_len == 0 && f->f_plen == 0;
	int	wwant = f->f_len > 0 || f->f_plen > 0;

	if (rwant != f->f_rarmed) {
		if (rwant)
			event_add(&f->f_rev, NULL);
		else
			event_del(&f->f_rev);
		f->f_rarmed = (uint8_t)rwant;
	}
	if (wwant != f->f_warmed) {
		if (wwant)
			event_add(&f->f_wev, NULL);
		else
			event_del(&f->f_wev);
		f->f_warmed = (uint8_t)wwant;
	}
}

/*
 * Write what f_to may take of buf[len]; keep the rest in the flow.
 * Returns 0, or -1 when the session has ended.
 */
static int
flow_write(struct flow *f, const char *buf, size_t len)
{
	ssize_t	n;

	n = send(f->f_to, buf, len, MSG_NOSIGNAL);
	if (n == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			flow_error(f, f->f_to, "write", errno);
			return -1;
		}
		n = 0;
	}
	f->f_bytes += (size_t)n;
	if (f->f_buf != NULL) {
		/* Flushing what was kept (the source is not read meanwhile). */
		f->f_off += (uint32_t)n;
		f->f_len -= (uint32_t)n;
		return 0;
	}
	if ((size_t)n == len)
		return 0;
	/* Keep the rest; the source is not read until it is gone. */
	if ((f->f_buf = malloc(len - (size_t)n)) == NULL) {
		session_end(f->f_sess, 1, "out of memory");
		return -1;
	}
	memcpy(f->f_buf, buf + n, len - (size_t)n);
	f->f_off = 0;
	f->f_len = (uint32_t)(len - (size_t)n);
	return 0;
}

#ifdef USE_SPLICE
/*
 * Zero-copy: once a flow has filled a whole scratch read it carries bulk,
 * and it gets a pipe; from then on bytes move socket -> pipe -> socket with
 * splice(2), never through user space.  Bytes the destination has not
 * taken yet stay in the pipe (f_plen), and the source is not read while
 * they do, as with f_buf.  Without a pipe (none could be had), the copying
 * path goes on.
 */
static void
flow_pipe_open(struct flow *f)
{
	if (pipe2(f->f_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		f->f_pipe[0] = f->f_pipe[1] = -1;
		f->f_nopipe = 1;	/* do not try again for this flow */
		return;
	}
	/* Failing that (the user's pipe budget), the default size will do. */
	(void)fcntl(f->f_pipe[1], F_SETPIPE_SZ, FLOW_PIPE_CHUNK);
	if (fcntl(f->f_pipe[1], F_GETPIPE_SZ) < FLOW_PIPE_MIN) {
		close(f->f_pipe[0]);
		close(f->f_pipe[1]);
		f->f_pipe[0] = f->f_pipe[1] = -1;
		f->f_nopipe = 1;
	}
}

/* Empty the pipe into f_to.  Returns 0, or -1 when the session ended. */
static int
flow_splice_out(struct flow *f)
{
	ssize_t	n;

	while (f->f_plen > 0) {
		n = splice(f->f_pipe[0], NULL, f->f_to, NULL, f->f_plen,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			flow_error(f, f->f_to, "write", errno);
			return -1;
		}
		f->f_plen -= (uint32_t)n;
		f->f_bytes += (size_t)n;
	}
	return 0;
}

/*
 * One splice from f_from into the pipe, then on to f_to.  Returns the
 * bytes read (0 at EOF), -2 when the source has nothing now, or -1 when
 * the session ended.
 */
static ssize_t
flow_splice(struct flow *f)
{
	ssize_t	n;

	n = splice(f->f_from, NULL, f->f_pipe[1], NULL, FLOW_PIPE_CHUNK,
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return -2;
		flow_error(f, f->f_from, "read", errno);
		return -1;
	}
	f->f_plen = (uint32_t)n;
	if (n > 0 && flow_splice_out(f) == -1)
		return -1;
	return n;
}
#endif

/*
 * Move bytes from f_from to f_to: first what is kept, then fresh reads
 * passed straight through.  On EOF with nothing kept, pass the FIN on.
 * Returns 0, or -1 when the session has ended.
 */
static int
flow_pump(struct flow *f)
{
	struct session	*s = f->f_sess;
	char		*scratch = s->s_listener->l_worker->w_scratch;
	ssize_t		 n;
	int		 i;

#ifdef USE_SPLICE
	if (f->f_plen > 0) {
		if (flow_splice_out(f) == -1)
			return -1;
		if (f->f_plen > 0)
			goto arm;
	}
#endif
	if (f->f_len > 0) {
		if (flow_write(f, f->f_buf + f->f_off, f->f_len) == -1)
			return -1;
		if (f->f_len > 0)
			goto arm;
		free(f->f_buf);
		f->f_buf = NULL;
	}
	for (i = 0; i < FLOW_READS && !f->f_eof; i++) {
#ifdef USE_SPLICE
		if (f->f_pipe[0] != -1) {
			if ((n = flow_splice(f)) == -1)
				return -1;
			if (n == -2)
				break;
			if (n == 0) {
				f->f_eof = 1;
				break;
			}
			if (f->f_plen > 0 || n < FLOW_PIPE_CHUNK)
				break;
			continue;
		}
#endif
		n = recv(f->f_from, scratch, WORKER_SCRATCH, 0);
		if (n > 0) {
			if (flow_write(f, scratch, (size_t)n) == -1)
				return -1;
#ifdef USE_SPLICE
			if (n == WORKER_SCRATCH && !f->f_nopipe &&
			    f->f_pipe[0] == -1 && pool_splice(
			    s->s_listener->l_worker->w_pool))
				flow_pipe_open(f);	/* bulk: go zero-copy */
#endif
			if (f->f_len > 0 || n < WORKER_SCRATCH)
				break;
			continue;
		}
		if (n == 0) {
			f->f_eof = 1;
			break;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (errno == EINTR)
			continue;
		flow_error(f, f->f_from, "read", errno);
		return -1;
	}
	if (s->s_conf->lc_idle_timeout > 0)
		s->s_last = session_now();
	if (f->f_eof && f->f_len == 0 && f->f_plen == 0 && !f->f_shut) {
		/* Half-close: pass the FIN on, keep the other way going. */
		if (shutdown(f->f_to, SHUT_WR) == -1 && errno != ENOTCONN) {
			flow_error(f, f->f_to, "shutdown", errno);
			return -1;
		}
		f->f_shut = 1;
		if (s->s_c2u.f_shut && s->s_u2c.f_shut) {
			session_end(s, 0, "done");
			return -1;
		}
	}
 arm:
	flow_arm(f);
	return 0;
}

static void
flow_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	flow_pump(arg);
}

static void
flow_clear(struct flow *f)
{
	if (f->f_rarmed)
		event_del(&f->f_rev);
	if (f->f_warmed)
		event_del(&f->f_wev);
	free(f->f_buf);
	f->f_buf = NULL;
	if (f->f_pipe[0] != -1) {
		close(f->f_pipe[0]);
		close(f->f_pipe[1]);
		f->f_pipe[0] = f->f_pipe[1] = -1;
	}
}

/* Close a socket; with abort, as a reset (RST), so the peer learns fast. */
static void
session_closefd(int fd, int abort)
{
	struct linger	lg = { 1, 0 };

	if (fd == -1)
		return;
	if (abort)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

void
session_close(struct session *s, const char *reason)
{
	session_end(s, 0, "%s", reason);
}

/*
 * The one close path: stop events, release both sockets (resetting them
 * when abort is set), log the session's line, count down, free.
 */
static void
session_end(struct session *s, int abort, const char *fmt, ...)
{
	struct listener	*l = s->s_listener;
	char		 reason[SESSION_REASONMAX];
	char		 client[ADDR_STRLEN], up[ADDR_STRLEN];
	struct timespec	 now;
	va_list		 ap;
	double		 secs;
	int		 pri = LOG_INFO;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);

	if (s->s_state == SESSION_CONNECTING) {
		pri = LOG_WARNING;
		upstream_iter_clear(&s->s_up);
		if (s->s_ufd != -1)
			event_del(&s->s_c2u.f_wev);
		strcpy(up, "-");
	} else {
		flow_clear(&s->s_c2u);
		flow_clear(&s->s_u2c);
		if (s->s_conf->lc_idle_timeout > 0)
			event_del(&s->s_timer);
		addr_format((struct sockaddr *)&s->s_upaddr, up, sizeof(up));
	}
	session_closefd(s->s_cfd, abort);
	session_closefd(s->s_ufd, abort);

	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - s->s_start.tv_sec) +
	    (double)(now.tv_nsec - s->s_start.tv_nsec) / 1e9;
	log_at(pri, "listen %s: session %016llx %s -> %s ended after %.3fs, "
	    "%llu bytes up, %llu bytes down: %s", s->s_conf->lc_name,
	    (unsigned long long)s->s_id,
	    addr_format((struct sockaddr *)&s->s_client, client,
	    sizeof(client)), up, secs,
	    (unsigned long long)(s->s_c2u.f_bytes > s->s_hdrlen ?
	    s->s_c2u.f_bytes - s->s_hdrlen : 0),
	    (unsigned long long)s->s_u2c.f_bytes, reason);

	LIST_REMOVE(s, s_entry);
	conf_listen_unref(s->s_conf);
	free(s);
	listener_session_ended(l);
}
