/*
 * admit.c: the bounded counts, each worker's gate, and the one rule for
 * when a paused worker is owed a wake-up.
 */
#include "config.h"

#include <sys/random.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "addr.h"
#include "admit.h"
#include "conf.h"
#include "log.h"

/* How long a worker stops accepting after running out of descriptors. */
#define ADMIT_FDPAUSE_SEC	1

static void	admit_resume(evutil_socket_t, short, void *);

void
admit_init(struct admit *a, void (*wake)(void *), void *arg)
{
	admit_count_init(&a->a_global, 0);
	admit_count_init(&a->a_fds, 0);
	a->a_wake = wake;
	a->a_wake_arg = arg;
}

void
admit_count_init(struct admit_count *ac, unsigned max)
{
	atomic_init(&ac->ac_n, 0);
	atomic_init(&ac->ac_max, max);
	atomic_init(&ac->ac_waited, 0);
}

unsigned
admit_count_get(struct admit_count *ac)
{
	return atomic_load_explicit(&ac->ac_n, memory_order_relaxed);
}

unsigned
admit_sessions(struct admit *a)
{
	return admit_count_get(&a->a_global);
}

/* Descriptors held by sessions (their sockets and pipes). */
unsigned
admit_fds(struct admit *a)
{
	return admit_count_get(&a->a_fds);
}

/*
 * Whether ac has room.  A count found full is marked waited on first and
 * looked at again after: either the giver that frees a slot sees the mark
 * (and owes the wake-up), or this look sees its slot freed.  Both sides
 * use sequentially consistent operations, so one of the two always holds.
 */
static int
admit_count_room(struct admit_count *ac, unsigned k)
{
	unsigned	max = atomic_load(&ac->ac_max);

	if (max == 0 || atomic_load(&ac->ac_n) + k <= max)
		return 1;
	atomic_store(&ac->ac_waited, 1);
	max = atomic_load(&ac->ac_max);
	return max == 0 || atomic_load(&ac->ac_n) + k <= max;
}

/* A slot freed (or the bound raised): wake the paused, if any wait. */
static void
admit_count_freed(struct admit *a, struct admit_count *ac)
{
	if (atomic_load(&ac->ac_waited) && atomic_exchange(&ac->ac_waited, 0))
		a->a_wake(a->a_wake_arg);
}

/* Reserve k of ac; 0 when its bound would be passed (and marked). */
static int
admit_count_take(struct admit_count *ac, unsigned k)
{
	unsigned	n, max;

	for (;;) {
		n = atomic_load(&ac->ac_n);
		max = atomic_load(&ac->ac_max);
		if (max != 0 && n + k > max) {
			if (!admit_count_room(ac, k))
				return 0;
			continue;
		}
		if (atomic_compare_exchange_weak(&ac->ac_n, &n, n + k))
			return 1;
	}
}

static void
admit_count_give(struct admit *a, struct admit_count *ac, unsigned k)
{
	atomic_fetch_sub(&ac->ac_n, k);
	admit_count_freed(a, ac);
}

/* From the control thread (a reload): a raised bound may free waiters. */
void
admit_count_set_max(struct admit *a, struct admit_count *ac, unsigned max)
{
	atomic_store(&ac->ac_max, max);
	admit_count_freed(a, ac);
}

void
admit_set_max(struct admit *a, unsigned max)
{
	admit_count_set_max(a, &a->a_global, max);
}

/* The descriptors sessions may hold (derived from RLIMIT_NOFILE). */
void
admit_set_budget(struct admit *a, unsigned fds)
{
	admit_count_set_max(a, &a->a_fds, fds);
}

void
admit_gate_init(struct admit_gate *g, struct admit *a,
    struct event_base *base, void (*rearm)(void *), void *arg)
{
	g->ag_admit = a;
	g->ag_closed = 0;
	g->ag_fdpause = 0;
	g->ag_rearm = rearm;
	g->ag_arg = arg;
	atomic_init(&g->ag_paused, 0);
	evtimer_assign(&g->ag_resume, base, admit_resume, g);
}

void
admit_gate_clear(struct admit_gate *g)
{
	event_del(&g->ag_resume);
}

/* This worker accepts no more (stopping, or its one --once client). */
void
admit_gate_close(struct admit_gate *g)
{
	g->ag_closed = 1;
}

/*
 * May a listener counted in lc accept now, as far as this worker can tell?
 * When not because a count is full, that count is marked waited on, so
 * the session end that frees a slot wakes this worker.
 */
