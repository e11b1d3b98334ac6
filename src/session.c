/*
 * session.c: one client <-> upstream pair, from accept to close.
 *
 *   session_start()      an accepted client: the upstream attempt begins
 *   session_connected()  upstream.c's completion: relay, or close
 *   session_relay()      both flows run: first what the client sent while
 *                        the upstream connected (the PROXY header before it)
 *   flow_pump()          moves bytes one way: flow_copy(), or splice.c
 *   session_close()      the one way out: every path ends here
 *
 * The rule for what a caller may touch: session_close() frees the session.
 * Every function here that may end up in it returns -1 when it did; after
 * such a -1, neither the session nor its flows may be touched.  Event
 * callbacks return right after such a call.
 */
#include "config.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "admit.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "proxyhdr.h"
#include "session.h"
#include "splice.h"
#include "tcp.h"
#include "upstream.h"

/* Reads per readiness event, so one busy flow cannot starve the rest. */
#define FLOW_READS	16
#define SESSION_REASONMAX 256

static upstream_done_fn session_connected;
static void	session_relay(struct session *);
static void	session_tick(evutil_socket_t, short, void *);
static void	flow_event(evutil_socket_t, short, void *);
static void	flow_arm(struct flow *);
static int	flow_write(struct flow *, const char *, size_t);
static void	flow_count(struct flow *);
static int	flow_pump(struct flow *);
static int	flow_error(struct flow *, int, const char *, int);

/*
 * Session ids: a random high half, so ids differ across restarts, and a
 * counter every worker shares.
 */
static atomic_uint_fast64_t session_idnext;
static uint64_t	session_idbase;

void
session_ids_init(void)
{
	uint32_t	seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint32_t)time(NULL);
	session_idbase = (uint64_t)seed << 32;
	atomic_init(&session_idnext, 0);
}

static uint64_t
session_id_next(void)
{
	uint64_t	n = atomic_fetch_add_explicit(&session_idnext, 1,
			    memory_order_relaxed) + 1;

	return session_idbase | (n & 0xffffffffu);
}

static int64_t
session_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * An accepted client of listener l (settings lc): walk the upstreams from
 * the first_upstream'th.  The session is the home's from now on: whatever
 * happens, session_close() ends it and tells the home.
 */
void
session_start(struct session_home *h, struct listener *l,
    struct listen_conf *lc, struct metrics_slot *ms, size_t first_upstream,
    const struct listener_client *c)
{
	struct session	*s;
	const struct sockaddr_in6 *peer = &c->lcl_peer;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("listen %s: session", lc->lc_name);
		close(c->lcl_fd);
		h->sh_ended(h, l, peer, c->lcl_source_held, 0);
		return;
	}
	s->s_home = h;
	s->s_listener = l;
	s->s_metrics = ms;
	s->s_source_held = (uint8_t)c->lcl_source_held;
	metrics_add(&ms->ms_sessions, 1);
	s->s_conf = conf_listen_ref(lc);
	s->s_id = session_id_next();
	s->s_state = SESSION_CONNECTING;
	s->s_cfd = c->lcl_fd;
	s->s_ufd = -1;
	s->s_client = *peer;
	s->s_local = c->lcl_local;
	clock_gettime(CLOCK_MONOTONIC, &s->s_start);
	LIST_INSERT_HEAD(&h->sh_sessions, s, s_entry);
	/* TCP_NODELAY: inherited from the listening socket (listener.c). */
	if (log_debugging()) {
		char	client[ADDR_STRLEN];

		log_debug("listen %s: session %016llx from %s on worker %zu",
		    lc->lc_name, (unsigned long long)s->s_id,
		    addr_format((const struct sockaddr *)peer, client,
		    sizeof(client)), h->sh_index);
	}
	upstream_attempt_start(&s->s_attempt, lc, first_upstream, s->s_id,
	    h->sh_base, h->sh_gate, ms, session_connected, s);
}

/* upstream.c's completion: the upstream is connected (fd), or none is. */
static void
session_connected(void *arg, int fd, int err, const char *reason)
{
	struct session	*s = arg;

	(void)err;
	assert(s->s_state == SESSION_CONNECTING);
	if (fd == -1) {
		session_close(s, METRICS_END_NO_UPSTREAM, "%s", reason);
		return;
	}
	/* The attempt is over: its memory becomes the flows'. */
	s->s_upaddr = s->s_attempt.ua_addr;
	s->s_ufd = fd;
	session_relay(s);
}

