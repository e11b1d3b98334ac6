/*
 * stats.c: GET /metrics in the Prometheus text format; every other path
 * is 404, every other method 405, a malformed request 400 (evhttp's own
 * parser), and a client that does not finish its request in time is
 * dropped.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "addr.h"
#include "log.h"
#include "stats.h"

/* Seconds a scraper has to send its request (and to read the reply). */
#define STATS_TIMEOUT		5
#define STATS_MAX_HEADERS	8192
/* How long accepting pauses when descriptors run out. */
#define STATS_PAUSE_SEC		1

struct stats {
	int			 st_fd;		/* until stats_start() */
	struct evhttp		*st_http;
	struct evconnlistener	*st_listener;
	struct event		*st_resume;
	int			 st_bound_http;	/* evhttp owns st_listener */
	struct sockaddr_storage	 st_conf;	/* as configured */
	socklen_t		 st_conflen;
	struct sockaddr_storage	 st_bound;	/* as bound (the real port) */
	stats_render_fn		*st_render;
	void			*st_arg;
};

static void
stats_request(struct evhttp_request *req, void *arg)
{
	struct stats		*st = arg;
	struct evbuffer		*b;
	const char		*path;

	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		if ((b = evbuffer_new()) != NULL)
			evbuffer_add_printf(b, "not found: relay64 serves "
			    "/metrics\n");
		evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", b);
		if (b != NULL)
			evbuffer_free(b);
		return;
	}
	if ((b = evbuffer_new()) == NULL || st->st_render(st->st_arg, b) == -1) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		if (b != NULL)
			evbuffer_free(b);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

static void
stats_resume(evutil_socket_t fd, short what, void *arg)
{
	struct stats	*st = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(st->st_listener);
}

/* accept() failed: out of descriptors is a pause, not a busy loop. */
static void
stats_accept_error(struct evconnlistener *l, void *arg)
{
	struct stats	*st = arg;
	struct timeval	 tv = { STATS_PAUSE_SEC, 0 };
	int		 err = EVUTIL_SOCKET_ERROR();

	(void)l;
	log_warnx("stats: accept: %s; pausing for %d s", log_errstr(err),
	    STATS_PAUSE_SEC);
	evconnlistener_disable(st->st_listener);
	evtimer_add(st->st_resume, &tv);
}

/*
 * Bind sa now (at start while still privileged; at a reload before
 * anything changes).  NULL with err set when it cannot be.
 */
struct stats *
stats_open(const struct sockaddr *sa, socklen_t len, char *err, size_t errlen)
{
	struct stats	*st;
	char		 buf[ADDR_STRLEN];
	socklen_t	 blen;
	int		 on = 1;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "stats: out of memory");
		return NULL;
	}
	st->st_fd = -1;
	memcpy(&st->st_conf, sa, len);
	st->st_conflen = len;
	addr_format(sa, buf, sizeof(buf));
	st->st_fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (st->st_fd == -1 || setsockopt(st->st_fd, SOL_SOCKET, SO_REUSEADDR,
	    &on, sizeof(on)) == -1 || (sa->sa_family == AF_INET6 &&
	    setsockopt(st->st_fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
	    sizeof(on)) == -1) || bind(st->st_fd, sa, len) == -1 ||
	    listen(st->st_fd, 64) == -1) {
		snprintf(err, errlen, "stats: bind %s: %s", buf,
		    log_errstr(errno));
		stats_free(st);
		return NULL;
	}
	blen = sizeof(st->st_bound);
	if (getsockname(st->st_fd, (struct sockaddr *)&st->st_bound,
	    &blen) == -1)
		memcpy(&st->st_bound, sa, len);
	return st;
}

/* Serve /metrics on base from now on; each scrape calls render(arg, b). */
int
stats_start(struct stats *st, struct event_base *base,
    stats_render_fn *render, void *arg, char *err, size_t errlen)
{
	char	buf[ADDR_STRLEN];

	st->st_render = render;
	st->st_arg = arg;
	if ((st->st_http = evhttp_new(base)) == NULL ||
	    (st->st_resume = evtimer_new(base, stats_resume, st)) == NULL ||
	    (st->st_listener = evconnlistener_new(base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
	    st->st_fd)) == NULL)
		goto fail;
	st->st_fd = -1;		/* the listener's now */
	evconnlistener_set_error_cb(st->st_listener, stats_accept_error);
	evhttp_set_timeout(st->st_http, STATS_TIMEOUT);
	evhttp_set_max_headers_size(st->st_http, STATS_MAX_HEADERS);
	evhttp_set_max_body_size(st->st_http, 0);
	evhttp_set_allowed_methods(st->st_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_HEAD);
	evhttp_set_gencb(st->st_http, stats_request, st);
	if (evhttp_bind_listener(st->st_http, st->st_listener) == NULL)
		goto fail;
	st->st_bound_http = 1;
	return 0;
 fail:
	snprintf(err, errlen, "stats: %s: cannot serve HTTP",
	    stats_addr(st, buf, sizeof(buf)));
	return -1;
}

/* Is the running endpoint the one configured as sa? */
int
stats_same(const struct stats *st, const struct sockaddr *sa, socklen_t len)
{
	return st->st_conflen == len && memcmp(&st->st_conf, sa, len) == 0;
}

const char *
stats_addr(const struct stats *st, char *buf, size_t len)
{
	return addr_format((const struct sockaddr *)&st->st_bound, buf, len);
}

void
stats_free(struct stats *st)
{
	if (st == NULL)
		return;
	/* evhttp_free() frees a bound listener (and closes its socket). */
	if (!st->st_bound_http && st->st_listener != NULL)
		evconnlistener_free(st->st_listener);
	if (st->st_http != NULL)
		evhttp_free(st->st_http);
	if (st->st_fd != -1)
		close(st->st_fd);
	if (st->st_resume != NULL)
		event_free(st->st_resume);
	free(st);
}
