/*
 * metrics.h: the counters behind /metrics and SIGUSR1.
 *
 * Each worker counts into its own slot of each listener (struct
 * metrics_slot, a cache line or more of its own): one writer, so a count
 * is a relaxed load and store, never a locked instruction, and no line is
 * bounced between workers per byte.  The control thread reads the slots
 * at a scrape and sums them (metrics_sum()), then renders the sums in the
 * Prometheus text format (metrics_render(), pure: sums in, text out).
 */
#ifndef RELAY64_METRICS_H
#define RELAY64_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Why a session ended: relay64_session_end_total{reason}. */
enum metrics_end {
	METRICS_END_DONE,
	METRICS_END_IDLE_TIMEOUT,
	METRICS_END_CLIENT_RESET,
	METRICS_END_UPSTREAM_RESET,
	METRICS_END_NO_UPSTREAM,
	METRICS_END_ERROR,
	METRICS_END_DRAIN,
	METRICS_END_N
};

/* Why a client was closed before relaying: relay64_refused_total{reason}. */
enum metrics_refusal {
	METRICS_REFUSED_ACL,
	METRICS_REFUSED_PER_SOURCE,
	METRICS_REFUSED_ACCEPT_PROXY,
	METRICS_REFUSED_N
};

/* Why a connect attempt failed: relay64_upstream_failures_total{reason}. */
enum metrics_upfail {
	METRICS_UPFAIL_REFUSED,
	METRICS_UPFAIL_TIMEOUT,
	METRICS_UPFAIL_UNREACHABLE,
	METRICS_UPFAIL_DNS,
	METRICS_UPFAIL_OTHER,
	METRICS_UPFAIL_N
};

/* Upper bounds (seconds) of relay64_session_duration_seconds's buckets. */
#define METRICS_BUCKETS	12

/* One worker's counts for one listener. */
struct metrics_slot {
	atomic_uint_fast64_t	 ms_sessions;	/* accepted and started */
	atomic_uint_fast64_t	 ms_ended;
	atomic_uint_fast64_t	 ms_up;		/* bytes client -> upstream */
	atomic_uint_fast64_t	 ms_down;
	atomic_uint_fast64_t	 ms_end[METRICS_END_N];
	atomic_uint_fast64_t	 ms_refused[METRICS_REFUSED_N];
	atomic_uint_fast64_t	 ms_upfail[METRICS_UPFAIL_N];
	atomic_uint_fast64_t	 ms_bucket[METRICS_BUCKETS + 1]; /* +Inf last */
	atomic_uint_fast64_t	 ms_usecs;	/* durations' sum */
} __attribute__((aligned(64)));

/* The sums of a listener's slots, as a scrape sees them. */
struct metrics_sums {
	uint64_t		 mu_sessions;
	uint64_t		 mu_ended;
	uint64_t		 mu_up;
	uint64_t		 mu_down;
	uint64_t		 mu_end[METRICS_END_N];
	uint64_t		 mu_refused[METRICS_REFUSED_N];
	uint64_t		 mu_upfail[METRICS_UPFAIL_N];
	uint64_t		 mu_bucket[METRICS_BUCKETS + 1];
	uint64_t		 mu_usecs;
	unsigned		 mu_stale;	/* names on a stale DNS answer */
};

/* What the whole process shows besides its listeners. */
struct metrics_process {
	uint64_t		 mp_paused;	/* accept pauses */
	uint64_t		 mp_fds_open;
	uint64_t		 mp_fds_limit;
};

/* One writer: add n to a counter of one's own slot. */
static inline void
metrics_add(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c,
	    memory_order_relaxed) + n, memory_order_relaxed);
}

struct metrics_slot *metrics_slots_new(size_t);
void		 metrics_slots_free(struct metrics_slot *);
void		 metrics_ended(struct metrics_slot *, enum metrics_end,
		    uint64_t usecs);
enum metrics_upfail metrics_upfail_of(int err);
void		 metrics_sum(const struct metrics_slot *, size_t,
		    struct metrics_sums *);
const char	*metrics_end_name(enum metrics_end);
const char	*metrics_refusal_name(enum metrics_refusal);

/* Rendering: the header lines once, then one call per listener each. */
struct metrics_render_listener {
	const char		*mr_name;
	struct metrics_sums	 mr_sums;
};
int		 metrics_render(struct evbuffer *,
		    const struct metrics_render_listener *, size_t,
		    const struct metrics_process *);

#endif
