/*
 * worker.c: one event loop, its listeners and its sessions.
 */
#include "config.h"

#include <sys/random.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "session.h"
#include "worker.h"

/* How long accepting pauses after running out of descriptors. */
#define WORKER_FDPAUSE_SEC	1

static void	worker_resume(evutil_socket_t, short, void *);
static void	worker_drained(evutil_socket_t, short, void *);

struct worker *
worker_new(void)
{
	struct event_config	*cfg;
	struct worker		*w;
	uint32_t		 seed;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("calloc");
	if ((w->w_scratch = malloc(WORKER_SCRATCH)) == NULL)
		fatal("malloc");
	if ((cfg = event_config_new()) == NULL)
		fatalx("event_config_new failed");
	/* One thread per loop: libevent needs no locks. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	if ((w->w_base = event_base_new_with_config(cfg)) == NULL)
		fatalx("cannot create the event loop");
	event_config_free(cfg);
	TAILQ_INIT(&w->w_listeners);
	LIST_INIT(&w->w_sessions);
	evtimer_assign(&w->w_resume, w->w_base, worker_resume, w);
	evtimer_assign(&w->w_drain, w->w_base, worker_drained, w);
	/* Session ids: a random high half, so ids differ across restarts. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint32_t)time(NULL);
	w->w_idbase = (uint64_t)seed << 32;
	return w;
}

void
worker_free(struct worker *w)
{
	struct listener	*l;

	worker_halt(w);
	while ((l = TAILQ_FIRST(&w->w_listeners)) != NULL)
		listener_free(l);
	event_del(&w->w_resume);
	event_del(&w->w_drain);
	if (w->w_dns != NULL)
		evdns_base_free(w->w_dns, 0);
	event_base_free(w->w_base);
	free(w->w_scratch);
	free(w);
}

/* The resolver, created on first use: only host-name upstreams need it. */
struct evdns_base *
worker_dns(struct worker *w)
{
	int	rc;

	if (w->w_dns != NULL)
		return w->w_dns;
	if ((w->w_dns = evdns_base_new(w->w_base, 0)) == NULL)
		fatalx("cannot create the DNS resolver");
	rc = evdns_base_resolv_conf_parse(w->w_dns, DNS_OPTIONS_ALL,
	    "/etc/resolv.conf");
	if (rc != 0)
		log_warnx("/etc/resolv.conf: cannot use it (error %d): host "
		    "names resolve from /etc/hosts only", rc);
	if (evdns_base_load_hosts(w->w_dns, NULL) != 0)
		log_debug("/etc/hosts: cannot load it");
	return w->w_dns;
}

uint64_t
worker_session_id(struct worker *w)
{
	return w->w_idbase | (++w->w_idnext & 0xffffffffu);
}

/* May any listener of this worker accept now? */
int
worker_can_accept(struct worker *w)
{
	if (w->w_stopping || w->w_fdpause)
		return 0;
	return w->w_max_conns == 0 || w->w_nsessions < w->w_max_conns;
}

void
worker_rearm(struct worker *w)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &w->w_listeners, l_entry)
		listener_rearm(l);
}

void
worker_accepted(struct worker *w)
{
	struct listener	*l;

	w->w_nsessions++;
	if (!w->w_once)
		return;
	/* --once: this is the one connection; accept no other. */
	w->w_stopping = 1;
	TAILQ_FOREACH(l, &w->w_listeners, l_entry)
		listener_close(l);
}

/*
 * Out of descriptors (or kernel memory): stop accepting everywhere for a
 * while, keep the sessions we have, and resume by timer.  Without the
 * pause, a level-triggered listener would fire again at once, forever.
 */
void
worker_fd_exhausted(struct worker *w)
{
	struct timeval	tv = { WORKER_FDPAUSE_SEC, 0 };

	if (w->w_fdpause)
		return;
	log_warn("accept paused for %d s with %u sessions open",
	    WORKER_FDPAUSE_SEC, w->w_nsessions);
	w->w_fdpause = 1;
	evtimer_add(&w->w_resume, &tv);
	worker_rearm(w);
}

static void
worker_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	(void)fd;
	(void)what;
	w->w_fdpause = 0;
	worker_rearm(w);
}

void
worker_session_ended(struct worker *w)
{
	w->w_nsessions--;
	if (w->w_stopping) {
		if (w->w_nsessions == 0)
			event_base_loopexit(w->w_base, NULL);
		return;
	}
	worker_rearm(w);
}