static void
flow_init(struct flow *f, struct session *s, int from, int to)
{
	struct event_base	*base = s->s_home->sh_base;

	memset(f, 0, sizeof(*f));
	f->f_sess = s;
	f->f_from = from;
	f->f_to = to;
	splice_pipe_init(&f->f_pipe);
	event_assign(&f->f_rev, base, from, EV_READ | EV_PERSIST, flow_event,
	    f);
	event_assign(&f->f_wev, base, to, EV_WRITE | EV_PERSIST, flow_event,
	    f);
}

/*
 * The PROXY header for this session into buf: its length, or 0 when the
 * session has ended (*rc is then -1).
 */
static size_t
session_proxyhdr(struct session *s, char *buf, int *rc)
{
	struct listen_conf	*lc = s->s_conf;
	char			 id[17];
	struct proxyhdr_tlvs	 tlvs;
	struct sockaddr_in6	 local;
	socklen_t		 len = sizeof(local);
	size_t			 n;

	*rc = -1;
	/*
	 * The address the client connected to, not the upstream's: the
	 * listener's own, unless it is bound to a wildcard address.
	 */
	if (s->s_local != NULL)
		local = *s->s_local;
	else if (getsockname(s->s_cfd, (struct sockaddr *)&local,
	    &len) == -1) {
		flow_error(&s->s_c2u, s->s_cfd, "getsockname", errno);
		return 0;
	}
	if (lc->lc_proxy == PROXYHDR_V1)
		n = proxyhdr_v1((struct sockaddr *)&s->s_client,
		    (struct sockaddr *)&local, buf, PROXYHDR_MAX);
	else {
		tlvs.pt_mask = lc->lc_proxy_tlvs;
		tlvs.pt_unique_id = id;
		tlvs.pt_unique_id_len = 0;
		if (tlvs.pt_mask & PROXYHDR_TLV_UNIQUE_ID)
			tlvs.pt_unique_id_len = (size_t)snprintf(id, sizeof(id),
			    "%016llx", (unsigned long long)s->s_id);
		n = proxyhdr_v2((struct sockaddr *)&s->s_client,
		    (struct sockaddr *)&local, &tlvs, (uint8_t *)buf,
		    PROXYHDR_MAX);
	}
	if (n == 0) {
		session_close(s, METRICS_END_ERROR,
		    "cannot encode the PROXY header");
		return 0;
	}
	s->s_hdrlen = (uint16_t)n;
	return n;
}

/*
 * The first bytes up: what the client sent while the upstream connected,
 * behind the PROXY header when there is one, in one write.  Most clients
 * speak first, so this read saves the loop a turn; what it did not take,
 * or what comes later, the read event reports.  Returns 0, or -1 when the
 * session ended.
 */
static int
session_first(struct session *s)
{
	struct flow	*f = &s->s_c2u;
	char		*buf = s->s_home->sh_scratch;
	size_t		 n = 0;
	ssize_t		 r;
	int		 rc;

	if (s->s_conf->lc_proxy != PROXYHDR_OFF &&
	    (n = session_proxyhdr(s, buf, &rc)) == 0)
		return rc;
	r = recv(s->s_cfd, buf + n, SESSION_SCRATCH - n, 0);
	if (r > 0)
		n += (size_t)r;
	else if (r == 0)
		f->f_eof = 1;
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return flow_error(f, s->s_cfd, "read", errno);
	if (n > 0 && flow_write(f, buf, n) == -1)
		return -1;
	if (f->f_eof)
		return flow_pump(f);	/* passes the FIN on, arms */
	flow_count(f);
	flow_arm(f);
	return 0;
}

/*
 * The session's one timer, for two jobs.  The idle timeout: idle time is
 * measured to the nanosecond and the timer waits the exact rest.  And the
 * upstream's keepalive, which is set only once the session has lived a
 * quarter of keepalive: most sessions are short and never need it, and it
 * costs five system calls (the client's socket inherits its options from
 * the listener for free).  A vanished upstream is still found within
 * about 2.25 times keepalive.
 */
static int64_t
session_keepalive_due(const struct session *s)
{
	int64_t	k = (int64_t)s->s_conf->lc_keepalive * 1000000000 / 4;

	return (int64_t)s->s_start.tv_sec * 1000000000 + s->s_start.tv_nsec +
	    (k < 1000000000 ? 1000000000 : k);
}