int
admit_open(struct admit_gate *g, struct admit_count *lc)
{
	struct admit	*a = g->ag_admit;

	if (g->ag_closed || g->ag_fdpause)
		return 0;
	return admit_count_room(&a->a_global, 1) &&
	    admit_count_room(&a->a_fds, ADMIT_SESSION_FDS) &&
	    admit_count_room(lc, 1);
}

/*
 * Reserve one session: a slot in the global and lc's count, and its
 * descriptors in the budget; 0 when any is full.
 */
int
admit_take(struct admit_gate *g, struct admit_count *lc)
{
	struct admit	*a = g->ag_admit;

	if (g->ag_closed || g->ag_fdpause || !admit_count_take(&a->a_global, 1))
		return 0;
	if (!admit_count_take(&a->a_fds, ADMIT_SESSION_FDS)) {
		admit_count_give(a, &a->a_global, 1);
		return 0;
	}
	if (!admit_count_take(lc, 1)) {
		admit_count_give(a, &a->a_fds, ADMIT_SESSION_FDS);
		admit_count_give(a, &a->a_global, 1);
		return 0;
	}
	return 1;
}

/* Give a session's slot back (it ended, or its accept found nobody). */
void
admit_give(struct admit_gate *g, struct admit_count *lc)
{
	struct admit	*a = g->ag_admit;

	admit_count_give(a, lc, 1);
	admit_count_give(a, &a->a_fds, ADMIT_SESSION_FDS);
	admit_count_give(a, &a->a_global, 1);
}

