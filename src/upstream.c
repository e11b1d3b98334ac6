/*
 * upstream.c: choosing and connecting the IPv4 side of a session: the
 * walk over the upstreams' addresses, and the attempt that connects.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "addr.h"
#include "admit.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "resolve.h"
#include "upstream.h"

/* How soon a connect that found no descriptor tries again. */
#define UPSTREAM_FD_RETRY_MS	100

static void	upstream_attempt_next(void *);
static void	upstream_connected(evutil_socket_t, short, void *);
static void	upstream_retry(evutil_socket_t, short, void *);

enum upstream_step {
	UPSTREAM_TRY,		/* an address to connect to */
	UPSTREAM_END,		/* every address was tried */
};

/*
 * The addresses entry au has now: a literal one, a name those of its
 * current answer, which *ans then holds (the caller releases it).
 */
static size_t
upstream_entry_take(const struct addr_upstream *au,
    struct resolve_answer **ans)
{
	*ans = NULL;
	if (au->au_host[0] == '\0')
		return 1;
	if (au->au_name == NULL)	/* never linked: nothing known */
		return 0;
	*ans = resolve_take(au->au_name);
	return (*ans)->ra_n;
}

/*
 * A walk from the start'th address, counting every address of every
 * entry (roundrobin's cursor counts addresses, so the sessions spread
 * over all the addresses of a name).  The answers may change between
 * counting and walking: then the walk starts elsewhere, and still tries
 * each address once.
 */
static void
upstream_iter_init(struct upstream_iter *ui, const struct listen_conf *lc,
    size_t start)
{
	struct resolve_answer	*ans;
	size_t			 i, n, total = 0;

	memset(ui, 0, sizeof(*ui));
	ui->ui_lc = lc;
	ui->ui_dnserr = RESOLVE_OK;
	if (start == 0)
		return;
	for (i = 0; i < lc->lc_nupstreams; i++) {
		total += upstream_entry_take(&lc->lc_upstreams[i], &ans);
		if (ans != NULL)
			resolve_release(ans);
	}
	if (total == 0)
		return;
	start %= total;
	for (i = 0; i < lc->lc_nupstreams; i++) {
		n = upstream_entry_take(&lc->lc_upstreams[i], &ans);
		if (start < n) {
			ui->ui_start = i;
			ui->ui_skip = start;
			ui->ui_first = start > 0 ? ans : NULL;
			if (start == 0 && ans != NULL)
				resolve_release(ans);
			return;
		}
		start -= n;
		if (ans != NULL)
			resolve_release(ans);
	}
}

static void
upstream_iter_close(struct upstream_iter *ui)
{
	if (ui->ui_ans != NULL)
		resolve_release(ui->ui_ans);
	ui->ui_ans = NULL;
	ui->ui_cur = NULL;
	ui->ui_open = 0;
}

static void
upstream_iter_clear(struct upstream_iter *ui)
{
	upstream_iter_close(ui);
	if (ui->ui_first != NULL)
		resolve_release(ui->ui_first);
	ui->ui_first = NULL;
}

/*
 * Enter segment ui_seg: the addresses of one entry, from its current
 * answer (for the start entry, the one counted: first the addresses from
 * ui_skip on, at the very end those before it).
 */
static void
upstream_iter_open(struct upstream_iter *ui)
{
	const struct listen_conf	*lc = ui->ui_lc;
	const struct addr_upstream	*au;
	size_t				 n = lc->lc_nupstreams;

	au = &lc->lc_upstreams[(ui->ui_start + ui->ui_seg) % n];
	ui->ui_open = 1;
	ui->ui_pos = 0;
	if (ui->ui_first != NULL && (ui->ui_seg == 0 || ui->ui_seg == n)) {
		ui->ui_cur = ui->ui_first;
		ui->ui_pos = ui->ui_seg == 0 ? ui->ui_skip : 0;
		ui->ui_end = ui->ui_seg == 0 ? ui->ui_first->ra_n :
		    ui->ui_skip;
		return;
	}
	ui->ui_end = upstream_entry_take(au, &ui->ui_ans);
	ui->ui_cur = ui->ui_ans;
	if (ui->ui_end == 0) {
		ui->ui_dnserr = ui->ui_ans != NULL ? ui->ui_ans->ra_err :
		    RESOLVE_PENDING;
		ui->ui_dnshost = au->au_host;
	}
}