/* Arm the timer for whatever is due next, if anything is. */
static void
session_tick_arm(struct session *s, int64_t now)
{
	int64_t		next = INT64_MAX, t;
	struct timeval	tv;

	if (s->s_kapending)
		next = session_keepalive_due(s);
	if (s->s_conf->lc_idle_timeout > 0 && (t = s->s_last +
	    (int64_t)s->s_conf->lc_idle_timeout * 1000000000) < next)
		next = t;
	if (next == INT64_MAX)
		return;
	t = next - now;
	if (t < 0)
		t = 0;
	tv.tv_sec = (time_t)(t / 1000000000);
	tv.tv_usec = (suseconds_t)(t % 1000000000 / 1000 + 1);
	evtimer_add(&s->s_timer, &tv);
}

static void
session_tick(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	int64_t		 now = session_now();

	(void)fd;
	(void)what;
	if (s->s_kapending && now >= session_keepalive_due(s)) {
		if (tcp_keepalive(s->s_ufd, s->s_conf->lc_keepalive) == -1)
			log_debug("listen %s: session %016llx: upstream "
			    "keepalive: %s", s->s_conf->lc_name,
			    (unsigned long long)s->s_id, log_errstr(errno));
		s->s_kapending = 0;
	}
	if (s->s_conf->lc_idle_timeout > 0 && now - s->s_last >=
	    (int64_t)s->s_conf->lc_idle_timeout * 1000000000) {
		session_close(s, METRICS_END_IDLE_TIMEOUT, "idle timeout");
		return;
	}
	session_tick_arm(s, now);
}

static void
session_relay(struct session *s)
{
	s->s_state = SESSION_RELAYING;
	flow_init(&s->s_c2u, s, s->s_cfd, s->s_ufd);
	flow_init(&s->s_u2c, s, s->s_ufd, s->s_cfd);
	s->s_kapending = s->s_conf->lc_keepalive > 0;
	if (s->s_kapending || s->s_conf->lc_idle_timeout > 0) {
		s->s_last = session_now();
		evtimer_assign(&s->s_timer, s->s_home->sh_base, session_tick,
		    s);
		s->s_ticking = 1;
		session_tick_arm(s, s->s_last);
	}
	flow_arm(&s->s_u2c);
	session_first(s);
}

static const char *
flow_side(const struct flow *f, int fd)
{
	return fd == f->f_sess->s_cfd ? "client" : "upstream";
}

/*
 * An I/O error on fd ends the session; a reset is passed on as a reset.
 * Returns -1: the session has ended.
 */
static int
flow_error(struct flow *f, int fd, const char *op, int err)
{
	int	client = fd == f->f_sess->s_cfd;

	if (err == ECONNRESET || err == EPIPE)
		session_close(f->f_sess, client ? METRICS_END_CLIENT_RESET :
		    METRICS_END_UPSTREAM_RESET, "%s reset", flow_side(f, fd));
	else if (err == ETIMEDOUT)	/* keepalive, or the user timeout */
		session_close(f->f_sess, client ? METRICS_END_CLIENT_RESET :
		    METRICS_END_UPSTREAM_RESET, "%s gone (keepalive)",
		    flow_side(f, fd));
	else
		session_close(f->f_sess, METRICS_END_ERROR, "%s: %s: %s",
		    flow_side(f, fd), op, log_errstr(err));
	return -1;
}

static void
flow_arm(struct flow *f)
{
	int	pending = f->f_len > 0 || f->f_pipe.sp_len > 0;
	int	rwant = !f->f_eof && !pending;

	if (rwant != f->f_rarmed) {
		if (rwant)
			event_add(&f->f_rev, NULL);
		else
			event_del(&f->f_rev);
		f->f_rarmed = (uint8_t)rwant;
	}
	if (pending != f->f_warmed) {
		if (pending)
			event_add(&f->f_wev, NULL);
		else
			event_del(&f->f_wev);
		f->f_warmed = (uint8_t)pending;
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
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return flow_error(f, f->f_to, "write", errno);
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
		session_close(f->f_sess, METRICS_END_ERROR, "out of memory");
		return -1;
	}
	memcpy(f->f_buf, buf + n, len - (size_t)n);
	f->f_off = 0;
	f->f_len = (uint32_t)(len - (size_t)n);
	return 0;
}

/*
 * Pass on what the destination did not take before: the pipe's bytes or
 * the kept buffer.  Returns 0, or -1 when the session has ended.
 */
