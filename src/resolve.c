/*
 * resolve.c: the process's upstream host names, their answers and their
 * refresh timers (see resolve.h for the rules; dns.c asks).
 *
 *   resolve_attach()     a configuration's names: linked, looked up now
 *   resolve_query()      one look-up: the hosts file, else DNS
 *   resolve_answered()   evdns's answer, to one of:
 *   resolve_good()         addresses: they take over, a change is logged
 *   resolve_negative()     NXDOMAIN or none: dropped once confirmed
 *   resolve_failed()       timeout, SERVFAIL, ...: what there is stays
 *   resolve_detach()     names no configuration uses leave the table
 */
#include "config.h"

#include <sys/queue.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "addr.h"
#include "conf.h"
#include "dns.h"
#include "log.h"
#include "resolve.h"

/* "a.b.c.d, " per address. */
#define RESOLVE_ADDRSTRLEN	(RESOLVE_ADDRMAX * (INET_ADDRSTRLEN + 2))

struct resolve_name {
	TAILQ_ENTRY(resolve_name) rn_entry;	/* in r_names while active */
	struct resolve		*rn_res;
	/* The table while active, each linked upstream, a look-up. */
	atomic_uint		 rn_refs;
	pthread_mutex_t		 rn_lock;	/* guards rn_cur */
	struct resolve_answer	*rn_cur;	/* never NULL */
	/* The rest: the control thread's. */
	char			*rn_listener;
	char			 rn_host[ADDR_HOSTMAX + 1];
	int			 rn_active;	/* in the table */
	unsigned		 rn_uses;	/* links of attached configurations */
	int			 rn_mark;	/* to look up, in resolve_attach() */
	struct evdns_request	*rn_req;	/* a look-up under way */
	struct event		 rn_timer;	/* the next look-up */
	int			 rn_good;	/* rn_cur holds a good answer */
	int			 rn_stale;	/* kept past a failed refresh */
	int			 rn_negative;	/* NXDOMAIN/empty, to confirm */
	enum resolve_err	 rn_fail;	/* failure last logged, or OK */
	unsigned		 rn_fails;	/* in a row: the back-off */
	time_t			 rn_when;	/* of the good answer */
};
TAILQ_HEAD(resolve_names, resolve_name);

struct resolve {
	struct event_base	*r_base;
	struct evdns_base	*r_dns;		/* created on first use */
	int			 r_dns_failed;	/* said once */
	struct resolve_names	 r_names;
	int			 r_floor;	/* seconds */
	/* A configuration that waits for its names. */
	struct conf		*r_wait;
	void			(*r_ready)(void *);
	void			*r_ready_arg;
	struct event		 r_wait_ev;	/* the longest wait */
};

static void	resolve_query(struct resolve_name *);
static void	resolve_timer(evutil_socket_t, short, void *);
static void	resolve_check_ready(struct resolve *);
static void	resolve_wait_over(evutil_socket_t, short, void *);

/* The process's DNS resolver, created on first use; NULL: none (said once). */
static struct evdns_base *
resolve_dns(struct resolve *r)
{
	if (r->r_dns != NULL || r->r_dns_failed)
		return r->r_dns;
	if ((r->r_dns = dns_new(r->r_base)) == NULL) {
		log_warnx("cannot set up a DNS resolver: host names resolve "
		    "from %s only", DNS_HOSTS);
		r->r_dns_failed = 1;
	}
	return r->r_dns;
}

struct resolve *
resolve_new(struct event_base *base)
{
	struct resolve	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->r_base = base;
	TAILQ_INIT(&r->r_names);
	r->r_floor = dns_floor(RESOLVE_TTL_FLOOR);
	evtimer_assign(&r->r_wait_ev, base, resolve_wait_over, r);
	return r;
}

