/*
 * unit_metrics.c: the counters and their exposition (src/metrics.c):
 * sums over slots, the histogram's buckets, the text of every family.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "unit.h"

static char *
render(const struct metrics_render_listener *l, size_t n,
    const struct metrics_process *mp)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 len;
	char		*text;

	CHECK(metrics_render(b, l, n, mp) == 0, "render");
	len = evbuffer_get_length(b);
	text = malloc(len + 1);
	evbuffer_remove(b, text, len);
	text[len] = '\0';
	evbuffer_free(b);
	return text;
}

static void
has(const char *text, const char *line)
{
	char	want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	CHECK(strstr(text, want) != NULL, "the exposition has \"%s\"", line);
}

int
main(void)
{
	struct metrics_slot		*ms = metrics_slots_new(2);
	struct metrics_render_listener	 l[1];
	struct metrics_process		 mp = { 3, 17, 1024 };
	char				*text;

	CHECK(((uintptr_t)&ms[1] % 64) == 0, "slots on cache lines of their own");
	/* Worker 0: 3 sessions, 2 ended; worker 1: 1 session, ended. */
	metrics_add(&ms[0].ms_sessions, 3);
	metrics_add(&ms[0].ms_up, 1000);
	metrics_add(&ms[1].ms_sessions, 1);
	metrics_add(&ms[1].ms_down, 77);
	metrics_ended(&ms[0], METRICS_END_DONE, 4000);		/* 0.004 s */
	metrics_ended(&ms[0], METRICS_END_IDLE_TIMEOUT, 2000000);	/* 2 s */
	metrics_ended(&ms[1], METRICS_END_DONE, 100000ULL * 1000000);	/* +Inf */
	metrics_add(&ms[1].ms_upfail[metrics_upfail_of(111)], 1);	/* ECONNREFUSED */
	metrics_add(&ms[0].ms_refused[METRICS_REFUSED_PER_SOURCE], 2);
	l[0].mr_name = "web";
	metrics_sum(ms, 2, &l[0].mr_sums);
	CHECK(l[0].mr_sums.mu_sessions == 4 && l[0].mr_sums.mu_ended == 3,
	    "sums: %llu sessions, %llu ended",
	    (unsigned long long)l[0].mr_sums.mu_sessions,
	    (unsigned long long)l[0].mr_sums.mu_ended);
	l[0].mr_sums.mu_stale = 1;
	text = render(l, 1, &mp);
	has(text, "relay64_sessions_total{listener=\"web\"} 4");
	has(text, "relay64_sessions_active{listener=\"web\"} 1");
	has(text, "relay64_bytes_total{listener=\"web\",direction=\"up\"} 1000");
	has(text, "relay64_bytes_total{listener=\"web\",direction=\"down\"} 77");
	has(text, "relay64_session_duration_seconds_bucket{listener=\"web\",le=\"0.005\"} 1");
	has(text, "relay64_session_duration_seconds_bucket{listener=\"web\",le=\"1\"} 1");
	has(text, "relay64_session_duration_seconds_bucket{listener=\"web\",le=\"5\"} 2");
	has(text, "relay64_session_duration_seconds_bucket{listener=\"web\",le=\"86400\"} 2");
	has(text, "relay64_session_duration_seconds_bucket{listener=\"web\",le=\"+Inf\"} 3");
	has(text, "relay64_session_duration_seconds_count{listener=\"web\"} 3");
	has(text, "relay64_session_duration_seconds_sum{listener=\"web\"} 100002.004000");
	has(text, "relay64_session_end_total{listener=\"web\",reason=\"done\"} 2");
	has(text, "relay64_session_end_total{listener=\"web\",reason=\"idle_timeout\"} 1");
	has(text, "relay64_session_end_total{listener=\"web\",reason=\"drain\"} 0");
	has(text, "relay64_upstream_failures_total{listener=\"web\",reason=\"refused\"} 1");
	has(text, "relay64_refused_total{listener=\"web\",reason=\"per_source\"} 2");
	has(text, "relay64_dns_answers_stale{listener=\"web\"} 1");
	has(text, "relay64_accept_paused_total 3");
	has(text, "relay64_descriptors_open 17");
	has(text, "relay64_descriptors_budget 1024");
	has(text, "# TYPE relay64_session_duration_seconds histogram");
	CHECK(strncmp(text, "# HELP relay64_sessions_total ", 30) == 0,
	    "the text starts with a HELP line");
	free(text);
	metrics_slots_free(ms);
	return unit_result();
}
