/*
 * upstream.h: choosing and connecting the IPv4 side of a session.
 *
 * An iterator walks a listener's upstreams once, starting where the
 * balance mode says, expanding host names into their IPv4 addresses
 * (resolved asynchronously), and yields one address to try at a time.
 */
#ifndef RELAY64_UPSTREAM_H
#define RELAY64_UPSTREAM_H

#include <netinet/in.h>
#include <stddef.h>

struct listen_conf;
struct worker;
struct evutil_addrinfo;
struct evdns_getaddrinfo_request;

enum upstream_step {
	UPSTREAM_TRY,		/* an address to connect to */
	UPSTREAM_WAIT,		/* resolving; the callback resumes */
	UPSTREAM_END,		/* every upstream was tried */
};

struct upstream_iter {
	const struct listen_conf *ui_lc;
	struct worker		*ui_worker;
	size_t			 ui_start;	/* first entry tried */
	size_t			 ui_done;	/* entries finished */
	struct evutil_addrinfo	*ui_ai;		/* addresses of a name */
	struct evutil_addrinfo	*ui_cur;
	struct evdns_getaddrinfo_request *ui_req;
	int			 ui_resolving;	/* inside evdns_getaddrinfo() */
	int			 ui_resolved;
	int			 ui_dnserr;	/* last resolution error */
	void			(*ui_cb)(void *);
	void			*ui_arg;
};

void	upstream_iter_init(struct upstream_iter *, const struct listen_conf *,
	    size_t start, struct worker *, void (*)(void *), void *);
enum upstream_step upstream_next(struct upstream_iter *, struct sockaddr_in *);
void	upstream_iter_clear(struct upstream_iter *);
const char *upstream_dns_error(const struct upstream_iter *);
int	upstream_connect(const struct sockaddr_in *, const struct sockaddr_in *,
	    int *);

#endif
