/*
 * pool.c: the workers together: start, reload, stop, the watchdog.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/resource.h>

#include <dirent.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "addr.h"
#include "admit.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "resolve.h"
#include "session.h"
#include "worker.h"

/* Seconds a reload waits for the workers to apply it. */
#define POOL_APPLY_WAIT	10

/*
 * Descriptors the process holds itself, for the budget: stdio, the control
 * loop (epoll, signal pair, the workers' done eventfd), the resolver's
 * sockets (one per name server, three at most in resolv.conf, and the
 * hosts file while it is read), the notification and syslog sockets, and
 * a few to spare; per worker its epoll and mailbox and one to spare; per
 * worker and listener a listening socket; and what a reload needs to open
 * one new listener and read the file.
 */
#define POOL_FDS_FIXED		17
/* For the stats endpoint: its socket and the scrapes it serves at once. */
#define POOL_FDS_STATS		17
#define POOL_FDS_WORKER		3

static void	pool_done(evutil_socket_t, short, void *);
static void	pool_wake(void *);
static void	pool_plan_applied(void *);
static void	pool_wait_applied(struct pool *, unsigned long);
static void	pool_budget(struct pool *, const struct conf *);

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
	struct pool		*p;
	pthread_condattr_t	 ca;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	p->p_n = once || n == 0 ? 1 : n;
	p->p_once = once;
	p->p_donefd = -1;
	TAILQ_INIT(&p->p_groups);
	admit_init(&p->p_admit, pool_wake, p);
	p->p_settings.ws_drain_timeout = CONF_DRAIN_TIMEOUT;
	p->p_settings.ws_splice = 1;
	atomic_init(&p->p_failed, 0);
	session_ids_init();
	/* A reload's wait is measured on the monotonic clock. */
	if ((errno = pthread_mutex_init(&p->p_lock, NULL)) != 0 ||
	    (errno = pthread_condattr_init(&ca)) != 0 ||
	    (errno = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0 ||
	    (errno = pthread_cond_init(&p->p_applied_cv, &ca)) != 0)
		fatal("pthread_cond_init");
	pthread_condattr_destroy(&ca);
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

/* The global settings, for the workers' plans. */
static void
pool_settings(struct pool *p, const struct conf *conf)
{
	p->p_settings.ws_drain_timeout = conf->c_drain_timeout;
	p->p_settings.ws_splice = conf->c_splice;
}


/*
 * The limits of conf: max-connections, global and per listener, and the
 * descriptor budget.  At a reload they change only once every worker
 * applied its plan: a raised limit wakes paused workers, and the clients
 * they then accept must get the new settings.
 */
static void
pool_limits(struct pool *p, const struct conf *conf)
{
	struct listener_group	*g;

	TAILQ_FOREACH(g, &p->p_groups, g_entry)
		listener_group_set_limit(&p->p_admit, g);
	admit_set_max(&p->p_admit, (unsigned)conf->c_max_conns);
	pool_budget(p, conf);
}

/*
 * The descriptor budget, derived at start and at each reload from
 * RLIMIT_NOFILE: what is left after what the process holds itself goes to
 * sessions (two descriptors each) and splice pipes (admit.c).  Said at
 * start and whenever it changes.
 */
static void
pool_budget(struct pool *p, const struct conf *conf)
{
	struct rlimit	rl;
	unsigned long	limit = 1024, held, fds;
	unsigned	sessions;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1UL << 30) ?
		    (1UL << 30) : (unsigned long)rl.rlim_cur;
	held = POOL_FDS_FIXED + (conf->c_statslen > 0 ? POOL_FDS_STATS : 0) +
	    p->p_n * (POOL_FDS_WORKER +
	    pool_listeners(p)) + p->p_n + 1;
	fds = limit > held ? limit - held : 0;
	sessions = (unsigned)(fds / ADMIT_SESSION_FDS);
	admit_set_budget(&p->p_admit, sessions * ADMIT_SESSION_FDS);
	if (sessions != p->p_budget) {
		log_notice("descriptor limit %lu: room for %u sessions", limit,
		    sessions);
		p->p_budget = sessions;
	}
	if ((unsigned)conf->c_max_conns > sessions)
		log_warnx("max-connections %d is more than the descriptor "
		    "limit %lu has room for: at most %u sessions at once (raise "
		    "LimitNOFILE= or ulimit -n)", conf->c_max_conns, limit,
		    sessions);
}