const char *
resolve_strerror(enum resolve_err err)
{
	switch (err) {
	case RESOLVE_OK:
		return "resolved";
	case RESOLVE_PENDING:
		return "not resolved yet";
	case RESOLVE_NONAME:
		return "no such name";
	case RESOLVE_NODATA:
		return "no IPv4 address";
	case RESOLVE_TIMEOUT:
		return "timeout";
	case RESOLVE_SERVFAIL:
		return "server failure";
	case RESOLVE_REFUSED:
		return "refused";
	case RESOLVE_FAILED:
		return "failed";
	case RESOLVE_NORESOLVER:
		return "no DNS resolver";
	}
	return "failed";
}

static enum resolve_err
resolve_err_of(int result)
{
	switch (result) {
	case DNS_ERR_NOTEXIST:
		return RESOLVE_NONAME;
	case DNS_ERR_NODATA:
		return RESOLVE_NODATA;
	case DNS_ERR_TIMEOUT:
		return RESOLVE_TIMEOUT;
	case DNS_ERR_SERVERFAILED:
		return RESOLVE_SERVFAIL;
	case DNS_ERR_REFUSED:
		return RESOLVE_REFUSED;
	}
	return RESOLVE_FAILED;
}

/* Answers: immutable once made, freed with their last reference. */

static struct resolve_answer *
resolve_answer_new(enum resolve_err err, const struct in_addr *addr,
    size_t n)
{
	struct resolve_answer	*a;

	if ((a = calloc(1, sizeof(*a) + n * sizeof(a->ra_addr[0]))) == NULL)
		fatal("calloc");
	atomic_init(&a->ra_refs, 1);
	a->ra_err = n > 0 ? RESOLVE_OK : err;
	a->ra_n = n;
	if (n > 0)
		memcpy(a->ra_addr, addr, n * sizeof(a->ra_addr[0]));
	return a;
}

void
resolve_release(struct resolve_answer *a)
{
	if (atomic_fetch_sub_explicit(&a->ra_refs, 1,
	    memory_order_acq_rel) == 1)
		free(a);
}

/* The current answer of rn, at once; the caller releases it. */
struct resolve_answer *
resolve_take(struct resolve_name *rn)
{
	struct resolve_answer	*a;

	pthread_mutex_lock(&rn->rn_lock);
	a = rn->rn_cur;
	atomic_fetch_add_explicit(&a->ra_refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&rn->rn_lock);
	return a;
}

/* From the control thread: a takes rn's place; the old one is let go. */
static void
resolve_swap(struct resolve_name *rn, struct resolve_answer *a)
{
	struct resolve_answer	*old;

	pthread_mutex_lock(&rn->rn_lock);
	old = rn->rn_cur;
	rn->rn_cur = a;
	pthread_mutex_unlock(&rn->rn_lock);
	resolve_release(old);
}

static int
resolve_addr_cmp(const void *a, const void *b)
{
	uint32_t	x = ntohl(((const struct in_addr *)a)->s_addr);
	uint32_t	y = ntohl(((const struct in_addr *)b)->s_addr);

	return x < y ? -1 : x > y;
}

/* Do a and b hold the same addresses, in whatever order? */
static int
resolve_same(const struct resolve_answer *a, const struct resolve_answer *b)
{
	struct in_addr	x[RESOLVE_ADDRMAX], y[RESOLVE_ADDRMAX];

	if (a->ra_n != b->ra_n)
		return 0;
	memcpy(x, a->ra_addr, a->ra_n * sizeof(x[0]));
	memcpy(y, b->ra_addr, b->ra_n * sizeof(y[0]));
	qsort(x, a->ra_n, sizeof(x[0]), resolve_addr_cmp);
	qsort(y, b->ra_n, sizeof(y[0]), resolve_addr_cmp);
	return memcmp(x, y, a->ra_n * sizeof(x[0])) == 0;
}