static int
flow_flush(struct flow *f)
{
	if (f->f_pipe.sp_len > 0 &&
	    splice_flush(&f->f_pipe, f->f_to, &f->f_bytes) == SPLICE_ERR_TO)
		return flow_error(f, f->f_to, "write", errno);
	if (f->f_len > 0) {
		if (flow_write(f, f->f_buf + f->f_off, f->f_len) == -1)
			return -1;
		if (f->f_len == 0) {
			free(f->f_buf);
			f->f_buf = NULL;
		}
	}
	return 0;
}

/*
 * A bulk direction asks for a pipe: 0 when it has one, -1 when the budget
 * has no room for one or none can be had (then it copies for good).
 */
static int
flow_pipe(struct flow *f)
{
	struct admit_gate	*g = f->f_sess->s_home->sh_gate;

	f->f_nopipe = 1;
	if (!admit_pipe_take(g))
		return -1;
	if (splice_start(&f->f_pipe) == -1) {
		admit_pipe_give(g);
		return -1;
	}
	f->f_nopipe = 0;
	return 0;
}

/*
 * The copying path: read into the worker's scratch buffer and write
 * straight on; only what the destination does not take is kept.  A read
 * that fills the whole buffer means bulk: the direction takes a pipe
 * (when splice is on and one can be had) and moves on with splice.c.
 * Returns 0, or -1 when the session has ended.
 */
static int
flow_copy(struct flow *f)
{
	char	*scratch = f->f_sess->s_home->sh_scratch;
	ssize_t	 n;
	int	 i;

	for (i = 0; i < FLOW_READS; i++) {
		n = recv(f->f_from, scratch, SESSION_SCRATCH, 0);
		if (n == 0) {
			f->f_eof = 1;
			return 0;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return flow_error(f, f->f_from, "read", errno);
		}
		if (flow_write(f, scratch, (size_t)n) == -1)
			return -1;
		if (f->f_len > 0 || n < SESSION_SCRATCH)
			return 0;
		if (f->f_sess->s_home->sh_splice && !f->f_nopipe &&
		    flow_pipe(f) == 0)
			return 0;	/* bulk: zero-copy from now */
	}
	return 0;
}

/* The splice path (splice.c).  Returns 0, or -1 when the session ended. */
static int
flow_splice(struct flow *f)
{
	switch (splice_pump(&f->f_pipe, f->f_from, f->f_to, FLOW_READS,
	    &f->f_bytes)) {
	case SPLICE_AGAIN:
		return 0;
	case SPLICE_EOF:
		f->f_eof = 1;
		return 0;
	case SPLICE_ERR_FROM:
		return flow_error(f, f->f_from, "read", errno);
	case SPLICE_ERR_TO:
		return flow_error(f, f->f_to, "write", errno);
	}
	return 0;
}

/*
 * Bring the metrics up to the bytes delivered (the PROXY header is not
 * counted): one store into this worker's own slot per pump.
 */
static void
flow_count(struct flow *f)
{
	struct session	*s = f->f_sess;
	uint64_t	 total = f->f_bytes;

	if (f == &s->s_c2u)
		total = total > s->s_hdrlen ? total - s->s_hdrlen : 0;
	if (total == f->f_counted)
		return;
	metrics_add(f == &s->s_c2u ? &s->s_metrics->ms_up :
	    &s->s_metrics->ms_down, total - f->f_counted);
	f->f_counted = total;
}

/*
 * Move bytes from f_from to f_to: first what is kept, then fresh bytes
 * along the direction's path (copy or splice).  On EOF with nothing kept,
 * pass the FIN on; when both directions have, the session is done.
 * Returns 0, or -1 when the session has ended.
 */
static int
flow_pump(struct flow *f)
{
	struct session	*s = f->f_sess;
	int		 rc;

	if (flow_flush(f) == -1)
		return -1;
	if (f->f_len == 0 && f->f_pipe.sp_len == 0 && !f->f_eof) {
		rc = splice_pipe_open(&f->f_pipe) ? flow_splice(f) :
		    flow_copy(f);
		if (rc == -1)
			return -1;
	}
	flow_count(f);
	if (s->s_conf->lc_idle_timeout > 0)
		s->s_last = session_now();
	if (f->f_eof && f->f_len == 0 && f->f_pipe.sp_len == 0 &&
	    !f->f_shut) {
		/*
		 * The last FIN: both directions are done, and closing f_to
		 * sends its FIN (its own side is at EOF already, so nothing
		 * unread can turn the close into a reset).
		 */
		if (f == &s->s_c2u ? s->s_u2c.f_shut : s->s_c2u.f_shut) {
			session_close(s, METRICS_END_DONE, "done");
			return -1;
		}
		/* Half-close: pass the FIN on, keep the other way going. */
		if (shutdown(f->f_to, SHUT_WR) == -1 && errno != ENOTCONN)
			return flow_error(f, f->f_to, "shutdown", errno);
		f->f_shut = 1;
	}
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
	if (splice_pipe_open(&f->f_pipe)) {
		splice_stop(&f->f_pipe);
		admit_pipe_give(f->f_sess->s_home->sh_gate);
	}
}