/* A listener of this worker stopped accepting (at a limit, out of fds). */
void
admit_paused(struct admit_gate *g)
{
	atomic_store_explicit(&g->ag_paused, atomic_load_explicit(
	    &g->ag_paused, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* From any thread (a scrape). */
uint64_t
admit_paused_count(struct admit_gate *g)
{
	return atomic_load_explicit(&g->ag_paused, memory_order_relaxed);
}

/*
 * Room in the budget for a splice pipe?  Pipes may use the budget only
 * while a quarter of it stays free for new sessions; beyond, a bulk
 * direction copies.  Nobody waits for a pipe, so nothing is marked.
 */
int
admit_pipe_take(struct admit_gate *g)
{
	struct admit_count	*ac = &g->ag_admit->a_fds;
	unsigned		 n, max;

	do {
		n = atomic_load(&ac->ac_n);
		max = atomic_load(&ac->ac_max);
		if (max != 0 && n + ADMIT_PIPE_FDS > max - max / 4)
			return 0;
	} while (!atomic_compare_exchange_weak(&ac->ac_n, &n,
	    n + ADMIT_PIPE_FDS));
	return 1;
}

void
admit_pipe_give(struct admit_gate *g)
{
	admit_count_give(g->ag_admit, &g->ag_admit->a_fds, ADMIT_PIPE_FDS);
}

/*
 * Out of descriptors (or kernel memory): stop accepting in this worker for
 * a while, keep every session, and resume by timer.  Without the pause, a
 * level-triggered listener would fire again at once, forever.
 */
void
admit_fd_exhausted(struct admit_gate *g)
{
	struct timeval	tv = { ADMIT_FDPAUSE_SEC, 0 };

	if (g->ag_fdpause)
		return;
	log_warnx("out of descriptors: accept paused for %d s with %u "
	    "sessions open", ADMIT_FDPAUSE_SEC, admit_sessions(g->ag_admit));
	g->ag_fdpause = 1;
	evtimer_add(&g->ag_resume, &tv);
	g->ag_rearm(g->ag_arg);
}

static void
admit_resume(evutil_socket_t fd, short what, void *arg)
{
	struct admit_gate	*g = arg;

	(void)fd;
	(void)what;
	g->ag_fdpause = 0;
	g->ag_rearm(g->ag_arg);
}

/* One source's count of open sessions. */
struct admit_source {
	struct admit_source	*so_next;
	uint8_t			 so_key[16];
	unsigned		 so_n;
};

struct admit_sources *
admit_sources_new(void)
{
	struct admit_sources	*as;
	size_t			 i;

	if ((as = calloc(1, sizeof(*as))) == NULL)
		return NULL;
	for (i = 0; i < ADMIT_SOURCE_LOCKS; i++)
		pthread_mutex_init(&as->as_locks[i], NULL);
	if (getrandom(as->as_seed, sizeof(as->as_seed), GRND_NONBLOCK) !=
	    sizeof(as->as_seed)) {
		as->as_seed[0] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
		as->as_seed[1] = (uint64_t)(uintptr_t)as;
	}
	return as;
}

void
admit_sources_free(struct admit_sources *as)
{
	struct admit_source	*so;
	size_t			 i;

	if (as == NULL)
		return;
	for (i = 0; i < ADMIT_SOURCE_BUCKETS; i++)
		while ((so = as->as_buckets[i]) != NULL) {
			as->as_buckets[i] = so->so_next;
			free(so);
		}
	for (i = 0; i < ADMIT_SOURCE_LOCKS; i++)
		pthread_mutex_destroy(&as->as_locks[i]);
	free(as);
}

/* A keyed mix of the 16 key bytes (splitmix64's finaliser, twice). */
static size_t
admit_source_bucket(const struct admit_sources *as, const uint8_t key[16])
{
	uint64_t	a, b;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	a ^= as->as_seed[0];
	a = (a ^ (a >> 30)) * 0xbf58476d1ce4e5b9ULL;
	a = (a ^ (a >> 27)) * 0x94d049bb133111ebULL;
	a ^= b ^ as->as_seed[1];
	a = (a ^ (a >> 31)) * 0xbf58476d1ce4e5b9ULL;
	a ^= a >> 29;
	return (size_t)(a % ADMIT_SOURCE_BUCKETS);
}

/* One more session of key, unless max are open; 1 when taken. */
static int
admit_source_take(struct admit_sources *as, const uint8_t key[16],
    unsigned max)
{
	size_t			 b = admit_source_bucket(as, key);
	pthread_mutex_t		*lock = &as->as_locks[b % ADMIT_SOURCE_LOCKS];
	struct admit_source	*so;
	int			 taken = 0;

	pthread_mutex_lock(lock);
	for (so = as->as_buckets[b]; so != NULL; so = so->so_next)
		if (memcmp(so->so_key, key, 16) == 0)
			break;
	if (so == NULL && (so = calloc(1, sizeof(*so))) != NULL) {
		memcpy(so->so_key, key, 16);
		so->so_next = as->as_buckets[b];
		as->as_buckets[b] = so;
	}
	if (so != NULL && so->so_n < max) {
		so->so_n++;
		taken = 1;
	}
	pthread_mutex_unlock(lock);
	return taken;
}

static void
admit_source_give(struct admit_sources *as, const uint8_t key[16])
{
	size_t			 b = admit_source_bucket(as, key);
	pthread_mutex_t		*lock = &as->as_locks[b % ADMIT_SOURCE_LOCKS];
	struct admit_source	*so, **pp;

	pthread_mutex_lock(lock);
	for (pp = &as->as_buckets[b]; (so = *pp) != NULL; pp = &so->so_next)
		if (memcmp(so->so_key, key, 16) == 0)
			break;
	if (so != NULL && --so->so_n == 0) {
		*pp = so->so_next;
		free(so);
	}
	pthread_mutex_unlock(lock);
}

/*
 * A client just accepted, before anything is done for it: allow (when
 * set, an entry must match), then deny, then max-per-source.  An IPv4
 * client of a dual-stack listener is matched and counted as IPv4.  *rule
 * is the entry that decided (for the log), *held whether a per-source
 * slot was taken, to be given back by admit_client_gone().
 */
enum admit_verdict
admit_client(const struct listen_conf *lc, struct admit_sources *as,
    const struct sockaddr_in6 *peer, int *rule, int *held)
{
	uint8_t	key[16];

	*held = 0;
	*rule = -1;
	if (lc->lc_nallow > 0 &&
	    addr_cidr_match(lc->lc_allow, lc->lc_nallow, peer) == -1)
		return ADMIT_NOT_ALLOWED;
	if (lc->lc_ndeny > 0 &&
	    (*rule = addr_cidr_match(lc->lc_deny, lc->lc_ndeny, peer)) != -1)
		return ADMIT_DENIED;
	if (lc->lc_max_per_source == 0 || as == NULL)
		return ADMIT_OK;
	addr_source_key(peer, key);
	if (!admit_source_take(as, key, lc->lc_max_per_source))
		return ADMIT_PER_SOURCE;
	*held = 1;
	return ADMIT_OK;
}

/* A session that held a per-source slot ended. */
void
admit_client_gone(struct admit_sources *as, const struct sockaddr_in6 *peer)
{
	uint8_t	key[16];

	addr_source_key(peer, key);
	admit_source_give(as, key);
}