/*
 * Stop accepting at once (pending connections are refused), then let open
 * sessions finish for up to w_drain_timeout seconds.
 */
void
worker_stop(struct worker *w)
{
	struct listener	*l;
	struct timeval	 tv = { w->w_drain_timeout, 0 };

	w->w_stopping = 1;
	TAILQ_FOREACH(l, &w->w_listeners, l_entry)
		listener_close(l);
	if (w->w_nsessions == 0) {
		event_base_loopexit(w->w_base, NULL);
		return;
	}
	log_notice("stopping: %u sessions open, draining up to %d s",
	    w->w_nsessions, w->w_drain_timeout);
	evtimer_add(&w->w_drain, &tv);
}

static void
worker_drained(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	(void)fd;
	(void)what;
	log_notice("drain timeout: closing %u sessions", w->w_nsessions);
	worker_halt(w);
}

/* The global settings of conf that the loop applies: limits, drain. */
void
worker_set_conf(struct worker *w, const struct conf *conf)
{
	w->w_max_conns = (unsigned)conf->c_max_conns;
	w->w_drain_timeout = conf->c_drain_timeout;
	worker_rearm(w);
}

/* A running listener that can serve lc with its socket as it is. */
static struct listener *
worker_match(struct worker *w, const struct listen_conf *lc, int any_title)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &w->w_listeners, l_entry) {
		if (l->l_retired || l->l_matched ||
		    l->l_conf->lc_v6only != lc->lc_v6only ||
		    !addr_equal6(&l->l_conf->lc_bind, &lc->lc_bind))
			continue;
		if (any_title ? lc->lc_bind.sin6_port == 0 :
		    strcmp(l->l_conf->lc_name, lc->lc_name) != 0)
			continue;
		l->l_matched = 1;
		return l;
	}
	return NULL;
}

/*
 * Apply a new configuration.  A listener whose bind address and v6only are
 * unchanged keeps its very socket (no connection is refused meanwhile) and
 * takes the new settings for new sessions.  New listeners are bound first:
 * if one cannot be, nothing changes and -1 is returned with err set.  Then
 * the listeners that are gone stop accepting; each is freed when its last
 * session ends.  Open sessions keep the settings they started with.
 */
int
worker_reload(struct worker *w, struct conf *conf, char *err, size_t errlen)
{
	struct listen_conf	 *lc;
	struct listener		 *l, *next, **match, **fresh;
	size_t			  i, n = 0;
	int			  pass, rc = -1;

	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry)
		n++;
	if ((match = calloc(n, sizeof(*match))) == NULL ||
	    (fresh = calloc(n, sizeof(*fresh))) == NULL)
		fatal("calloc");
	TAILQ_FOREACH(l, &w->w_listeners, l_entry)
		l->l_matched = 0;
	/*
	 * Same title and socket first; then, for a fixed port, the same socket
	 * under a new title (a rename must not try to bind the port twice).
	 */
	for (pass = 0; pass < 2; pass++) {
		i = 0;
		TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
			if (match[i] == NULL)
				match[i] = worker_match(w, lc, pass);
			i++;
		}
	}
	i = 0;
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		if (match[i] == NULL &&
		    (fresh[i] = listener_open(lc, err, errlen)) == NULL)
			goto out;
		i++;
	}
	for (l = TAILQ_FIRST(&w->w_listeners); l != NULL; l = next) {
		next = TAILQ_NEXT(l, l_entry);
		if (!l->l_matched && !l->l_retired)
			listener_retire(l);
	}
	i = 0;
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		if (match[i] != NULL)
			listener_set_conf(match[i], lc);
		else {
			listener_start(fresh[i], w);
			fresh[i] = NULL;
		}
		i++;
	}
	worker_set_conf(w, conf);
	rc = 0;
 out:
	for (i = 0; i < n; i++)
		if (fresh[i] != NULL)
			listener_free(fresh[i]);
	free(match);
	free(fresh);
	return rc;
}

/* Close every session now and leave the loop. */
void
worker_halt(struct worker *w)
{
	struct session	*s;

	w->w_stopping = 1;
	while ((s = LIST_FIRST(&w->w_sessions)) != NULL)
		session_close(s, "shutdown");
	event_base_loopexit(w->w_base, NULL);
}