/* Microseconds since the session started. */
static uint64_t
session_age(const struct session *s)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)((int64_t)(now.tv_sec - s->s_start.tv_sec) * 1000000 +
	    (now.tv_nsec - s->s_start.tv_nsec) / 1000);
}

/* SIGUSR1: one line for an open session, at notice. */
void
session_report(const struct session *s)
{
	char		client[ADDR_STRLEN], up[ADDR_STRLEN];
	uint64_t	age = session_age(s);
	int		relaying = s->s_state == SESSION_RELAYING;

	if (relaying)
		addr_format((const struct sockaddr *)&s->s_upaddr, up,
		    sizeof(up));
	else
		strcpy(up, "-");
	log_notice("listen %s: session %016llx %s -> %s open for %llu.%03llus, "
	    "%llu bytes up, %llu bytes down (%s)", s->s_conf->lc_name,
	    (unsigned long long)s->s_id, addr_format((const struct sockaddr *)
	    &s->s_client, client, sizeof(client)), up,
	    (unsigned long long)(age / 1000000),
	    (unsigned long long)(age / 1000 % 1000),
	    (unsigned long long)(relaying ? s->s_c2u.f_counted : 0),
	    (unsigned long long)(relaying ? s->s_u2c.f_counted : 0),
	    relaying ? "relaying" : "connecting");
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

/*
 * The one close path: stop the session's events, release both sockets
 * (as resets after a reset or an error, so the peer learns fast), count
 * and log the session's end, tell the home, free.  Afterwards s is gone.
 */
void
session_close(struct session *s, enum metrics_end why, const char *fmt, ...)
{
	struct session_home	*h = s->s_home;
	char			 reason[SESSION_REASONMAX];
	char			 client[ADDR_STRLEN], up[ADDR_STRLEN];
	va_list			 ap;
	uint64_t		 bup = 0, bdown = 0, usecs;
	int			 relayed = s->s_state == SESSION_RELAYING;
	int			 pri = relayed ? LOG_INFO : LOG_WARNING;
	int			 abort = why == METRICS_END_CLIENT_RESET ||
				    why == METRICS_END_UPSTREAM_RESET ||
				    why == METRICS_END_ERROR;

	assert(s->s_state != SESSION_CLOSED);
	if (relayed) {
		flow_count(&s->s_c2u);
		flow_count(&s->s_u2c);
		flow_clear(&s->s_c2u);
		flow_clear(&s->s_u2c);
		if (s->s_ticking)
			event_del(&s->s_timer);
		bup = s->s_c2u.f_counted;
		bdown = s->s_u2c.f_counted;
	} else
		upstream_attempt_cancel(&s->s_attempt);
	s->s_state = SESSION_CLOSED;
	session_closefd(s->s_cfd, abort);
	session_closefd(s->s_ufd, abort);

	usecs = session_age(s);
	metrics_ended(s->s_metrics, why, usecs);
	if (log_enabled(pri)) {	/* below log-level: nothing to format */
		va_start(ap, fmt);
		vsnprintf(reason, sizeof(reason), fmt, ap);
		va_end(ap);
		if (relayed)
			addr_format((struct sockaddr *)&s->s_upaddr, up,
			    sizeof(up));
		else
			strcpy(up, "-");
		log_at(pri, "listen %s: session %016llx %s -> %s ended after "
		    "%llu.%03llus, %llu bytes up, %llu bytes down: %s",
		    s->s_conf->lc_name, (unsigned long long)s->s_id,
		    addr_format((struct sockaddr *)&s->s_client, client,
		    sizeof(client)), up, (unsigned long long)(usecs / 1000000),
		    (unsigned long long)(usecs / 1000 % 1000),
		    (unsigned long long)bup, (unsigned long long)bdown, reason);
	}

	LIST_REMOVE(s, s_entry);
	conf_listen_unref(s->s_conf);
	h->sh_ended(h, s->s_listener, &s->s_client, s->s_source_held, relayed);
	free(s);
}
