/*
 * worker.c: one event loop, its listeners and its sessions.
 *
 * The path of a client through a worker: listener.c accepts it (admit.c
 * allowing) and calls worker_accepted(), which starts its session; the
 * session's end calls worker_session_ended(), which gives the slot back
 * (listener_session_ended()) and finishes a drain.
 */
#include "config.h"

#include <sys/eventfd.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "admit.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "session.h"
#include "worker.h"

/*
 * Fault injection for the test suite, by RELAY64_TEST_HOOK=WHAT:INDEX:
 * "fail-loop" makes worker INDEX's loop fail as it starts, "stall-ping"
 * makes it block for an hour when the watchdog asks it to answer.
 */
#define WORKER_HOOK_FAIL_LOOP	1
#define WORKER_HOOK_STALL_PING	2

static void	worker_drained(evutil_socket_t, short, void *);
static void	worker_mail(evutil_socket_t, short, void *);
static void	worker_rearm(void *);
static void	worker_session_ended(struct session_home *, struct listener *,
		    const struct sockaddr_in6 *, int, int);
static void	worker_stop(struct worker *);
static void	worker_close_listeners(struct worker *);
static void	worker_halt(struct worker *);

static int
worker_hook(size_t index)
{
	const char	*v = getenv("RELAY64_TEST_HOOK");
	char		 what[16];
	unsigned	 n;

	if (v == NULL || sscanf(v, "%15[a-z-]:%u", what, &n) != 2 ||
	    n != index)
		return 0;
	if (strcmp(what, "fail-loop") == 0)
		return WORKER_HOOK_FAIL_LOOP;
	if (strcmp(what, "stall-ping") == 0)
		return WORKER_HOOK_STALL_PING;
	return 0;
}

/* At start-up, in the control thread: a failure here ends the start. */
struct worker *
worker_new(size_t index, struct admit *a, const struct worker_settings *ws,
    int once, void (*applied)(void *), void *arg)
{
	struct event_config	*cfg;
	struct worker		*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("calloc");
	w->w_index = index;
	w->w_settings = *ws;
	w->w_once = once;
	w->w_applied = applied;
	w->w_applied_arg = arg;
	w->w_hook = worker_hook(index);
	if ((cfg = event_config_new()) == NULL)
		fatalx("event_config_new failed");
	/*
	 * Only this worker's thread touches its loop: no locks needed.  No
	 * epoll changelist: it would save one epoll_ctl per session, but the
	 * removal it defers past a session's close() then lands on whatever
	 * descriptor another worker has opened under that number meanwhile.
	 */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	if ((w->w_base = event_base_new_with_config(cfg)) == NULL)
		fatalx("cannot create the event loop");
	event_config_free(cfg);
	TAILQ_INIT(&w->w_listeners);
	admit_gate_init(&w->w_gate, a, w->w_base, worker_rearm, w);
	w->w_home.sh_index = index;
	w->w_home.sh_base = w->w_base;
	if ((w->w_home.sh_scratch = malloc(SESSION_SCRATCH)) == NULL)
		fatal("malloc");
	w->w_home.sh_gate = &w->w_gate;
	w->w_home.sh_splice = ws->ws_splice;
	LIST_INIT(&w->w_home.sh_sessions);
	w->w_home.sh_ended = worker_session_ended;
	evtimer_assign(&w->w_drain, w->w_base, worker_drained, w);
	if ((w->w_mailfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	event_assign(&w->w_mail_ev, w->w_base, w->w_mailfd,
	    EV_READ | EV_PERSIST, worker_mail, w);
	event_add(&w->w_mail_ev, NULL);
	atomic_init(&w->w_mail, 0);
	atomic_init(&w->w_ping, 0);
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
	admit_gate_clear(&w->w_gate);
	event_del(&w->w_drain);
	event_del(&w->w_mail_ev);
	close(w->w_mailfd);
	pthread_mutex_destroy(&w->w_lock);
	event_base_free(w->w_base);
	free(w->w_home.sh_scratch);
	free(w);
}

static void
worker_accepted(void *arg, struct listener *l,
    const struct listener_client *c)
{
	struct worker	*w = arg;

	w->w_nsessions++;
	if (w->w_once) {
		/* --once: this is the one connection; accept no other. */
		w->w_stopping = 1;
		admit_gate_close(&w->w_gate);
		worker_close_listeners(w);
	}
	session_start(&w->w_home, l, l->l_conf, l->l_metrics,
	    listener_first_upstream(l), c);
}

/* Before the thread starts: l accepts in this worker. */
void
worker_start_listener(struct worker *w, struct listener *l)
{
	listener_start(l, &w->w_listeners, w->w_base, &w->w_gate,
	    worker_accepted, w);
}

static void
worker_close_listeners(struct worker *w)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &w->w_listeners, l_entry)
		listener_close(l);
}