/* "a.b.c.d, e.f.g.h" */
static const char *
resolve_addrs_str(const struct resolve_answer *a, char *buf, size_t len)
{
	char	one[INET_ADDRSTRLEN];
	size_t	i, off = 0;
	int	n;

	buf[0] = '\0';
	for (i = 0; i < a->ra_n; i++) {
		inet_ntop(AF_INET, &a->ra_addr[i], one, sizeof(one));
		n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", one);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

/* When the kept answer came: a time of day, with the date when older. */
static const char *
resolve_when_str(time_t when, char *buf, size_t len)
{
	struct tm	tm;

	localtime_r(&when, &tm);
	strftime(buf, len, time(NULL) - when < 86400 ? "%H:%M:%S" :
	    "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

/* Names. */

static struct resolve_name *
resolve_name_new(struct resolve *r, const char *listener, const char *host)
{
	struct resolve_name	*rn;

	if ((rn = calloc(1, sizeof(*rn))) == NULL ||
	    (rn->rn_listener = strdup(listener)) == NULL)
		fatal("calloc");
	rn->rn_res = r;
	atomic_init(&rn->rn_refs, 1);		/* the table's */
	if ((errno = pthread_mutex_init(&rn->rn_lock, NULL)) != 0)
		fatal("pthread_mutex_init");
	rn->rn_cur = resolve_answer_new(RESOLVE_PENDING, NULL, 0);
	snprintf(rn->rn_host, sizeof(rn->rn_host), "%s", host);
	rn->rn_active = 1;
	rn->rn_fail = RESOLVE_OK;
	evtimer_assign(&rn->rn_timer, r->r_base, resolve_timer, rn);
	TAILQ_INSERT_TAIL(&r->r_names, rn, rn_entry);
	return rn;
}

static void
resolve_name_ref(struct resolve_name *rn)
{
	atomic_fetch_add_explicit(&rn->rn_refs, 1, memory_order_relaxed);
}

/* In any thread: the last reference frees (the table let go before). */
static void
resolve_name_unref(struct resolve_name *rn)
{
	if (atomic_fetch_sub_explicit(&rn->rn_refs, 1,
	    memory_order_acq_rel) > 1)
		return;
	resolve_release(rn->rn_cur);
	pthread_mutex_destroy(&rn->rn_lock);
	free(rn->rn_listener);
	free(rn);
}

/* lc_unlink: the last reference to lc goes, in any thread. */
static void
resolve_unlink(struct listen_conf *lc)
{
	size_t	i;

	for (i = 0; i < lc->lc_nupstreams; i++) {
		if (lc->lc_upstreams[i].au_name == NULL)
			continue;
		resolve_name_unref(lc->lc_upstreams[i].au_name);
		lc->lc_upstreams[i].au_name = NULL;
	}
}

/* No configuration uses rn any more: no more look-ups. */
static void
resolve_retire(struct resolve_name *rn)
{
	struct resolve	*r = rn->rn_res;

	TAILQ_REMOVE(&r->r_names, rn, rn_entry);
	rn->rn_active = 0;
	evtimer_del(&rn->rn_timer);
	if (rn->rn_req != NULL) {
		/* Its callback still comes, and drops the look-up's reference. */
		evdns_cancel_request(r->r_dns, rn->rn_req);
		rn->rn_req = NULL;
	}
	resolve_name_unref(rn);
}

static void
resolve_schedule(struct resolve_name *rn, int secs)
{
	struct timeval	tv = { secs, 0 };

	evtimer_add(&rn->rn_timer, &tv);
}

/* After a failure: the floor, doubling, up to RESOLVE_RETRY_MAX. */
static int
resolve_backoff(const struct resolve_name *rn)
{
	int		secs = rn->rn_res->r_floor;
	unsigned	i;

	for (i = 1; i < rn->rn_fails && secs < RESOLVE_RETRY_MAX; i++)
		secs *= 2;
	return secs < RESOLVE_RETRY_MAX ? secs : RESOLVE_RETRY_MAX;
}

static int
resolve_clamp(const struct resolve_name *rn, int ttl)
{
	if (ttl < rn->rn_res->r_floor)
		return rn->rn_res->r_floor;
	return ttl > RESOLVE_TTL_CEILING ? RESOLVE_TTL_CEILING : ttl;
}

/* A good answer of n addresses, valid ttl seconds (-1: the hosts file's). */
static void
resolve_good(struct resolve_name *rn, const struct in_addr *addr, size_t n,
    int ttl)
{
	struct resolve_answer	*a = resolve_answer_new(RESOLVE_OK, addr, n);
	char			 old[RESOLVE_ADDRSTRLEN], new[RESOLVE_ADDRSTRLEN];
	const char		*again = rn->rn_stale ?
				    "DNS refresh works again; " : "";

	resolve_addrs_str(a, new, sizeof(new));
	if (rn->rn_good && !resolve_same(rn->rn_cur, a))
		log_notice("listen %s: upstream %s: %saddresses changed: %s -> "
		    "%s", rn->rn_listener, rn->rn_host, again,
		    resolve_addrs_str(rn->rn_cur, old, sizeof(old)), new);
	else if (rn->rn_good && rn->rn_stale)
		log_notice("listen %s: upstream %s: DNS refresh works again: "
		    "%s", rn->rn_listener, rn->rn_host, new);
	else if (rn->rn_good && ttl < 0)
		log_debug("listen %s: upstream %s: read again, the same: %s "
		    "(from %s)", rn->rn_listener, rn->rn_host, new,
		    DNS_HOSTS);
	else if (rn->rn_good)
		log_debug("listen %s: upstream %s: refreshed, the same: %s "
		    "(TTL %d s)", rn->rn_listener, rn->rn_host, new, ttl);
	else if (rn->rn_fail != RESOLVE_OK)
		log_notice("listen %s: upstream %s: resolves %s: %s",
		    rn->rn_listener, rn->rn_host, rn->rn_when != 0 ? "again" :
		    "now", new);
	else if (ttl < 0)
		log_info("listen %s: upstream %s: %s (from %s)",
		    rn->rn_listener, rn->rn_host, new, DNS_HOSTS);
	else
		log_info("listen %s: upstream %s: %s (TTL %d s)",
		    rn->rn_listener, rn->rn_host, new, ttl);
	resolve_swap(rn, a);
	rn->rn_good = 1;
	rn->rn_stale = 0;
	rn->rn_negative = 0;
	rn->rn_fail = RESOLVE_OK;
	rn->rn_fails = 0;
	rn->rn_when = time(NULL);
	resolve_schedule(rn, ttl < 0 ? RESOLVE_TTL_CEILING :
	    resolve_clamp(rn, ttl));
}

/*
 * NXDOMAIN or an empty answer.  Good addresses are dropped only when a
 * second look-up, one floor later, says the same: a flapping server must
 * not empty the pool.
 */
static void
resolve_negative(struct resolve_name *rn, enum resolve_err err)
{
	char	addrs[RESOLVE_ADDRSTRLEN], when[32];

	if (rn->rn_good && !rn->rn_negative) {
		log_warnx("listen %s: upstream %s: DNS says %s; keeping %s "
		    "from %s until a second query confirms it",
		    rn->rn_listener, rn->rn_host, resolve_strerror(err),
		    resolve_addrs_str(rn->rn_cur, addrs, sizeof(addrs)),
		    resolve_when_str(rn->rn_when, when, sizeof(when)));
		rn->rn_negative = 1;
		rn->rn_stale = 1;
		rn->rn_fail = err;
		resolve_schedule(rn, rn->rn_res->r_floor);
		return;
	}
	if (rn->rn_good)
		log_warnx("listen %s: upstream %s: %s, confirmed by a second "
		    "query: dropping %s; new sessions fail until it resolves",
		    rn->rn_listener, rn->rn_host, resolve_strerror(err),
		    resolve_addrs_str(rn->rn_cur, addrs, sizeof(addrs)));
	else if (rn->rn_fail != err)
		log_warnx("listen %s: upstream %s: cannot resolve (%s); "
		    "sessions to it fail until it resolves", rn->rn_listener,
		    rn->rn_host, resolve_strerror(err));
	if (rn->rn_good || rn->rn_cur->ra_err != err)
		resolve_swap(rn, resolve_answer_new(err, NULL, 0));
	rn->rn_good = 0;
	rn->rn_stale = 0;
	rn->rn_negative = 0;
	rn->rn_fail = err;
	rn->rn_fails++;
	resolve_schedule(rn, resolve_backoff(rn));
}

/* Timeout, SERVFAIL, no server: whatever addresses there are stay. */
static void
resolve_failed(struct resolve_name *rn, enum resolve_err err)
{
	char	addrs[RESOLVE_ADDRSTRLEN], when[32];

	rn->rn_fails++;
	if (rn->rn_good) {
		if (!rn->rn_stale || rn->rn_fail != err)
			log_warnx("listen %s: upstream %s: DNS refresh failed "
			    "(%s); keeping %s from %s", rn->rn_listener,
			    rn->rn_host, resolve_strerror(err),
			    resolve_addrs_str(rn->rn_cur, addrs, sizeof(addrs)),
			    resolve_when_str(rn->rn_when, when, sizeof(when)));
		else
			log_debug("listen %s: upstream %s: DNS refresh failed "
			    "again (%s)", rn->rn_listener, rn->rn_host,
			    resolve_strerror(err));
		rn->rn_stale = 1;
	} else {
		if (rn->rn_fail != err)
			log_warnx("listen %s: upstream %s: cannot resolve "
			    "(%s); sessions to it fail until it resolves",
			    rn->rn_listener, rn->rn_host,
			    resolve_strerror(err));
		if (rn->rn_cur->ra_err != err)
			resolve_swap(rn, resolve_answer_new(err, NULL, 0));
	}
	rn->rn_fail = err;
	resolve_schedule(rn, rn->rn_negative ? rn->rn_res->r_floor :
	    resolve_backoff(rn));
}

static void
resolve_answered(int result, char type, int count, int ttl, void *addrs,
    void *arg)
{
	struct resolve_name	*rn = arg;
	struct resolve		*r = rn->rn_res;

	if (result == DNS_ERR_CANCEL || !rn->rn_active) {
		resolve_name_unref(rn);		/* retired meanwhile */
		return;
	}
	rn->rn_req = NULL;
	if (ttl < 0)
		ttl = 0;	/* the top bit set: zero (RFC 2181, 8) */
	if (result == DNS_ERR_NONE && type == DNS_IPv4_A && count > 0)
		resolve_good(rn, addrs, (size_t)count < RESOLVE_ADDRMAX ?
		    (size_t)count : RESOLVE_ADDRMAX, ttl);
	else if (result == DNS_ERR_NONE || result == DNS_ERR_NODATA)
		resolve_negative(rn, RESOLVE_NODATA);
	else if (result == DNS_ERR_NOTEXIST)
		resolve_negative(rn, RESOLVE_NONAME);
	else
		resolve_failed(rn, resolve_err_of(result));
	resolve_name_unref(rn);		/* the look-up's; the table holds one */
	resolve_check_ready(r);
}

/* Look rn up now: the hosts file first, then DNS (unless under way). */
static void
resolve_query(struct resolve_name *rn)
{
	struct resolve		*r = rn->rn_res;
	struct in_addr		 addr[RESOLVE_ADDRMAX];
	struct evdns_base	*dns;
	size_t			 n;

	if (rn->rn_req != NULL)
		return;
	evtimer_del(&rn->rn_timer);
	if ((n = dns_hosts(rn->rn_host, addr, RESOLVE_ADDRMAX)) > 0) {
		resolve_good(rn, addr, n, -1);
		return;
	}
	if ((dns = resolve_dns(r)) == NULL) {
		resolve_failed(rn, RESOLVE_NORESOLVER);
		return;
	}
	resolve_name_ref(rn);
	if ((rn->rn_req = evdns_base_resolve_ipv4(dns, rn->rn_host, 0,
	    resolve_answered, rn)) == NULL) {
		resolve_name_unref(rn);
		resolve_failed(rn, RESOLVE_FAILED);
	}
}

static void
resolve_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	resolve_query(arg);
}

static struct resolve_name *
resolve_find(struct resolve *r, const char *listener, const char *host)
{
	struct resolve_name	*rn;

	TAILQ_FOREACH(rn, &r->r_names, rn_entry)
		if (strcmp(rn->rn_listener, listener) == 0 &&
		    strcasecmp(rn->rn_host, host) == 0)
			return rn;
	return NULL;
}

/* Does conf still wait for a name: none of its addresses, a look-up due? */
static int
resolve_waiting(const struct conf *conf, int say)
{
	const struct listen_conf	*lc;
	const struct resolve_name	*rn;
	size_t				 i;
	int				 waiting = 0;

	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		for (i = 0; i < lc->lc_nupstreams; i++) {
			rn = lc->lc_upstreams[i].au_name;
			if (rn == NULL || rn->rn_good || rn->rn_req == NULL)
				continue;
			if (!say)
				return 1;
			log_warnx("listen %s: upstream %s: no answer after %d "
			    "s; sessions to it fail until one comes",
			    rn->rn_listener, rn->rn_host, RESOLVE_WAIT);
			waiting = 1;
		}
	}
	return waiting;
}

static void
resolve_ready(struct resolve *r)
{
	void	(*ready)(void *) = r->r_ready;
	void	*arg = r->r_ready_arg;

	resolve_cancel_wait(r);
	ready(arg);
}

static void
resolve_check_ready(struct resolve *r)
{
	if (r->r_wait != NULL && !resolve_waiting(r->r_wait, 0))
		resolve_ready(r);
}

static void
resolve_wait_over(evutil_socket_t fd, short what, void *arg)
{
	struct resolve	*r = arg;

	(void)fd;
	(void)what;
	if (r->r_wait == NULL)
		return;
	resolve_waiting(r->r_wait, 1);
	resolve_ready(r);
}

void
resolve_cancel_wait(struct resolve *r)
{
	evtimer_del(&r->r_wait_ev);
	r->r_wait = NULL;
	r->r_ready = NULL;
	r->r_ready_arg = NULL;
}

/*
 * A configuration comes into use (at start, at a reload): link each
 * upstream host name to its entry (a name kept from the running
 * configuration keeps its answer) and look every one up now.  Returns 0
 * when nothing needs waiting for; 1 when a name without any answer is
 * being looked up: ready(arg) is called once every such name has its
 * first answer or failure, or after RESOLVE_WAIT seconds, unless
 * resolve_cancel_wait() comes first.  One configuration waits at a time.
 */
int
resolve_attach(struct resolve *r, struct conf *conf, void (*ready)(void *),
    void *arg)
{
	struct listen_conf	*lc;
	struct addr_upstream	*au;
	struct resolve_name	*rn;
	struct timeval		 tv = { RESOLVE_WAIT, 0 };
	size_t			 i;

	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		lc->lc_unlink = resolve_unlink;
		for (i = 0; i < lc->lc_nupstreams; i++) {
			au = &lc->lc_upstreams[i];
			if (au->au_host[0] == '\0' || au->au_name != NULL)
				continue;
			if ((rn = resolve_find(r, lc->lc_name,
			    au->au_host)) == NULL)
				rn = resolve_name_new(r, lc->lc_name,
				    au->au_host);
			resolve_name_ref(rn);
			au->au_name = rn;
			rn->rn_uses++;
			rn->rn_mark = 1;
		}
	}
	TAILQ_FOREACH(rn, &r->r_names, rn_entry) {
		if (rn->rn_mark) {
			rn->rn_mark = 0;
			resolve_query(rn);
		}
	}
	if (!resolve_waiting(conf, 0))
		return 0;
	r->r_wait = conf;
	r->r_ready = ready;
	r->r_ready_arg = arg;
	evtimer_add(&r->r_wait_ev, &tv);
	return 1;
}

/*
 * conf is no longer in use (replaced, or a reload that failed): its names
 * that no other attached configuration uses leave the table.  Sessions
 * holding its listen_confs still read their last answers.
 */
void
resolve_detach(struct resolve *r, struct conf *conf)
{
	struct listen_conf	*lc;
	struct resolve_name	*rn;
	size_t			 i;

	if (r->r_wait == conf)
		resolve_cancel_wait(r);
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		for (i = 0; i < lc->lc_nupstreams; i++) {
			rn = lc->lc_upstreams[i].au_name;
			if (rn != NULL && rn->rn_active && --rn->rn_uses == 0)
				resolve_retire(rn);
		}
	}
}