/*
 * Once per process: a wildcard listener whose v6only differs from the
 * host's default for [::] sockets (net.ipv6.bindv6only) is worth a line,
 * since other programs on this host behave the other way.
 */
static void
pool_note_bindv6only(const struct listen_conf *lc)
{
	static int	said;
	FILE		*fp;
	int		 host = -1;

	if (said || !IN6_IS_ADDR_UNSPECIFIED(&lc->lc_bind.sin6_addr))
		return;
	if ((fp = fopen("/proc/sys/net/ipv6/bindv6only", "r")) != NULL) {
		if (fscanf(fp, "%d", &host) != 1)
			host = -1;
		fclose(fp);
	}
	if (host == -1 || (host != 0) == (lc->lc_v6only != 0))
		return;
	said = 1;
	log_notice("listen %s: this host's default for [::] sockets is v6only "
	    "= %s (net.ipv6.bindv6only = %d); relay64 sets v6only = %s on "
	    "this listener, as configured", lc->lc_name, host ? "true" :
	    "false", host, lc->lc_v6only ? "true" : "false");
}

static void
pool_log_group(struct listener_group *g, const char *what)
{
	const struct listen_conf *lc = g->g_conf;
	char			 addr[ADDR_STRLEN], ups[4096];

	/* Host names with the addresses they have now. */
	log_notice("listen %s: %s %s, upstream %s; %s; %s", lc->lc_name, what,
	    listener_group_addr(g, addr, sizeof(addr)),
	    resolve_upstreams_str(lc, ups, sizeof(ups)),
	    addr_takes(&lc->lc_bind, lc->lc_v6only), conf_proxy_text(lc));
	pool_note_bindv6only(lc);
}

struct pool_thread_arg {
	struct pool	*pta_pool;
	struct worker	*pta_worker;
};

