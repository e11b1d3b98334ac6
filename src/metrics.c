/*
 * metrics.c: per-worker counters, their sums, and the Prometheus text
 * exposition format (version 0.0.4) of SPEC section 7.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics.h"

/* relay64_session_duration_seconds: upper bounds of the buckets. */
static const double	metrics_bounds[METRICS_BUCKETS] = {
	0.005, 0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400
};
static const char	*metrics_bound_names[METRICS_BUCKETS] = {
	"0.005", "0.05", "0.25", "1", "5", "15", "60", "300", "900", "3600",
	"14400", "86400"
};

static const char *const metrics_end_names[METRICS_END_N] = {
	"done", "idle_timeout", "client_reset", "upstream_reset",
	"no_upstream", "error", "drain"
};
static const char *const metrics_refusal_names[METRICS_REFUSED_N] = {
	"acl", "per_source", "accept_proxy"
};
static const char *const metrics_upfail_names[METRICS_UPFAIL_N] = {
	"refused", "timeout", "unreachable", "dns", "other"
};

/* n zeroed slots, one per worker, each on cache lines of its own. */
struct metrics_slot *
metrics_slots_new(size_t n)
{
	struct metrics_slot	*ms;

	if (posix_memalign((void **)&ms, 64, n * sizeof(*ms)) != 0)
		return NULL;
	memset(ms, 0, n * sizeof(*ms));
	return ms;
}

void
metrics_slots_free(struct metrics_slot *ms)
{
	free(ms);
}

/*
 * A session of this slot ended: its reason and duration.  The bucket and
 * the sum first, the end count last (release), so a scrape that sees the
 * end counted sees the rest too.
 */
void
metrics_ended(struct metrics_slot *ms, enum metrics_end why, uint64_t usecs)
{
	size_t	b;

	for (b = 0; b < METRICS_BUCKETS; b++)
		if ((double)usecs <= metrics_bounds[b] * 1e6)
			break;
	metrics_add(&ms->ms_bucket[b], 1);
	metrics_add(&ms->ms_usecs, usecs);
	metrics_add(&ms->ms_end[why], 1);
	atomic_store_explicit(&ms->ms_ended, atomic_load_explicit(
	    &ms->ms_ended, memory_order_relaxed) + 1, memory_order_release);
}

/* The reason label of a failed connect's errno. */
enum metrics_upfail
metrics_upfail_of(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return METRICS_UPFAIL_REFUSED;
	case ETIMEDOUT:
		return METRICS_UPFAIL_TIMEOUT;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
		return METRICS_UPFAIL_UNREACHABLE;
	default:
		return METRICS_UPFAIL_OTHER;
	}
}

static uint64_t
metrics_get(const atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_acquire);
}

/*
 * Sum n slots.  Ends are read before starts, so sessions open never comes
 * out below zero; the histogram's count is its buckets' sum, so the
 * histogram is consistent within one scrape.
 */
void
metrics_sum(const struct metrics_slot *ms, size_t n, struct metrics_sums *mu)
{
	size_t	i, k;

	memset(mu, 0, sizeof(*mu));
	for (i = 0; i < n; i++)
		mu->mu_ended += metrics_get(&ms[i].ms_ended);
	for (i = 0; i < n; i++) {
		mu->mu_sessions += metrics_get(&ms[i].ms_sessions);
		mu->mu_up += metrics_get(&ms[i].ms_up);
		mu->mu_down += metrics_get(&ms[i].ms_down);
		for (k = 0; k < METRICS_END_N; k++)
			mu->mu_end[k] += metrics_get(&ms[i].ms_end[k]);
		for (k = 0; k < METRICS_REFUSED_N; k++)
			mu->mu_refused[k] += metrics_get(&ms[i].ms_refused[k]);
		for (k = 0; k < METRICS_UPFAIL_N; k++)
			mu->mu_upfail[k] += metrics_get(&ms[i].ms_upfail[k]);
		for (k = 0; k <= METRICS_BUCKETS; k++)
			mu->mu_bucket[k] += metrics_get(&ms[i].ms_bucket[k]);
		mu->mu_usecs += metrics_get(&ms[i].ms_usecs);
	}
	if (mu->mu_ended > mu->mu_sessions)
		mu->mu_ended = mu->mu_sessions;
}

const char *
metrics_end_name(enum metrics_end why)
{
	return metrics_end_names[why];
}

const char *
metrics_refusal_name(enum metrics_refusal why)
{
	return metrics_refusal_names[why];
}

static void
metrics_family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/*
 * A counter family with a reason label: for each listener, the array of
 * counts at offset off of its sums, one sample per name.
 */