/*
 * At the end, after every worker: no more look-ups.  The callbacks of
 * those cancelled run now (evdns defers them), then the resolver goes.
 * Names still linked from listen_confs go with them.
 */
void
resolve_free(struct resolve *r)
{
	struct resolve_name	*rn;

	if (r == NULL)
		return;
	resolve_cancel_wait(r);
	while ((rn = TAILQ_FIRST(&r->r_names)) != NULL)
		resolve_retire(rn);
	if (r->r_dns != NULL) {
		event_base_loop(r->r_base, EVLOOP_NONBLOCK);
		evdns_base_free(r->r_dns, 0);
	}
	free(r);
}

/*
 * The upstreams of lc, for the start-up and reload lines: as written,
 * with the addresses each name has now: "db.example.net:80 (192.0.2.7,
 * 192.0.2.8),192.0.2.10:80".
 */
const char *
resolve_upstreams_str(const struct listen_conf *lc, char *buf, size_t len)
{
	const struct addr_upstream	*au;
	struct resolve_answer		*a;
	char				 one[ADDR_HOSTMAX + 8];
	char				 addrs[RESOLVE_ADDRSTRLEN];
	size_t				 i, off = 0;
	int				 n;

	buf[0] = '\0';
	for (i = 0; i < lc->lc_nupstreams; i++) {
		au = &lc->lc_upstreams[i];
		addr_format_upstream(au, one, sizeof(one));
		addrs[0] = '\0';
		if (au->au_name != NULL) {
			a = resolve_take(au->au_name);
			if (a->ra_n > 0)
				resolve_addrs_str(a, addrs, sizeof(addrs));
			else
				snprintf(addrs, sizeof(addrs), "cannot "
				    "resolve: %s", resolve_strerror(a->ra_err));
			resolve_release(a);
		}
		n = snprintf(buf + off, len - off, "%s%s%s%s%s", i ? "," : "",
		    one, addrs[0] ? " (" : "", addrs, addrs[0] ? ")" : "");
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

/*
 * How many names of lc are served from an expired answer, kept past a
 * failed refresh (relay64_dns_answers_stale, for the stats page).
 */
unsigned
resolve_stale(const struct listen_conf *lc)
{
	const struct resolve_name	*rn;
	size_t				 i, j;
	unsigned			 n = 0;

	for (i = 0; i < lc->lc_nupstreams; i++) {
		if ((rn = lc->lc_upstreams[i].au_name) == NULL || !rn->rn_stale)
			continue;
		for (j = 0; j < i; j++)		/* a name counts once */
			if (lc->lc_upstreams[j].au_name == rn)
				break;
		if (j == i)
			n++;
	}
	return n;
}

/*
 * The addresses of host now, the way the resolver finds them (the hosts
 * file, then DNS), blocking: at most max in out.  Returns how many (at
 * least one), or -1 with why in err.
 */
int
resolve_once(const char *host, struct in_addr *out, size_t max, char *err,
    size_t errlen)
{
	size_t	n;
	int	result = DNS_ERR_UNKNOWN;

	if ((n = dns_hosts(host, out, max)) == 0)
		n = dns_once(host, out, max, &result);
	if (n > 0)
		return (int)n;
	snprintf(err, errlen, "%s", resolve_strerror(resolve_err_of(result)));
	return -1;
}
