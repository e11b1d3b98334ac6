/*
 * unit_admit.c: admission (src/admit.c): the bounded counts, the rule for
 * when a paused worker is owed a wake-up, the descriptor budget and its
 * pipes, and the client checks (allow, deny, max-per-source).
 */
#include "config.h"

#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "addr.h"
#include "admit.h"
#include "conf.h"
#include "unit.h"

static int	wakes, rearms;

static void
wake(void *arg)
{
	(void)arg;
	wakes++;
}

static void
rearm(void *arg)
{
	(void)arg;
	rearms++;
}

static void
test_counts(struct event_base *base)
{
	struct admit		a;
	struct admit_gate	g;
	struct admit_count	lc;

	admit_init(&a, wake, NULL);
	admit_gate_init(&g, &a, base, rearm, NULL);
	admit_count_init(&lc, 2);
	admit_set_max(&a, 0);
	wakes = 0;

	CHECK(admit_open(&g, &lc), "room at first");
	CHECK(admit_take(&g, &lc) && admit_take(&g, &lc), "two of max 2");
	CHECK(admit_count_get(&lc) == 2 && admit_sessions(&a) == 2,
	    "counted: %u, %u", admit_count_get(&lc), admit_sessions(&a));
	CHECK(!admit_take(&g, &lc), "a third is refused");
	CHECK(admit_sessions(&a) == 2, "a refused take gives the global back");
	admit_give(&g, &lc);
	CHECK(wakes == 1, "the give after a full take wakes once: %d", wakes);
	admit_give(&g, &lc);
	CHECK(wakes == 1, "nobody waits any more: no wake-up: %d", wakes);

	/* The EAGAIN case: take to the bound, give back, nobody paused. */
	CHECK(admit_take(&g, &lc) && admit_take(&g, &lc), "full again");
	admit_give(&g, &lc);
	CHECK(wakes == 1, "undoing a reservation nobody waited on wakes "
	    "nobody: %d", wakes);
	admit_give(&g, &lc);

	/* A worker that found it full and disarmed is owed the wake-up. */
	CHECK(admit_take(&g, &lc) && admit_take(&g, &lc), "full once more");
	CHECK(!admit_open(&g, &lc), "closed while full");
	admit_give(&g, &lc);
	CHECK(wakes == 2, "the give wakes the one that waited: %d", wakes);
	admit_give(&g, &lc);

	/* The global bound, and raising a bound someone waits on. */
	admit_set_max(&a, 1);
	CHECK(admit_take(&g, &lc), "one of the global 1");
	CHECK(!admit_open(&g, &lc), "the global bound closes it");
	admit_set_max(&a, 5);
	CHECK(wakes == 3, "raising a bound waited on wakes: %d", wakes);
	CHECK(admit_open(&g, &lc), "room after the raise");
	admit_give(&g, &lc);

	/* The gate. */
	admit_gate_close(&g);
	CHECK(!admit_open(&g, &lc) && !admit_take(&g, &lc), "a closed gate");
	admit_gate_clear(&g);
}

static void
test_budget(struct event_base *base)
{
	struct admit		a;
	struct admit_gate	g;
	struct admit_count	lc;
	int			i, n;

	admit_init(&a, wake, NULL);
	admit_gate_init(&g, &a, base, rearm, NULL);
	admit_count_init(&lc, 0);
	admit_set_budget(&a, 8 * ADMIT_SESSION_FDS);
	for (n = 0; admit_take(&g, &lc); n++)
		;
	CHECK(n == 8, "the budget holds 8 sessions: %d", n);
	CHECK(admit_fds(&a) == 16, "their descriptors: %u", admit_fds(&a));
	CHECK(!admit_pipe_take(&g), "no pipe in a full budget");
	for (i = 0; i < 8; i++)
		admit_give(&g, &lc);
	/* Pipes leave a quarter of the budget (4 of 16) free. */
	for (n = 0; admit_pipe_take(&g); n++)
		;
	CHECK(n == 6, "pipes take at most three quarters: %d pipes", n);
	CHECK(admit_take(&g, &lc) && admit_take(&g, &lc),
	    "sessions still fit beside the pipes");
	CHECK(!admit_take(&g, &lc), "and then the budget is full");
	admit_pipe_give(&g);
	CHECK(admit_take(&g, &lc), "a pipe given back makes room");
	admit_gate_clear(&g);
}

