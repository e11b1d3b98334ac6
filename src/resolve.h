/*
 * resolve.h: the process's upstream host names and their answers.
 *
 * One resolver for the process, owned by the control thread and run by
 * its loop.  Every host name of a listener's upstreams is one entry
 * (per listener and name: the logs and metrics name the listener), linked
 * from the addr_upstream that names it (au_name).  A name is looked up in
 * /etc/hosts first, then in DNS (A records, through /etc/resolv.conf),
 * when a configuration is attached (at start and at every reload), then
 * again in the background when the answer's TTL runs out, within
 * RESOLVE_TTL_FLOOR and RESOLVE_TTL_CEILING; a hosts-file answer is read
 * again after the ceiling.
 *
 * What a failed look-up does:
 *  - timeout, SERVFAIL, refused, no server: the last good addresses stay
 *    in use, marked stale, and the failure is logged once (again when it
 *    changes, and when the refresh works again); the look-up is retried
 *    after the floor, doubling up to RESOLVE_RETRY_MAX;
 *  - NXDOMAIN, or an answer without A records: the addresses are kept
 *    until a second look-up, one floor later, says the same; only then
 *    are they dropped and sessions fail "cannot resolve";
 *  - a name that never had an answer has nothing to keep: its sessions
 *    fail at once, and it is retried like a failure.
 * An answer that differs from the last (as a set) is logged, old -> new.
 *
 * Workers read answers, never wait: resolve_take() hands out the current
 * answer of a name, immutable and reference counted, at once.  Sharing:
 * each name has a mutex that guards only its pointer to the current
 * answer; taking is lock, count a reference (atomic), unlock, and the
 * control thread swaps the pointer under the same lock and drops its own
 * reference to the old answer.  Whoever drops the last reference frees
 * the answer, in any thread.  An atomic pointer alone would need a
 * reclamation scheme (hazard pointers, or a grace period every worker
 * reports): the answer could be freed between loading the pointer and
 * counting the reference.  The lock is held for a load and an increment,
 * once per name a session's walk reaches, and taken by the writer once
 * per look-up, so it costs next to nothing.
 *
 * Names live as long as something refers to them: the table while a
 * configuration in use names them, each linked addr_upstream (the last
 * reference to a listen_conf drops its links through lc_unlink, in any
 * thread), and a look-up under way.  A name no attached configuration
 * uses any more leaves the table (no more look-ups) and is freed with the
 * last session that still holds an old listen_conf.
 */
#ifndef RELAY64_RESOLVE_H
#define RELAY64_RESOLVE_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>

struct conf;
struct event_base;
struct listen_conf;
struct resolve;
struct resolve_name;

/* Seconds: an answer is used at least this long, and at most that long. */
#define RESOLVE_TTL_FLOOR	5
#define RESOLVE_TTL_CEILING	300
/* Seconds: the longest wait before a failed look-up is tried again. */
#define RESOLVE_RETRY_MAX	60
/* Seconds: how long a start or a reload waits for names without answer. */
#define RESOLVE_WAIT		10
/* Most addresses an answer holds (as many as evdns returns). */
#define RESOLVE_ADDRMAX		32

/* Why a name has no address (RESOLVE_OK: it has). */
enum resolve_err {
	RESOLVE_OK,
	RESOLVE_PENDING,	/* no answer yet */
	RESOLVE_NONAME,		/* NXDOMAIN */
	RESOLVE_NODATA,		/* the name has no A record */
	RESOLVE_TIMEOUT,	/* no answer in time (evdns: SERVFAIL too) */
	RESOLVE_SERVFAIL,
	RESOLVE_REFUSED,
	RESOLVE_FAILED,		/* any other failure */
	RESOLVE_NORESOLVER,	/* no DNS resolver could be set up */
};

/* An answer: never changed once made; ra_n == 0 when ra_err says why. */
struct resolve_answer {
	atomic_uint		 ra_refs;
	enum resolve_err	 ra_err;
	size_t			 ra_n;
	struct in_addr		 ra_addr[];
};

/* From any thread. */
struct resolve_answer *resolve_take(struct resolve_name *);
void		 resolve_release(struct resolve_answer *);
const char	*resolve_strerror(enum resolve_err);

/* From the control thread. */
struct resolve	*resolve_new(struct event_base *);
void		 resolve_free(struct resolve *);
int		 resolve_attach(struct resolve *, struct conf *,
		    void (*ready)(void *), void *);
void		 resolve_detach(struct resolve *, struct conf *);
void		 resolve_cancel_wait(struct resolve *);
const char	*resolve_upstreams_str(const struct listen_conf *, char *,
		    size_t);
unsigned	 resolve_stale(const struct listen_conf *);

/* Standalone, blocking: for a check of the configuration. */
int		 resolve_once(const char *, struct in_addr *, size_t,
		    char *, size_t);

#endif
