/*
 * worker.c: one event loop, its listeners and its sessions.
 */
#include "config.h"

#include <sys/eventfd.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "conf.h"
#include "listener.h"
#include "log.h"
#include "pool.h"
#include "session.h"
#include "worker.h"

/* How long accepting pauses after running out of descriptors. */
#define WORKER_FDPAUSE_SEC	1

static void	worker_resume(evutil_socket_t, short, void *);
static void	worker_drained(evutil_socket_t, short, void *);
static void	worker_mail(evutil_socket_t, short, void *);

struct worker *
worker_new(struct pool *p, size_t index)
{
	struct event_config	*cfg;
	struct worker		*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("calloc");
	w->w_pool = p;
	w->w_index = index;
	if ((w->w_scratch = malloc(WORKER_SCRATCH)) == NULL)
		fatal("malloc");
	if ((cfg = event_config_new()) == NULL)
		fatalx("event_config_new failed");
	/* Only this worker's thread touches its loop: no locks needed. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	if ((w->w_base = event_base_new_with_config(cfg)) == NULL)
		fatalx("cannot create the event loop");
	event_config_free(cfg);
	TAILQ_INIT(&w->w_listeners);
	LIST_INIT(&w->w_sessions);
	evtimer_assign(&w->w_resume, w->w_base, worker_resume, w);
	evtimer_assign(&w->w_drain, w->w_base, worker_drained, w);
	if ((w->w_mailfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	event_assign(&w->w_mail_ev, w->w_base, w->w_mailfd,
	    EV_READ | EV_PERSIST, worker_mail, w);
	event_add(&w->w_mail_ev, NULL);
	atomic_init(&w->w_mail, 0);
	atomic_init(&w->w_pong, 0);
	if ((errno = pthread_mutex_init(&w->w_lock, NULL)) != 0)
		fatal("pthread_mutex_init");
	return w;
}

/* After the thread has ended (or never started). */
void
worker_free(struct worker *w)
{
	struct worker_plan	*wp;
	struct listener		*l;

	worker_halt_sessions(w);
	while ((l = TAILQ_FIRST(&w->w_listeners)) != NULL)
		listener_free(l);
	while ((wp = w->w_plans) != NULL) {
		w->w_plans = wp->wp_next;
		worker_plan_free(wp);
	}
	event_del(&w->w_resume);
	event_del(&w->w_drain);
	event_del(&w->w_mail_ev);
	close(w->w_mailfd);
	pthread_mutex_destroy(&w->w_lock);
	if (w->w_dns != NULL)
		evdns_base_free(w->w_dns, 0);
	event_base_free(w->w_base);
	free(w->w_scratch);
	free(w);
}

/* The thread's body: the loop, until stopped and drained. */
int
worker_run(struct worker *w)
{
	return event_base_dispatch(w->w_base);
}

/* From any thread: set flags in w's mailbox and wake its loop. */
void
worker_post(struct worker *w, unsigned flags)
{
	uint64_t	one = 1;

	/* Only the first flag since the loop last looked needs a wake-up. */
	if (atomic_fetch_or(&w->w_mail, flags) != 0)
		return;
	while (write(w->w_mailfd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

/* From the control thread: queue a reload plan for w (w takes it). */
void
worker_post_plan(struct worker *w, struct worker_plan *wp)
{
	struct worker_plan	**tail;

	wp->wp_next = NULL;
	pthread_mutex_lock(&w->w_lock);
	for (tail = &w->w_plans; *tail != NULL; tail = &(*tail)->wp_next)
		;
	*tail = wp;
	pthread_mutex_unlock(&w->w_lock);
	worker_post(w, WORKER_RELOAD);
}

void
worker_plan_free(struct worker_plan *wp)
{
	size_t	i;

	for (i = 0; i < wp->wp_n; i++) {
		conf_listen_unref(wp->wp_e[i].conf);
		if (wp->wp_e[i].fresh != NULL)
			listener_free(wp->wp_e[i].fresh);
	}
	free(wp);
}

/*
 * Apply a reload in this worker: listeners of kept groups take their new
 * settings, those of removed groups retire (their sessions run on), new
 * ones start.
 */
static void
worker_apply(struct worker *w, struct worker_plan *wp)
{
	struct listener	*l, *next;
	size_t		 i;

	for (l = TAILQ_FIRST(&w->w_listeners); l != NULL; l = next) {
		next = TAILQ_NEXT(l, l_entry);
		if (l->l_retired)
			continue;
		for (i = 0; i < wp->wp_n; i++)
			if (wp->wp_e[i].fresh == NULL &&
			    wp->wp_e[i].group == l->l_group)
				break;
		if (i < wp->wp_n)
			listener_set_conf(l, wp->wp_e[i].conf);
		else
			listener_retire(l);
	}
	for (i = 0; i < wp->wp_n; i++) {
		if (wp->wp_e[i].fresh == NULL)
			continue;
		listener_start(wp->wp_e[i].fresh, w);
		wp->wp_e[i].fresh = NULL;
	}
	worker_plan_free(wp);
}

static void
worker_mail(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct worker_plan	*wp;
	uint64_t		 n;
	unsigned		 flags;

	(void)what;
	/* Read the wake-up first: a flag posted after this wakes us again. */
	while (read(fd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	flags = atomic_exchange(&w->w_mail, 0);
	if (flags & WORKER_PING)
		atomic_store(&w->w_pong, pool_ping_round(w->w_pool));
	if (flags & WORKER_RELOAD) {
		pthread_mutex_lock(&w->w_lock);
		wp = w->w_plans;
		w->w_plans = NULL;
		pthread_mutex_unlock(&w->w_lock);
		while (wp != NULL) {
			struct worker_plan *next = wp->wp_next;

			if (w->w_stopping)
				worker_plan_free(wp);
			else
				worker_apply(w, wp);
			pool_plan_applied(w->w_pool);
			wp = next;
		}
	}
	if (flags & WORKER_HALT)
		worker_halt(w);
	else if (flags & WORKER_STOP)
		worker_stop(w);
	if (flags & WORKER_REARM)
		worker_rearm(w);
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

/* May any listener of this worker accept now, as far as it knows? */
int
worker_can_accept(struct worker *w)
{
	return !w->w_stopping && !w->w_fdpause;
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
 * Out of descriptors (or kernel memory): stop accepting in this worker for
 * a while, keep the sessions we have, and resume by timer.  Without the
 * pause, a level-triggered listener would fire again at once, forever.
 */
void
worker_fd_exhausted(struct worker *w)
{
	struct timeval	tv = { WORKER_FDPAUSE_SEC, 0 };

	if (w->w_fdpause)
		return;
	log_warn("accept paused for %d s with %u sessions open",
	    WORKER_FDPAUSE_SEC, pool_sessions(w->w_pool));
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
 * sessions finish for up to drain-timeout seconds.
 */
void
worker_stop(struct worker *w)
{
	struct listener	*l;
	struct timeval	 tv = { pool_drain_timeout(w->w_pool), 0 };

	w->w_stopping = 1;
	TAILQ_FOREACH(l, &w->w_listeners, l_entry)
		listener_close(l);
	if (w->w_nsessions == 0) {
		event_base_loopexit(w->w_base, NULL);
		return;
	}
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

/* Close every session of w now. */
void
worker_halt_sessions(struct worker *w)
{
	struct session	*s;

	w->w_stopping = 1;
	while ((s = LIST_FIRST(&w->w_sessions)) != NULL)
		session_close(s, "shutdown");
}

/* Close every session now and leave the loop. */
void
worker_halt(struct worker *w)
{
	worker_halt_sessions(w);
	event_base_loopexit(w->w_base, NULL);
}