static void *
pool_thread(void *arg)
{
	struct pool_thread_arg	*pta = arg;
	struct pool		*p = pta->pta_pool;
	struct worker		*w = pta->pta_worker;
	uint64_t		 one = 1;
	char			 name[16];

	free(pta);
	/* Named for ps -L and top -H: "relay64 w0", "relay64 w1", ... */
	snprintf(name, sizeof(name), "relay64 w%zu", w->w_index);
	pthread_setname_np(pthread_self(), name);
	if (worker_run(w) == -1)
		atomic_store(&p->p_failed, 1);
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
	struct pool_thread_arg	*pta;
	struct listener_group	*g;
	struct worker		*w;
	sigset_t		 async, old;
	size_t			 i;

	p->p_base = base;
	pool_settings(p, conf);
	pool_limits(p, conf);
	if ((p->p_donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	event_assign(&p->p_done_ev, base, p->p_donefd, EV_READ | EV_PERSIST,
	    pool_done, p);
	event_add(&p->p_done_ev, NULL);
	if ((p->p_workers = calloc(p->p_n, sizeof(*p->p_workers))) == NULL)
		fatal("calloc");
	for (i = 0; i < p->p_n; i++)
		p->p_workers[i] = worker_new(i, &p->p_admit, &p->p_settings,
		    p->p_once, pool_plan_applied, p);
	TAILQ_FOREACH(g, &p->p_groups, g_entry) {
		pool_log_group(g, "listening on");
		for (i = 0; i < p->p_n; i++) {
			worker_start_listener(p->p_workers[i], g->g_ls[i]);
			g->g_ls[i] = NULL;
		}
	}
	/*
	 * The signals the control loop handles are its own: workers block
	 * them.  Synchronous ones (a crash) stay with the thread that caused
	 * them, so the sanitizers' reporters see them.
	 */
	sigemptyset(&async);
	sigaddset(&async, SIGTERM);
	sigaddset(&async, SIGINT);
	sigaddset(&async, SIGHUP);
	sigaddset(&async, SIGUSR1);
	sigaddset(&async, SIGUSR2);
	sigaddset(&async, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &async, &old);
	for (i = 0; i < p->p_n; i++) {
		w = p->p_workers[i];
		if ((pta = malloc(sizeof(*pta))) == NULL)
			fatal("malloc");
		pta->pta_pool = p;
		pta->pta_worker = w;
		if ((errno = pthread_create(&w->w_thread, NULL, pool_thread,
		    pta)) != 0)
			fatal("cannot start worker %zu", i);
		w->w_running = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	log_info("%zu worker%s started", p->p_n, p->p_n == 1 ? "" : "s");
}

/* Workers ended: when all have, so does the control loop. */
static void
pool_done(evutil_socket_t fd, short what, void *arg)
{
	struct pool	*p = arg;
	uint64_t	 n;

	(void)what;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	p->p_ndone += (size_t)n;
	if (atomic_load(&p->p_failed) && !p->p_stopping) {
		log_error("a worker's event loop failed: stopping; the other "
		    "workers drain their sessions");
		pool_stop(p);
	}
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
 * A reload's work, in the order done: match the new listeners with running
 * groups, open the new ones, prepare the plans (each step may fail and
 * undo), then commit (nothing fails from there on).
 */
struct pool_reload {
	struct conf		 *pr_conf;
	size_t			  pr_n;		/* listeners of pr_conf */
	struct listener_group	**pr_match;	/* kept: a running group */
	struct listener_group	**pr_fresh;	/* new: opened for it */
	struct worker_plan	**pr_plans;	/* one per worker */
};

/*
 * Same title and socket first; then, for a fixed port, the same socket
 * under a new title (a rename must not try to bind the port twice).
 */
static void
pool_reload_match(struct pool *p, struct pool_reload *pr)
{
	struct listener_group	*g;
	struct listen_conf	*lc;
	size_t			 i;
	int			 pass;

	TAILQ_FOREACH(g, &p->p_groups, g_entry)
		g->g_matched = 0;
	for (pass = 0; pass < 2; pass++) {
		i = 0;
		TAILQ_FOREACH(lc, &pr->pr_conf->c_listens, lc_entry) {
			if (pr->pr_match[i] == NULL)
				pr->pr_match[i] = pool_match(p, lc, pass);
			i++;
		}
	}
}

/*
 * A new listener that overlaps a running one this reload lets go of (its
 * address changed on the same port, [::] <-> [::1]) cannot be bound while
 * the old socket holds the port, and the old one is kept until the new
 * one is bound: say so, rather than only "Address already in use".
 */
static int
pool_reload_overlap(struct pool *p, const struct listen_conf *lc, char *err,
    size_t errlen)
{
	struct listener_group	*g;
	char			 a[ADDR_STRLEN], b[ADDR_STRLEN];

	TAILQ_FOREACH(g, &p->p_groups, g_entry) {
		if (g->g_matched || !addr_binds_overlap(&g->g_addr,
		    g->g_conf->lc_v6only, &lc->lc_bind, lc->lc_v6only))
			continue;
		snprintf(err, errlen, "listen %s: bind %s overlaps %s of the "
		    "running listen %s, which this reload would replace: the "
		    "old socket holds the port until the new one is bound, so "
		    "changing a listener's address (or v6only) on the same "
		    "port needs a restart", lc->lc_name, addr_format((const
		    struct sockaddr *)&lc->lc_bind, b, sizeof(b)),
		    listener_group_addr(g, a, sizeof(a)), g->g_conf->lc_name);
		return -1;
	}
	return 0;
}

/* Bind every new listener; on failure err says which and why. */
static int
pool_reload_open(struct pool *p, struct pool_reload *pr, char *err,
    size_t errlen)
{
	struct listen_conf	*lc;
	size_t			 i = 0;

	TAILQ_FOREACH(lc, &pr->pr_conf->c_listens, lc_entry) {
		if (pr->pr_match[i] == NULL &&
		    (pool_reload_overlap(p, lc, err, errlen) == -1 ||
		    (pr->pr_fresh[i] = listener_group_open(lc, p->p_n, err,
		    errlen)) == NULL))
			return -1;
		i++;
	}
	return 0;
}

static int
pool_reload_plans(struct pool *p, struct pool_reload *pr, char *err,
    size_t errlen)
{
	size_t	j;

	for (j = 0; j < p->p_n; j++) {
		if ((pr->pr_plans[j] = worker_plan_new(pr->pr_n,
		    &p->p_settings)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

/*
 * The new configuration takes over: removed groups are let go (their
 * sessions run on), kept ones take the new settings, and every listener
 * of the new configuration goes into each worker's plan.
 */
static void
pool_reload_commit(struct pool *p, struct pool_reload *pr)
{
	struct listener_groups	 keep;
	struct listener_group	*g;
	struct listen_conf	*lc;
	struct worker_plan	*wp;
	size_t			 i, j;

	while ((g = TAILQ_FIRST(&p->p_groups)) != NULL) {
		TAILQ_REMOVE(&p->p_groups, g, g_entry);
		if (g->g_matched)
			continue;
		log_notice("listen %s: removed; %u open sessions run on",
		    g->g_conf->lc_name, listener_group_sessions(g));
		listener_group_release(g);
	}
	pool_settings(p, pr->pr_conf);
	TAILQ_INIT(&keep);
	i = 0;
	TAILQ_FOREACH(lc, &pr->pr_conf->c_listens, lc_entry) {
		g = pr->pr_match[i] != NULL ? pr->pr_match[i] : pr->pr_fresh[i];
		for (j = 0; j < p->p_n; j++) {
			wp = pr->pr_plans[j];
			wp->wp_settings = p->p_settings;
			wp->wp_e[i].group = g;
			wp->wp_e[i].conf = conf_listen_ref(lc);
			wp->wp_e[i].fresh = g->g_ls[j];
			g->g_ls[j] = NULL;
		}
		if (pr->pr_match[i] != NULL) {
			listener_group_set_conf(g, lc);
			pool_log_group(g, "kept on");
		} else {
			pool_log_group(g, "listening on");
			pr->pr_fresh[i] = NULL;
		}
		TAILQ_INSERT_TAIL(&keep, g, g_entry);
		i++;
	}
	TAILQ_CONCAT(&p->p_groups, &keep, g_entry);
}

/*
 * Apply a new configuration.  A listener whose bind address and v6only are
 * unchanged keeps its very sockets (no connection is refused meanwhile)
 * and takes the new settings for new sessions.  New listeners are bound
 * first: if one cannot be (or anything else fails), nothing changes and
 * -1 is returned with err set; a reload never ends the process.  Then
 * every worker gets its plan: listeners that are gone stop accepting (each
 * is freed when its last session ends), new ones start.  Open sessions
 * keep the settings they started with.
 */
int
pool_reload(struct pool *p, struct conf *conf, char *err, size_t errlen)
{
	struct pool_reload	 pr;
	struct listen_conf	*lc;
	unsigned long		 target;
	size_t			 i;
	int			 rc = -1;

	memset(&pr, 0, sizeof(pr));
	pr.pr_conf = conf;
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry)
		pr.pr_n++;
	if ((pr.pr_match = calloc(pr.pr_n, sizeof(*pr.pr_match))) == NULL ||
	    (pr.pr_fresh = calloc(pr.pr_n, sizeof(*pr.pr_fresh))) == NULL ||
	    (pr.pr_plans = calloc(p->p_n, sizeof(*pr.pr_plans))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	pool_reload_match(p, &pr);
	if (pool_reload_open(p, &pr, err, errlen) == -1 ||
	    pool_reload_plans(p, &pr, err, errlen) == -1)
		goto out;

	pool_reload_commit(p, &pr);
	pthread_mutex_lock(&p->p_lock);
	target = p->p_applied + p->p_n;
	pthread_mutex_unlock(&p->p_lock);
	for (i = 0; i < p->p_n; i++) {
		worker_post_plan(p->p_workers[i], pr.pr_plans[i]);
		pr.pr_plans[i] = NULL;
	}
	pool_wait_applied(p, target);
	pool_limits(p, conf);
	rc = 0;
 out:
	for (i = 0; pr.pr_fresh != NULL && i < pr.pr_n; i++)
		if (pr.pr_fresh[i] != NULL)
			listener_group_release(pr.pr_fresh[i]);
	for (i = 0; pr.pr_plans != NULL && i < p->p_n; i++)
		if (pr.pr_plans[i] != NULL)
			worker_plan_free(pr.pr_plans[i]);
	free(pr.pr_match);
	free(pr.pr_fresh);
	free(pr.pr_plans);
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

	clock_gettime(CLOCK_MONOTONIC, &until);
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

/* From a worker's thread: its reload plan is applied. */
static void
pool_plan_applied(void *arg)
{
	struct pool	*p = arg;

	pthread_mutex_lock(&p->p_lock);
	p->p_applied++;
	pthread_cond_broadcast(&p->p_applied_cv);
	pthread_mutex_unlock(&p->p_lock);
}

/* From admit.c, in any thread: a count has room again; wake every worker. */
static void
pool_wake(void *arg)
{
	struct pool	*p = arg;
	size_t		 i;

	if (p->p_workers == NULL)
		return;
	for (i = 0; i < p->p_n; i++)
		worker_post(p->p_workers[i], WORKER_REARM);
}

/* Every worker stops accepting and drains (drain-timeout at most). */
void
pool_stop(struct pool *p)
{
	size_t		i;
	unsigned	n = pool_sessions(p);

	p->p_stopping = 1;
	if (n > 0)
		log_notice("stopping: %u sessions open, draining up to %d s",
		    n, p->p_settings.ws_drain_timeout);
	for (i = 0; i < p->p_n; i++)
		worker_post(p->p_workers[i], WORKER_STOP);
}

/* Every worker closes its sessions now and ends. */
void
pool_halt(struct pool *p)
{
	size_t	i;

	p->p_stopping = 1;
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
	struct worker	*w;
	size_t		 i;
	int		 alive = 1;

	for (i = 0; i < p->p_n; i++) {
		if (atomic_load(&p->p_workers[i]->w_pong) != p->p_ping) {
			log_warnx("worker %zu has not answered for a watchdog "
			    "interval", i);
			alive = 0;
		}
	}
	p->p_ping++;
	for (i = 0; i < p->p_n; i++) {
		w = p->p_workers[i];
		atomic_store(&w->w_ping, p->p_ping);
		worker_post(w, WORKER_PING);
	}
	return alive;
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

unsigned
pool_sessions(struct pool *p)
{
	return admit_sessions(&p->p_admit);
}

/*
 * Once the control loop has ended (every worker's loop has): join and free
 * everything.  Returns the exit status: 1 when a worker's loop failed, or
 * when the --once client reached no upstream; else 0.
 */
int
pool_free(struct pool *p)
{
	struct listener_group	*g;
	size_t			 i;
	int			 status = atomic_load(&p->p_failed) ? 1 : 0;

	if (p->p_workers != NULL) {
		pool_halt(p);
		for (i = 0; i < p->p_n; i++) {
			if (p->p_workers[i]->w_running)
				pthread_join(p->p_workers[i]->w_thread, NULL);
		}
		/* Close what is left everywhere before freeing any worker. */
		for (i = 0; i < p->p_n; i++)
			worker_halt_sessions(p->p_workers[i]);
		for (i = 0; i < p->p_n; i++) {
			if (p->p_workers[i]->w_once_failed)
				status = 1;
			worker_free(p->p_workers[i]);
		}
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
	return status;
}

/* Descriptors the process has open now (its /proc/self/fd). */
static uint64_t
pool_fds_open(void)
{
	struct dirent	*de;
	DIR		*d;
	uint64_t	 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0;	/* not the one reading the directory */
}

/*
 * A scrape (control thread): sum every listener's slots across workers,
 * the workers' accept pauses, and the descriptors, and render them.
 */
int
pool_metrics(void *arg, struct evbuffer *b)
{
	struct pool			*p = arg;
	struct metrics_render_listener	*mr;
	struct metrics_process		 mp;
	struct listener_group		*g;
	struct rlimit			 rl;
	size_t				 i, n = pool_listeners(p);
	int				 rc;

	if ((mr = calloc(n + 1, sizeof(*mr))) == NULL)
		return -1;
	i = 0;
	TAILQ_FOREACH(g, &p->p_groups, g_entry) {
		mr[i].mr_name = g->g_conf->lc_name;
		metrics_sum(g->g_metrics, g->g_n, &mr[i].mr_sums);
		mr[i].mr_sums.mu_stale = resolve_stale(g->g_conf);
		i++;
	}
	memset(&mp, 0, sizeof(mp));
	for (i = 0; p->p_workers != NULL && i < p->p_n; i++)
		mp.mp_paused += admit_paused_count(&p->p_workers[i]->w_gate);
	mp.mp_fds_open = pool_fds_open();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		mp.mp_fds_limit = rl.rlim_cur == RLIM_INFINITY ? 0 :
		    (uint64_t)rl.rlim_cur;
	rc = metrics_render(b, mr, n, &mp);
	free(mr);
	return rc;
}

/*
 * SIGUSR1: one line per listener with its counters (here, the control
 * thread), then every worker logs its open sessions (in its own thread).
 */
void
pool_report(struct pool *p)
{
	struct listener_group	*g;
	struct metrics_sums	 mu;
	size_t			 i;

	TAILQ_FOREACH(g, &p->p_groups, g_entry) {
		metrics_sum(g->g_metrics, g->g_n, &mu);
		log_notice("listen %s: %llu sessions, %llu open, %llu bytes up, "
		    "%llu bytes down; ended: %llu done, %llu idle_timeout, "
		    "%llu client_reset, %llu upstream_reset, %llu no_upstream, "
		    "%llu error, %llu drain; refused: %llu acl, %llu "
		    "per_source", g->g_conf->lc_name,
		    (unsigned long long)mu.mu_sessions,
		    (unsigned long long)(mu.mu_sessions - mu.mu_ended),
		    (unsigned long long)mu.mu_up,
		    (unsigned long long)mu.mu_down,
		    (unsigned long long)mu.mu_end[METRICS_END_DONE],
		    (unsigned long long)mu.mu_end[METRICS_END_IDLE_TIMEOUT],
		    (unsigned long long)mu.mu_end[METRICS_END_CLIENT_RESET],
		    (unsigned long long)mu.mu_end[METRICS_END_UPSTREAM_RESET],
		    (unsigned long long)mu.mu_end[METRICS_END_NO_UPSTREAM],
		    (unsigned long long)mu.mu_end[METRICS_END_ERROR],
		    (unsigned long long)mu.mu_end[METRICS_END_DRAIN],
		    (unsigned long long)mu.mu_refused[METRICS_REFUSED_ACL],
		    (unsigned long long)
		    mu.mu_refused[METRICS_REFUSED_PER_SOURCE]);
	}
	for (i = 0; i < p->p_n; i++)
		worker_post(p->p_workers[i], WORKER_REPORT);
}