/* The next address to try, in out; never waits (answers are at hand). */
static enum upstream_step
upstream_next(struct upstream_iter *ui, struct sockaddr_in *out)
{
	const struct listen_conf	*lc = ui->ui_lc;
	const struct addr_upstream	*au;
	size_t				 nseg = lc->lc_nupstreams +
					    (ui->ui_first != NULL);

	for (; ui->ui_seg < nseg; ui->ui_seg++) {
		if (!ui->ui_open)
			upstream_iter_open(ui);
		if (ui->ui_pos < ui->ui_end) {
			au = &lc->lc_upstreams[(ui->ui_start + ui->ui_seg) %
			    lc->lc_nupstreams];
			*out = au->au_sin;	/* a literal; the port always */
			if (ui->ui_cur != NULL)
				out->sin_addr = ui->ui_cur->ra_addr[ui->ui_pos];
			ui->ui_pos++;
			return UPSTREAM_TRY;
		}
		upstream_iter_close(ui);
	}
	return UPSTREAM_END;
}

/*
 * Walk the addresses from the start'th, connecting to one at a time;
 * done is called once, when one connected or none could be.
 */
void
upstream_attempt_start(struct upstream_attempt *ua,
    const struct listen_conf *lc, size_t start, uint64_t id,
    struct event_base *base, struct admit_gate *gate, struct metrics_slot *ms,
    upstream_done_fn *done, void *arg)
{
	ua->ua_lc = lc;
	ua->ua_id = id;
	ua->ua_base = base;
	ua->ua_gate = gate;
	ua->ua_metrics = ms;
	ua->ua_fd = -1;
	ua->ua_lasterr = 0;
	memset(&ua->ua_addr, 0, sizeof(ua->ua_addr));
	memset(&ua->ua_ev, 0, sizeof(ua->ua_ev));
	ua->ua_done = done;
	ua->ua_arg = arg;
	upstream_iter_init(&ua->ua_it, lc, start);
	upstream_attempt_next(ua);
}

/* The session ends while connecting: stop everything under way. */
void
upstream_attempt_cancel(struct upstream_attempt *ua)
{
	upstream_iter_clear(&ua->ua_it);
	if (event_initialized(&ua->ua_ev))
		event_del(&ua->ua_ev);
	if (ua->ua_fd != -1) {
		close(ua->ua_fd);
		ua->ua_fd = -1;
	}
}

static int64_t
upstream_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timeval
upstream_tv(int64_t ns)
{
	struct timeval	tv;

	if (ns < 0)
		ns = 0;
	tv.tv_sec = (time_t)(ns / 1000000000);
	tv.tv_usec = (suseconds_t)(ns % 1000000000 / 1000);
	return tv;
}

/* The attempt's last act: report, after which ua may be reused. */
static void
upstream_attempt_end(struct upstream_attempt *ua, int fd, int err,
    const char *reason)
{
	upstream_done_fn	*done = ua->ua_done;
	void			*arg = ua->ua_arg;

	upstream_iter_clear(&ua->ua_it);
	ua->ua_fd = -1;
	done(arg, fd, err, reason);
}

static void
upstream_attempt_failed(struct upstream_attempt *ua, int err)
{
	char	addr[ADDR_STRLEN];

	ua->ua_lasterr = err;
	metrics_add(&ua->ua_metrics->ms_upfail[metrics_upfail_of(err)], 1);
	log_info("listen %s: session %016llx: upstream %s: %s",
	    ua->ua_lc->lc_name, (unsigned long long)ua->ua_id,
	    addr_format((struct sockaddr *)&ua->ua_addr, addr, sizeof(addr)),
	    err == ETIMEDOUT ? "connect timeout" : log_errstr(err));
}

/* Every upstream was tried: say why none could be reached. */
static void
upstream_attempt_exhausted(struct upstream_attempt *ua)
{
	char	reason[ADDR_HOSTMAX + 128], addr[ADDR_STRLEN];
	int	err = ua->ua_lasterr;

	if (ua->ua_it.ui_dnserr != RESOLVE_OK)
		metrics_add(&ua->ua_metrics->ms_upfail[METRICS_UPFAIL_DNS], 1);
	if (err == 0 && ua->ua_it.ui_dnserr != RESOLVE_OK)
		snprintf(reason, sizeof(reason), "no upstream reachable "
		    "(cannot resolve: %s: %s)", ua->ua_it.ui_dnshost,
		    resolve_strerror(ua->ua_it.ui_dnserr));
	else if (err == 0)
		snprintf(reason, sizeof(reason), "no upstream reachable "
		    "(no IPv4 address)");
	else
		snprintf(reason, sizeof(reason), "no upstream reachable "
		    "(last: %s: %s)", addr_format((struct sockaddr *)
		    &ua->ua_addr, addr, sizeof(addr)), err == ETIMEDOUT ?
		    "connect timeout" : log_errstr(err));
	upstream_attempt_end(ua, -1, err, reason);
}

