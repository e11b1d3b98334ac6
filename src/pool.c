/*
 * pool.c: the workers together: start, reload, stop, shared counters.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/random.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "listener.h"
#include "log.h"
#include "pool.h"
#include "worker.h"

/* Seconds a reload waits for the workers to apply it. */
#define POOL_APPLY_WAIT	10

static void	pool_done(evutil_socket_t, short, void *);
static void	pool_wait_applied(struct pool *, unsigned long);

/* One worker per CPU this process may run on. */
size_t
pool_default_workers(void)
{
	cpu_set_t	set;
	long		n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > CONF_WORKERS_MAX)
		n = CONF_WORKERS_MAX;
	return (size_t)n;
}

/* n workers (one with once: a single connection needs no more). */
struct pool *
pool_new(size_t n, int once)
{
	struct pool	*p;
	uint32_t	 seed;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	p->p_n = once || n == 0 ? 1 : n;
	p->p_once = once;
	p->p_donefd = -1;
	TAILQ_INIT(&p->p_groups);
	atomic_init(&p->p_nsessions, 0);
	atomic_init(&p->p_max_conns, 0);
	atomic_init(&p->p_drain_timeout, CONF_DRAIN_TIMEOUT);
	atomic_init(&p->p_splice, 1);
	atomic_init(&p->p_ping, 0);
	atomic_init(&p->p_idnext, 0);
	/* Session ids: a random high half, so ids differ across restarts. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint32_t)time(NULL);
	p->p_idbase = (uint64_t)seed << 32;
	if ((errno = pthread_mutex_init(&p->p_lock, NULL)) != 0 ||
	    (errno = pthread_cond_init(&p->p_applied_cv, NULL)) != 0)
		fatal("pthread_mutex_init");
	return p;
}

/*
 * Open the listeners of conf, one socket per worker, before anything
 * else (still privileged, before detaching).  On failure nothing stays
 * open and err says why.
 */
int
pool_bind(struct pool *p, struct conf *conf, char *err, size_t errlen)
{
	struct listen_conf	*lc;
	struct listener_group	*g;

	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		if ((g = listener_group_open(lc, p->p_n, err, errlen)) == NULL) {
			while ((g = TAILQ_FIRST(&p->p_groups)) != NULL) {
				TAILQ_REMOVE(&p->p_groups, g, g_entry);
				listener_group_release(g);
			}
			return -1;
		}
		TAILQ_INSERT_TAIL(&p->p_groups, g, g_entry);
	}
	return 0;
}

/* The global settings workers read. */
static void
pool_settings(struct pool *p, const struct conf *conf)
{
	atomic_store(&p->p_max_conns, (unsigned)conf->c_max_conns);
	atomic_store(&p->p_drain_timeout, conf->c_drain_timeout);
	atomic_store(&p->p_splice, conf->c_splice);
}

static void
pool_log_group(struct listener_group *g, const char *what)
{
	char	addr[ADDR_STRLEN], ups[1024];

	log_notice("listen %s: %s %s, upstream %s", g->g_conf->lc_name, what,
	    listener_group_addr(g, addr, sizeof(addr)),
	    conf_upstreams_str(g->g_conf, ups, sizeof(ups)));
}

