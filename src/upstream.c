/*
 * upstream.c: choosing and connecting the IPv4 side of a session: the
 * resolver, the walk over the upstreams, and the attempt that connects.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "addr.h"
#include "admit.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "upstream.h"

/* How soon a connect that found no descriptor tries again. */
#define UPSTREAM_FD_RETRY_MS	100

static void	upstream_attempt_next(void *);
static void	upstream_connected(evutil_socket_t, short, void *);
static void	upstream_retry(evutil_socket_t, short, void *);

void
upstream_resolver_init(struct upstream_resolver *ur, struct event_base *base)
{
	ur->ur_base = base;
	ur->ur_dns = NULL;
	ur->ur_failed = 0;
}

void
upstream_resolver_free(struct upstream_resolver *ur)
{
	if (ur->ur_dns != NULL)
		evdns_base_free(ur->ur_dns, 0);
	ur->ur_dns = NULL;
}

/* The resolver, created on first use; NULL when it cannot be (said once). */
static struct evdns_base *
upstream_resolver_get(struct upstream_resolver *ur)
{
	int	rc;

	if (ur->ur_dns != NULL || ur->ur_failed)
		return ur->ur_dns;
	if ((ur->ur_dns = evdns_base_new(ur->ur_base, 0)) == NULL) {
		log_warnx("cannot create a DNS resolver: host-name upstreams "
		    "cannot be resolved");
		ur->ur_failed = 1;
		return NULL;
	}
	rc = evdns_base_resolv_conf_parse(ur->ur_dns, DNS_OPTIONS_ALL,
	    "/etc/resolv.conf");
	if (rc != 0)
		log_warnx("/etc/resolv.conf: cannot use it (error %d): host "
		    "names resolve from /etc/hosts only", rc);
	if (evdns_base_load_hosts(ur->ur_dns, NULL) != 0)
		log_debug("/etc/hosts: cannot load it");
	return ur->ur_dns;
}

static void
upstream_iter_init(struct upstream_iter *ui, const struct listen_conf *lc,
    size_t start, struct upstream_resolver *res, void (*cb)(void *),
    void *arg)
{
	memset(ui, 0, sizeof(*ui));
	ui->ui_lc = lc;
	ui->ui_res = res;
	ui->ui_start = start % lc->lc_nupstreams;
	ui->ui_cb = cb;
	ui->ui_arg = arg;
}

static void
upstream_iter_clear(struct upstream_iter *ui)
{
	if (ui->ui_req != NULL) {
		evdns_getaddrinfo_cancel(ui->ui_req);
		ui->ui_req = NULL;
	}
	if (ui->ui_ai != NULL) {
		evutil_freeaddrinfo(ui->ui_ai);
		ui->ui_ai = NULL;
	}
	ui->ui_cur = NULL;
}

static void
upstream_resolved(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct upstream_iter	*ui = arg;

	if (result == EVUTIL_EAI_CANCEL)
		return;			/* the session is gone */
	ui->ui_req = NULL;
	ui->ui_resolved = 1;
	if (result != 0)
		ui->ui_dnserr = result;
	ui->ui_ai = ui->ui_cur = (result == 0) ? ai : NULL;
	if (!ui->ui_resolving)
		ui->ui_cb(ui->ui_arg);
}

/*
 * The next address to try, in out.  UPSTREAM_WAIT means a name is being
 * resolved and the iterator's callback will be called when it is; then
 * call upstream_next() again.
 */
static enum upstream_step
upstream_next(struct upstream_iter *ui, struct sockaddr_in *out)
{
	const struct listen_conf	*lc = ui->ui_lc;
	const struct addr_upstream	*au;
	struct evutil_addrinfo		 hints;
	struct evdns_base		*dns;

	for (; ui->ui_done < lc->lc_nupstreams; ui->ui_done++) {
		au = &lc->lc_upstreams[(ui->ui_start + ui->ui_done) %
		    lc->lc_nupstreams];
		if (au->au_host[0] == '\0') {
			if (ui->ui_resolved)	/* the literal was tried */
				goto next;
			ui->ui_resolved = 1;
			*out = au->au_sin;
			return UPSTREAM_TRY;
		}
		if (ui->ui_req != NULL)
			return UPSTREAM_WAIT;
		if (!ui->ui_resolved) {
			memset(&hints, 0, sizeof(hints));
			hints.ai_family = AF_INET;
			hints.ai_socktype = SOCK_STREAM;
			hints.ai_protocol = IPPROTO_TCP;
			if ((dns = upstream_resolver_get(ui->ui_res)) == NULL) {
				ui->ui_dnserr = EVUTIL_EAI_FAIL;
				goto next;
			}
			ui->ui_resolving = 1;
			ui->ui_req = evdns_getaddrinfo(dns, au->au_host, NULL,
			    &hints, upstream_resolved, ui);
			ui->ui_resolving = 0;
			if (!ui->ui_resolved)
				return UPSTREAM_WAIT;
		}
		while (ui->ui_cur != NULL) {
			struct evutil_addrinfo *ai = ui->ui_cur;

			ui->ui_cur = ai->ai_next;
			if (ai->ai_family != AF_INET ||
			    ai->ai_addrlen < sizeof(*out))
				continue;
			memcpy(out, ai->ai_addr, sizeof(*out));
			out->sin_port = au->au_sin.sin_port;
			return UPSTREAM_TRY;
		}
 next:
		upstream_iter_clear(ui);
		ui->ui_resolved = 0;
	}
	return UPSTREAM_END;
}

/*
 * Walk the upstreams from start, connecting to one address at a time;
 * done is called once, when one connected or none could be.
 */
void
upstream_attempt_start(struct upstream_attempt *ua,
    const struct listen_conf *lc, size_t start, uint64_t id,
    struct event_base *base, struct upstream_resolver *res,
    struct admit_gate *gate, struct metrics_slot *ms, upstream_done_fn *done,
    void *arg)
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
	upstream_iter_init(&ua->ua_it, lc, start, res, upstream_attempt_next,
	    ua);
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

	if (ua->ua_it.ui_dnserr != 0)
		metrics_add(&ua->ua_metrics->ms_upfail[METRICS_UPFAIL_DNS], 1);
	if (err == 0 && ua->ua_it.ui_dnserr != 0)
		snprintf(reason, sizeof(reason), "no upstream reachable "
		    "(cannot resolve: %s)",
		    evutil_gai_strerror(ua->ua_it.ui_dnserr));
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
		event_assign(&ua->ua_ev, ua->ua_base, ua->ua_fd, EV_WRITE,
		    upstream_connected, ua);
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
		case UPSTREAM_WAIT:
			return;
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

static void
upstream_connected(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_attempt	*ua = arg;
	socklen_t		 len = sizeof(int);
	int			 err = 0;

	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
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