/*
 * The thread's body: the loop, until stopped and drained.  A loop that
 * fails closes this worker's listening sockets at once, so the kernel
 * steers no more clients to a queue nobody accepts from, and its
 * sessions, which no loop serves any more; -1 then tells the pool.
 */
int
worker_run(struct worker *w)
{
	int	rc;

	if (w->w_hook == WORKER_HOOK_FAIL_LOOP)
		rc = -1;
	else
		rc = event_base_dispatch(w->w_base);
	if (rc == -1) {
		log_error("worker %zu: event loop failed: closing its "
		    "listeners and %u sessions", w->w_index, w->w_nsessions);
		w->w_stopping = 1;
		admit_gate_close(&w->w_gate);
		worker_close_listeners(w);
		worker_halt_sessions(w);
	}
	return rc;
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

/* A plan for n listeners; NULL when there is no memory for it. */
struct worker_plan *
worker_plan_new(size_t n, const struct worker_settings *ws)
{
	struct worker_plan	*wp;

	if ((wp = calloc(1, sizeof(*wp) + n * sizeof(wp->wp_e[0]))) == NULL)
		return NULL;
	wp->wp_settings = *ws;
	wp->wp_n = n;
	return wp;
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
		if (wp->wp_e[i].conf != NULL)
			conf_listen_unref(wp->wp_e[i].conf);
		if (wp->wp_e[i].fresh != NULL)
			listener_free(wp->wp_e[i].fresh);
	}
	free(wp);
}

/*
 * Apply a reload in this worker: the global settings change, listeners
 * of kept groups take their new settings, those of removed groups retire
 * (their sessions run on), new ones start.
 */
static void
worker_apply(struct worker *w, struct worker_plan *wp)
{
	struct listener	*l, *next;
	size_t		 i;

	w->w_settings = wp->wp_settings;
	w->w_home.sh_splice = wp->wp_settings.ws_splice;
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
		worker_start_listener(w, wp->wp_e[i].fresh);
		wp->wp_e[i].fresh = NULL;
	}
	worker_plan_free(wp);
}

static void
worker_answer_ping(struct worker *w)
{
	if (w->w_hook == WORKER_HOOK_STALL_PING) {
		log_warnx("worker %zu: stalling its loop (RELAY64_TEST_HOOK)",
		    w->w_index);
		sleep(3600);
	}
	atomic_store(&w->w_pong, atomic_load(&w->w_ping));
}

static void
worker_mail(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct worker_plan	*wp, *next;
	struct session		*s;
	uint64_t		 n;
	unsigned		 flags;

	(void)what;
	/* Read the wake-up first: a flag posted after this wakes us again. */
	while (read(fd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	flags = atomic_exchange(&w->w_mail, 0);
	if (flags & WORKER_PING)
		worker_answer_ping(w);
	if (flags & WORKER_REPORT)
		LIST_FOREACH(s, &w->w_home.sh_sessions, s_entry)
			session_report(s);
	if (flags & WORKER_RELOAD) {
		pthread_mutex_lock(&w->w_lock);
		wp = w->w_plans;
		w->w_plans = NULL;
		pthread_mutex_unlock(&w->w_lock);
		for (; wp != NULL; wp = next) {
			next = wp->wp_next;
			if (w->w_stopping)
				worker_plan_free(wp);
			else
				worker_apply(w, wp);
			w->w_applied(w->w_applied_arg);
		}
	}
	if (flags & WORKER_HALT)
		worker_halt(w);
	else if (flags & WORKER_STOP)
		worker_stop(w);
	if (flags & WORKER_REARM)
		worker_rearm(w);
}

/* Whether each listener may accept may have changed: ask again. */
static void
worker_rearm(void *arg)
{
	struct worker	*w = arg;
	struct listener	*l;

	TAILQ_FOREACH(l, &w->w_listeners, l_entry)
		listener_rearm(l);
}

/* The home's callback: a session has ended (or never started). */
static void
worker_session_ended(struct session_home *h, struct listener *l,
    const struct sockaddr_in6 *peer, int source_held, int relayed)
{
	struct worker	*w = (struct worker *)((char *)h -
			    offsetof(struct worker, w_home));

	w->w_nsessions--;
	if (w->w_once && !relayed)
		w->w_once_failed = 1;
	listener_session_ended(l, peer, source_held);
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
static void
worker_stop(struct worker *w)
{
	struct timeval	tv = { w->w_settings.ws_drain_timeout, 0 };

	w->w_stopping = 1;
	admit_gate_close(&w->w_gate);
	worker_close_listeners(w);
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
	admit_gate_close(&w->w_gate);
	while ((s = LIST_FIRST(&w->w_home.sh_sessions)) != NULL)
		session_close(s, METRICS_END_DRAIN, "shutdown");
}

/* Close every session now and leave the loop. */
static void
worker_halt(struct worker *w)
{
	worker_halt_sessions(w);
	event_base_loopexit(w->w_base, NULL);
}
