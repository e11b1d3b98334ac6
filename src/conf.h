/*
 * conf.h: the configuration, as relay64 owns it.
 *
 * conf.c is the only file that knows libconfuse: it parses a file (or the
 * ad-hoc command line) into a struct conf that holds copies of every value,
 * so the parser's tree is freed before anything else sees the result.  A
 * failed parse leaves nothing behind and reports one "FILE:LINE: message".
 */
#ifndef RELAY64_CONF_H
#define RELAY64_CONF_H

#include <sys/queue.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>

#include "addr.h"

#define CONF_ERRLEN	512

enum conf_balance {
	BALANCE_FIRST,
	BALANCE_ROUNDROBIN,
};

/*
 * One listen section, never changed once parsed.  Reference counted
 * (atomically: sessions of every worker hold references): a listener holds
 * one reference, and every session holds one, so a session keeps the
 * settings it started with for its whole life.
 */
struct listen_conf {
	TAILQ_ENTRY(listen_conf) lc_entry;
	atomic_uint		 lc_refs;
	char			*lc_name;
	int			 lc_line;	/* line of its bind */
	struct sockaddr_in6	 lc_bind;
	int			 lc_v6only;
	struct addr_upstream	*lc_upstreams;
	size_t			 lc_nupstreams;
	enum conf_balance	 lc_balance;
	int			 lc_has_source;
	struct sockaddr_in	 lc_source;
	int			 lc_connect_timeout;	/* seconds, >= 1 */
	int			 lc_idle_timeout;	/* seconds, 0 = never */
	int			 lc_max_conns;		/* 0 = global limit only */
	int			 lc_proxy;	/* enum proxyhdr_version */
	unsigned		 lc_proxy_tlvs;	/* PROXYHDR_TLV_* */
	int			 lc_keepalive;	/* seconds, 0 = off */
	unsigned		 lc_max_per_source;	/* 0 = no limit */
	struct addr_cidr	*lc_allow;	/* none: everyone */
	size_t			 lc_nallow;
	struct addr_cidr	*lc_deny;	/* checked after allow */
	size_t			 lc_ndeny;
	/*
	 * Whoever links lc_upstreams[].au_name (the resolver) sets this: it
	 * is called as the last reference goes, in whichever thread drops it.
	 */
	void			(*lc_unlink)(struct listen_conf *);
};
TAILQ_HEAD(listen_confs, listen_conf);

struct conf {
	char			*c_file;	/* NULL for the ad-hoc form */
	char			*c_user;	/* NULL: stay who we are */
	int			 c_user_line;
	int			 c_log_level;	/* syslog priority */
	int			 c_drain_timeout;
	int			 c_max_conns;	/* 0 = no limit */
	int			 c_workers;	/* 0 = one per CPU */
	int			 c_splice;	/* bulk bytes with splice(2) */
	struct sockaddr_storage	 c_stats;	/* the stats endpoint */
	socklen_t		 c_statslen;	/* 0: none */
	int			 c_stats_line;
	struct listen_confs	 c_listens;
};

/* Defaults, shared by the file and the ad-hoc form. */
#define CONF_CONNECT_TIMEOUT	5
#define CONF_IDLE_TIMEOUT	0
#define CONF_KEEPALIVE		60
#define CONF_DRAIN_TIMEOUT	30
#define CONF_ADHOC_NAME		"cmdline"
#define CONF_WORKERS_MAX	256

struct conf	*conf_load(const char *file, char *err, size_t errlen);
struct conf	*conf_adhoc(const char *listen, const char *upstream,
		    const char *proxy, char *err, size_t errlen);
int		 conf_proxy_parse(const char *);
void		 conf_free(struct conf *);
void		 conf_print(const struct conf *, FILE *);
const char	*conf_upstreams_str(const struct listen_conf *, char *, size_t);
const char	*conf_proxy_text(const struct listen_conf *);

struct listen_conf *conf_listen_ref(struct listen_conf *);
void		 conf_listen_unref(struct listen_conf *);

#endif