/*
 * Connect to ua_addr.  Returns 1 when the connect is under way (or waits
 * for a descriptor, or the attempt ended), 0 when the address failed and
 * the next one is to be tried.
 */
static int
upstream_attempt_try(struct upstream_attempt *ua)
{
	const struct listen_conf *lc = ua->ua_lc;
	struct timeval		 tv;
	char			 reason[128];
	int			 err;

	err = upstream_connect(&ua->ua_addr,
	    lc->lc_has_source ? &lc->lc_source : NULL, &ua->ua_fd);
	if (err == 0) {
		tv = upstream_tv(ua->ua_deadline - upstream_now());
		event_assign(&ua->ua_ev, ua->ua_base, ua->ua_fd,
		    EV_READ | EV_WRITE, upstream_connected, ua);
		event_add(&ua->ua_ev, &tv);
		return 1;
	}
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		/* Another cause took the descriptors: wait for one. */
		admit_fd_exhausted(ua->ua_gate);
		if (upstream_now() + (int64_t)UPSTREAM_FD_RETRY_MS * 1000000 <
		    ua->ua_deadline) {
			tv = upstream_tv((int64_t)UPSTREAM_FD_RETRY_MS *
			    1000000);
			evtimer_assign(&ua->ua_ev, ua->ua_base, upstream_retry,
			    ua);
			evtimer_add(&ua->ua_ev, &tv);
			return 1;
		}
		snprintf(reason, sizeof(reason), "cannot connect: %s",
		    log_errstr(err));
		upstream_attempt_end(ua, -1, err, reason);
		return 1;
	}
	upstream_attempt_failed(ua, err);
	return 0;
}

/* Try addresses until one connect is under way, or none is left. */
static void
upstream_attempt_next(void *arg)
{
	struct upstream_attempt	*ua = arg;

	for (;;) {
		switch (upstream_next(&ua->ua_it, &ua->ua_addr)) {
		case UPSTREAM_END:
			upstream_attempt_exhausted(ua);
			return;
		case UPSTREAM_TRY:
			break;
		}
		ua->ua_deadline = upstream_now() +
		    (int64_t)ua->ua_lc->lc_connect_timeout * 1000000000;
		if (upstream_attempt_try(ua))
			return;
	}
}

/* A descriptor may be free again: the same address once more. */
static void
upstream_retry(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_attempt	*ua = arg;

	(void)fd;
	(void)what;
	if (!upstream_attempt_try(ua))
		upstream_attempt_next(ua);
}

/*
 * The connect's outcome.  The event asks for both directions: a connect
 * that failed reports an error, which the loop hands on as readable and
 * writable; one that succeeded is writable only, unless the upstream
 * already sent something (a banner, a FIN), when SO_ERROR has to tell.
 * So the common case, writable alone, costs no getsockopt().
 */
static void
upstream_connected(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_attempt	*ua = arg;
	socklen_t		 len = sizeof(int);
	int			 err = 0;

	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if ((what & EV_READ) &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0) {
		upstream_attempt_end(ua, fd, 0, NULL);
		return;
	}
	upstream_attempt_failed(ua, err);
	close(ua->ua_fd);
	ua->ua_fd = -1;
	upstream_attempt_next(ua);
}

/*
 * Start a non-blocking connect to dst, from src when given (session.c
 * sets its keepalive once the session has lived a while).  Returns 0 and
 * the socket in *fdp (connected or in progress), or an errno value.
 */
int
upstream_connect(const struct sockaddr_in *dst, const struct sockaddr_in *src,
    int *fdp)
{
	int	fd, on = 1, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return errno;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		goto fail;
	if (src != NULL) {
		/* Allow the same source port towards different upstreams. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
		    sizeof(on));
		if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) == -1)
			goto fail;
	}
	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) == -1 &&
	    errno != EINPROGRESS)
		goto fail;
	*fdp = fd;
	return 0;
 fail:
	err = errno;
	close(fd);
	return err;
}