static struct addr_cidr *
cidrs(const char *const *list, size_t n)
{
	struct addr_cidr	*c = calloc(n, sizeof(*c));
	size_t			 i;

	for (i = 0; i < n; i++)
		if (addr_parse_cidr(list[i], &c[i]) != NULL)
			abort();
	return c;
}

static struct sockaddr_in6
client(const char *s)
{
	struct sockaddr_in6	sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, s, &sin6.sin6_addr) != 1)
		abort();
	return sin6;
}

static void
test_clients(void)
{
	static const char *const allow[] = { "2001:db8::/32", "192.0.2.0/24" };
	static const char *const deny[] = { "2001:db8:bad::/48", "192.0.2.9" };
	struct listen_conf	 lc;
	struct admit_sources	*as = admit_sources_new();
	struct sockaddr_in6	 c;
	int			 rule, held, i;

	memset(&lc, 0, sizeof(lc));
	lc.lc_allow = cidrs(allow, 2);
	lc.lc_nallow = 2;
	lc.lc_deny = cidrs(deny, 2);
	lc.lc_ndeny = 2;
	c = client("2001:db8:1::5");
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_OK && !held,
	    "inside allow");
	c = client("2001:db8:bad::5");
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_DENIED &&
	    rule == 0, "deny wins over allow: rule %d", rule);
	c = client("2001:db9::1");
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_NOT_ALLOWED,
	    "outside allow");
	c = client("::ffff:192.0.2.7");
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_OK,
	    "a mapped client matches IPv4 allow");
	c = client("::ffff:192.0.2.9");
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_DENIED &&
	    rule == 1, "a mapped client matches IPv4 deny");

	/* max-per-source: one /64 is one source; an IPv4 /32 another. */
	free(lc.lc_allow);
	free(lc.lc_deny);
	memset(&lc, 0, sizeof(lc));
	lc.lc_max_per_source = 3;
	for (i = 0; i < 3; i++) {
		c = client(i == 1 ? "2001:db8:1:2::99" : "2001:db8:1:2::1");
		CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_OK &&
		    held, "session %d of the /64", i + 1);
	}
	c = client("2001:db8:1:2:ffff::1");
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_PER_SOURCE &&
	    !held, "a fourth from the same /64");
	c = client("2001:db8:1:3::1");
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_OK,
	    "another /64");
	admit_client_gone(as, &c);
	c = client("::ffff:192.0.2.1");
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_OK,
	    "an IPv4 source counts apart");
	admit_client_gone(as, &c);
	c = client("2001:db8:1:2::1");
	admit_client_gone(as, &c);
	CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_OK,
	    "a slot of the /64 freed");
	for (i = 0; i < 3; i++)
		admit_client_gone(as, &c);
	/* Many sources, each gone again: the table empties. */
	for (i = 0; i < 20000; i++) {
		char	buf[64];

		snprintf(buf, sizeof(buf), "2001:db8:%x:%x::1", i >> 8, i & 255);
		c = client(buf);
		CHECK(admit_client(&lc, as, &c, &rule, &held) == ADMIT_OK,
		    "source %d", i);
		admit_client_gone(as, &c);
	}
	for (i = 0; i < ADMIT_SOURCE_BUCKETS; i++)
		if (as->as_buckets[i] != NULL)
			break;
	CHECK(i == ADMIT_SOURCE_BUCKETS, "no entry left once every source "
	    "is gone (bucket %d)", i);
	admit_sources_free(as);
}

int
main(void)
{
	struct event_base	*base = event_base_new();

	test_counts(base);
	test_budget(base);
	test_clients();
	event_base_free(base);
	return unit_result();
}