static void
metrics_reasons(struct evbuffer *b, const char *name, const char *help,
    const struct metrics_render_listener *l, size_t n,
    const char *const *names, size_t nnames, size_t off)
{
	const uint64_t	*v;
	size_t		 i, k;

	metrics_family(b, name, "counter", help);
	for (i = 0; i < n; i++) {
		v = (const uint64_t *)(const void *)((const char *)&l[i].mr_sums +
		    off);
		for (k = 0; k < nnames; k++)
			evbuffer_add_printf(b, "%s{listener=\"%s\",reason=\"%s\"} "
			    "%" PRIu64 "\n", name, l[i].mr_name, names[k], v[k]);
	}
}

/*
 * The exposition: every family of SPEC section 7, each listener's series
 * inside it (titles are letters, digits, '-', '_' and '.', so label
 * values need no escaping).  Returns 0, or -1 when out of memory.
 */
int
metrics_render(struct evbuffer *b, const struct metrics_render_listener *l,
    size_t n, const struct metrics_process *mp)
{
	const struct metrics_sums	*mu;
	size_t				 i, k;
	uint64_t			 cum;

	metrics_family(b, "relay64_sessions_total", "counter",
	    "Sessions accepted.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "relay64_sessions_total{listener=\"%s\"} "
		    "%" PRIu64 "\n", l[i].mr_name, l[i].mr_sums.mu_sessions);
	metrics_family(b, "relay64_sessions_active", "gauge",
	    "Sessions open now.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "relay64_sessions_active{listener=\"%s\"} "
		    "%" PRIu64 "\n", l[i].mr_name, l[i].mr_sums.mu_sessions -
		    l[i].mr_sums.mu_ended);
	metrics_family(b, "relay64_bytes_total", "counter",
	    "Bytes relayed (PROXY headers not counted); up is client to "
	    "upstream.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b,
		    "relay64_bytes_total{listener=\"%s\",direction=\"up\"} "
		    "%" PRIu64 "\n"
		    "relay64_bytes_total{listener=\"%s\",direction=\"down\"} "
		    "%" PRIu64 "\n", l[i].mr_name, l[i].mr_sums.mu_up,
		    l[i].mr_name, l[i].mr_sums.mu_down);
	metrics_family(b, "relay64_session_duration_seconds", "histogram",
	    "Duration of ended sessions.");
	for (i = 0; i < n; i++) {
		mu = &l[i].mr_sums;
		for (k = 0, cum = 0; k < METRICS_BUCKETS; k++) {
			cum += mu->mu_bucket[k];
			evbuffer_add_printf(b, "relay64_session_duration_seconds_"
			    "bucket{listener=\"%s\",le=\"%s\"} %" PRIu64 "\n",
			    l[i].mr_name, metrics_bound_names[k], cum);
		}
		cum += mu->mu_bucket[METRICS_BUCKETS];
		evbuffer_add_printf(b, "relay64_session_duration_seconds_bucket"
		    "{listener=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
		    "relay64_session_duration_seconds_sum{listener=\"%s\"} "
		    "%" PRIu64 ".%06" PRIu64 "\n"
		    "relay64_session_duration_seconds_count{listener=\"%s\"} "
		    "%" PRIu64 "\n", l[i].mr_name, cum, l[i].mr_name,
		    mu->mu_usecs / 1000000, mu->mu_usecs % 1000000,
		    l[i].mr_name, cum);
	}
	metrics_reasons(b, "relay64_refused_total", "Clients closed before "
	    "relaying, by reason.", l, n, metrics_refusal_names,
	    METRICS_REFUSED_N, offsetof(struct metrics_sums, mu_refused));
	metrics_reasons(b, "relay64_upstream_failures_total", "Upstream connect "
	    "attempts that failed, by reason.", l, n, metrics_upfail_names,
	    METRICS_UPFAIL_N, offsetof(struct metrics_sums, mu_upfail));
	metrics_reasons(b, "relay64_session_end_total", "Ended sessions, by why "
	    "they ended.", l, n, metrics_end_names, METRICS_END_N,
	    offsetof(struct metrics_sums, mu_end));
	metrics_family(b, "relay64_dns_answers_stale", "gauge",
	    "Upstream names served from an expired DNS answer.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "relay64_dns_answers_stale{listener=\"%s\"} "
		    "%u\n", l[i].mr_name, l[i].mr_sums.mu_stale);
	metrics_family(b, "relay64_accept_paused_total", "counter",
	    "Times accepting paused at a limit or for want of descriptors.");
	evbuffer_add_printf(b, "relay64_accept_paused_total %" PRIu64 "\n",
	    mp->mp_paused);
	metrics_family(b, "relay64_descriptors_open", "gauge",
	    "Descriptors the process has open.");
	evbuffer_add_printf(b, "relay64_descriptors_open %" PRIu64 "\n",
	    mp->mp_fds_open);
	metrics_family(b, "relay64_descriptors_budget", "gauge",
	    "The descriptor limit (RLIMIT_NOFILE).");
	return evbuffer_add_printf(b, "relay64_descriptors_budget %" PRIu64
	    "\n", mp->mp_fds_limit) < 0 ? -1 : 0;
}