static void *
pool_thread(void *arg)
{
	struct worker	*w = arg;
	struct pool	*p = w->w_pool;
	uint64_t	 one = 1;
	char		 name[16];

	/* Named for ps -L and top -H: "relay64 w0", "relay64 w1", ... */
	snprintf(name, sizeof(name), "relay64 w%zu", w->w_index);
	pthread_setname_np(pthread_self(), name);
	if (worker_run(w) == -1)
		log_error("worker %zu: event loop failed", w->w_index);
	while (write(p->p_donefd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
	return NULL;
}

/*
 * Create the workers, hand each its listeners, and start their threads;
 * base is the control loop, which ends once every worker has ended.
 */
void
pool_start(struct pool *p, struct event_base *base, const struct conf *conf)
{
	struct listener_group	*g;
	struct worker		*w;
	sigset_t		 all, old;
	size_t			 i;

	p->p_base = base;
	pool_settings(p, conf);
	if ((p->p_donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	event_assign(&p->p_done_ev, base, p->p_donefd, EV_READ | EV_PERSIST,
	    pool_done, p);
	event_add(&p->p_done_ev, NULL);
	if ((p->p_workers = calloc(p->p_n, sizeof(*p->p_workers))) == NULL)
		fatal("calloc");
	for (i = 0; i < p->p_n; i++) {
		p->p_workers[i] = w = worker_new(p, i);
		w->w_once = p->p_once;
	}
	TAILQ_FOREACH(g, &p->p_groups, g_entry) {
		pool_log_group(g, "listening on");
		for (i = 0; i < p->p_n; i++) {
			listener_start(g->g_ls[i], p->p_workers[i]);
			g->g_ls[i] = NULL;
		}
	}
	/* Signals are the control thread's: workers block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < p->p_n; i++) {
		w = p->p_workers[i];
		if ((errno = pthread_create(&w->w_thread, NULL, pool_thread,
		    w)) != 0)
			fatal("cannot start worker %zu", i);
		w->w_running = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	log_info("%zu worker%s started", p->p_n, p->p_n == 1 ? "" : "s");
}

static void
pool_done(evutil_socket_t fd, short what, void *arg)
{
	struct pool	*p = arg;
	uint64_t	 n;

	(void)what;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	p->p_ndone += (size_t)n;
	if (p->p_ndone >= p->p_n)
		event_base_loopexit(p->p_base, NULL);
}

/* A running group that can serve lc with its sockets as they are. */
static struct listener_group *
pool_match(struct pool *p, const struct listen_conf *lc, int any_title)
{
	struct listener_group	*g;

	TAILQ_FOREACH(g, &p->p_groups, g_entry) {
		if (g->g_matched || g->g_conf->lc_v6only != lc->lc_v6only ||
		    !addr_equal6(&g->g_conf->lc_bind, &lc->lc_bind))
			continue;
		if (any_title ? lc->lc_bind.sin6_port == 0 :
		    strcmp(g->g_conf->lc_name, lc->lc_name) != 0)
			continue;
		g->g_matched = 1;
		return g;
	}
	return NULL;
}

/*
 * Apply a new configuration.  A listener whose bind address and v6only are
 * unchanged keeps its very sockets (no connection is refused meanwhile)
 * and takes the new settings for new sessions.  New listeners are bound
 * first: if one cannot be, nothing changes and -1 is returned with err
 * set.  Then every worker gets its plan: listeners that are gone stop
 * accepting (each is freed when its last session ends), new ones start.
 * Open sessions keep the settings they started with.
 */
int
pool_reload(struct pool *p, struct conf *conf, char *err, size_t errlen)
{
	struct listener_groups	  keep;
	struct listen_conf	 *lc;
	struct listener_group	 *g, **match, **fresh;
	struct worker_plan	**plans;
	size_t			  i, j, n = 0;
	unsigned long		  target;
	int			  pass, rc = -1;

	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry)
		n++;
	if ((match = calloc(n, sizeof(*match))) == NULL ||
	    (fresh = calloc(n, sizeof(*fresh))) == NULL ||
	    (plans = calloc(p->p_n, sizeof(*plans))) == NULL)
		fatal("calloc");
	TAILQ_FOREACH(g, &p->p_groups, g_entry)
		g->g_matched = 0;
	/*
	 * Same title and socket first; then, for a fixed port, the same socket
	 * under a new title (a rename must not try to bind the port twice).
	 */
	for (pass = 0; pass < 2; pass++) {
		i = 0;
		TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
			if (match[i] == NULL)
				match[i] = pool_match(p, lc, pass);
			i++;
		}
	}
	i = 0;
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		if (match[i] == NULL && (fresh[i] = listener_group_open(lc,
		    p->p_n, err, errlen)) == NULL)
			goto out;
		i++;
	}

	/* Nothing can fail from here on. */
	for (j = 0; j < p->p_n; j++) {
		plans[j] = calloc(1, sizeof(*plans[j]) +
		    n * sizeof(plans[j]->wp_e[0]));
		if (plans[j] == NULL)
			fatal("calloc");
		plans[j]->wp_n = n;
	}
	while ((g = TAILQ_FIRST(&p->p_groups)) != NULL) {
		TAILQ_REMOVE(&p->p_groups, g, g_entry);
		if (g->g_matched)
			continue;
		log_notice("listen %s: removed; %u open sessions run on",
		    g->g_conf->lc_name, listener_group_sessions(g));
		listener_group_release(g);
	}
	TAILQ_INIT(&keep);
	i = 0;
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		g = match[i] != NULL ? match[i] : fresh[i];
		for (j = 0; j < p->p_n; j++) {
			plans[j]->wp_e[i].group = g;
			plans[j]->wp_e[i].conf = conf_listen_ref(lc);
			plans[j]->wp_e[i].fresh = g->g_ls[j];
			g->g_ls[j] = NULL;
		}
		if (match[i] != NULL) {
			listener_group_set_conf(g, lc);
			pool_log_group(g, "kept on");
		} else {
			pool_log_group(g, "listening on");
			fresh[i] = NULL;
		}
		TAILQ_INSERT_TAIL(&keep, g, g_entry);
		i++;
	}
	TAILQ_CONCAT(&p->p_groups, &keep, g_entry);
	pool_settings(p, conf);
	pthread_mutex_lock(&p->p_lock);
	target = p->p_applied + p->p_n;
	pthread_mutex_unlock(&p->p_lock);
	for (j = 0; j < p->p_n; j++) {
		worker_post_plan(p->p_workers[j], plans[j]);
		plans[j] = NULL;
	}
	/* The global limit may have changed too. */
	pool_rearm(p);
	pool_wait_applied(p, target);
	rc = 0;
 out:
	for (i = 0; i < n; i++)
		if (fresh[i] != NULL)
			listener_group_release(fresh[i]);
	free(match);
	free(fresh);
	free(plans);
	return rc;
}

/*
 * Wait until every worker has applied its plan, so that once a reload is
 * reported done, no worker accepts on a removed listener any more.  Workers
 * never block, so this is short; the bound is for a loop that has failed.
 */
static void
pool_wait_applied(struct pool *p, unsigned long target)
{
	struct timespec	until;
	int		rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += POOL_APPLY_WAIT;
	pthread_mutex_lock(&p->p_lock);
	while (p->p_applied < target && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&p->p_applied_cv, &p->p_lock,
		    &until);
	if (p->p_applied < target)
		log_warnx("reload: %lu workers have not applied it after %d s",
		    target - p->p_applied, POOL_APPLY_WAIT);
	pthread_mutex_unlock(&p->p_lock);
}

/* From a worker: its reload plan is applied. */
void
pool_plan_applied(struct pool *p)
{
	pthread_mutex_lock(&p->p_lock);
	p->p_applied++;
	pthread_cond_broadcast(&p->p_applied_cv);
	pthread_mutex_unlock(&p->p_lock);
}

/* Every worker stops accepting and drains (drain-timeout at most). */
void
pool_stop(struct pool *p)
{
	size_t		i;
	unsigned	n = pool_sessions(p);

	if (n > 0)
		log_notice("stopping: %u sessions open, draining up to %d s",
		    n, pool_drain_timeout(p));
	for (i = 0; i < p->p_n; i++)
		worker_post(p->p_workers[i], WORKER_STOP);
}

/* Every worker closes its sessions now and ends. */
void
pool_halt(struct pool *p)
{
	size_t	i;

	for (i = 0; i < p->p_n; i++)
		worker_post(p->p_workers[i], WORKER_HALT);
}

/*
 * The watchdog's question: did every worker answer the previous round?
 * A worker whose loop is stuck does not.  Then a new round is asked.
 */
int
pool_alive(struct pool *p)
{
	unsigned	round = atomic_load(&p->p_ping);
	size_t		i;
	int		alive = 1;

	for (i = 0; i < p->p_n; i++) {
		if (atomic_load(&p->p_workers[i]->w_pong) != round) {
			log_warnx("worker %zu has not answered for a watchdog "
			    "interval", i);
			alive = 0;
		}
	}
	atomic_store(&p->p_ping, round + 1);
	for (i = 0; i < p->p_n; i++)
		worker_post(p->p_workers[i], WORKER_PING);
	return alive;
}

unsigned
pool_ping_round(struct pool *p)
{
	return atomic_load(&p->p_ping);
}

unsigned
pool_listeners(struct pool *p)
{
	struct listener_group	*g;
	unsigned		 n = 0;

	TAILQ_FOREACH(g, &p->p_groups, g_entry)
		n++;
	return n;
}

/* Once the control loop has ended (every worker's loop has). */
void
pool_free(struct pool *p)
{
	struct listener_group	*g;
	size_t			 i;

	if (p->p_workers != NULL) {
		pool_halt(p);
		for (i = 0; i < p->p_n; i++) {
			if (p->p_workers[i]->w_running)
				pthread_join(p->p_workers[i]->w_thread, NULL);
		}
		/* Close what is left everywhere before freeing any worker. */
		for (i = 0; i < p->p_n; i++)
			worker_halt_sessions(p->p_workers[i]);
		for (i = 0; i < p->p_n; i++)
			worker_free(p->p_workers[i]);
		free(p->p_workers);
		p->p_workers = NULL;
	}
	while ((g = TAILQ_FIRST(&p->p_groups)) != NULL) {
		TAILQ_REMOVE(&p->p_groups, g, g_entry);
		listener_group_release(g);
	}
	if (p->p_donefd != -1) {
		event_del(&p->p_done_ev);
		close(p->p_donefd);
	}
	pthread_cond_destroy(&p->p_applied_cv);
	pthread_mutex_destroy(&p->p_lock);
	free(p);
}

unsigned
pool_sessions(struct pool *p)
{
	return atomic_load_explicit(&p->p_nsessions, memory_order_relaxed);
}

int
pool_has_room(struct pool *p)
{
	unsigned	max = atomic_load_explicit(&p->p_max_conns,
			    memory_order_relaxed);

	return max == 0 || pool_sessions(p) < max;
}

/*
 * A session count that workers share, bounded by max (0: no bound).
 * Take reserves one before an accept, so that no two workers can both take
 * the last; it returns 0 when the bound is reached.
 */
int
pool_count_take(atomic_uint *count, unsigned max)
{
	unsigned	n = atomic_load_explicit(count, memory_order_relaxed);

	do {
		if (max != 0 && n >= max)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(count, &n, n + 1,
	    memory_order_relaxed, memory_order_relaxed));
	return 1;
}

/* Give one back; returns 1 when the count was at its bound (was full). */
int
pool_count_give(atomic_uint *count, unsigned max)
{
	unsigned	n = atomic_fetch_sub_explicit(count, 1,
			    memory_order_relaxed);

	return max != 0 && n >= max;
}

/* Reserve one session of the global limit; 0 when it is reached. */
int
pool_take(struct pool *p)
{
	return pool_count_take(&p->p_nsessions, atomic_load_explicit(
	    &p->p_max_conns, memory_order_relaxed));
}

/* Give one back; if the limit was reached, every worker may accept. */
void
pool_give(struct pool *p)
{
	if (pool_count_give(&p->p_nsessions, atomic_load_explicit(
	    &p->p_max_conns, memory_order_relaxed)))
		pool_rearm(p);
}

void
pool_rearm(struct pool *p)
{
	size_t	i;

	if (p->p_workers == NULL)
		return;
	for (i = 0; i < p->p_n; i++)
		worker_post(p->p_workers[i], WORKER_REARM);
}

uint64_t
pool_session_id(struct pool *p)
{
	uint64_t	n = atomic_fetch_add_explicit(&p->p_idnext, 1,
			    memory_order_relaxed) + 1;

	return p->p_idbase | (n & 0xffffffffu);
}

int
pool_drain_timeout(struct pool *p)
{
	return atomic_load_explicit(&p->p_drain_timeout, memory_order_relaxed);
}

int
pool_splice(struct pool *p)
{
	return atomic_load_explicit(&p->p_splice, memory_order_relaxed);
}
