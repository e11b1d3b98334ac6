/*
 * upstream.c: choosing and connecting the IPv4 side of a session.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "conf.h"
#include "log.h"
#include "upstream.h"
#include "worker.h"

void
upstream_iter_init(struct upstream_iter *ui, const struct listen_conf *lc,
    size_t start, struct worker *w, void (*cb)(void *), void *arg)
{
	memset(ui, 0, sizeof(*ui));
	ui->ui_lc = lc;
	ui->ui_worker = w;
	ui->ui_start = start % lc->lc_nupstreams;
	ui->ui_cb = cb;
	ui->ui_arg = arg;
}

void
upstream_iter_clear(struct upstream_iter *ui)
{
	if (ui->ui_req != NULL) {
		evdns_getaddrinfo_cancel(ui->ui_req);
		ui->ui_req = NULL;
	}
	if (ui->ui_ai != NULL) {
		evutil_freeaddrinfo(ui->ui_ai);
		ui->ui_ai = NULL;
	}
	ui->ui_cur = NULL;
}

static void
upstream_resolved(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct upstream_iter	*ui = arg;

	if (result == EVUTIL_EAI_CANCEL)
		return;			/* the session is gone */
	ui->ui_req = NULL;
	ui->ui_resolved = 1;
	if (result != 0)
		ui->ui_dnserr = result;
	ui->ui_ai = ui->ui_cur = (result == 0) ? ai : NULL;
	if (!ui->ui_resolving)
		ui->ui_cb(ui->ui_arg);
}

/*
 * The next address to try, in out.  UPSTREAM_WAIT means a name is being
 * resolved and the iterator's callback will be called when it is; then
 * call upstream_next() again.
 */
enum upstream_step
upstream_next(struct upstream_iter *ui, struct sockaddr_in *out)
{
	const struct listen_conf	*lc = ui->ui_lc;
	const struct addr_upstream	*au;
	struct evutil_addrinfo		 hints;

	for (; ui->ui_done < lc->lc_nupstreams; ui->ui_done++) {
		au = &lc->lc_upstreams[(ui->ui_start + ui->ui_done) %
		    lc->lc_nupstreams];
		if (au->au_host[0] == '\0') {
			if (ui->ui_resolved)	/* the literal was tried */
				goto next;
			ui->ui_resolved = 1;
			*out = au->au_sin;
			return UPSTREAM_TRY;
		}
		if (ui->ui_req != NULL)
			return UPSTREAM_WAIT;
		if (!ui->ui_resolved) {
			memset(&hints, 0, sizeof(hints));
			hints.ai_family = AF_INET;
			hints.ai_socktype = SOCK_STREAM;
			hints.ai_protocol = IPPROTO_TCP;
			ui->ui_resolving = 1;
			ui->ui_req = evdns_getaddrinfo(worker_dns(ui->ui_worker),
			    au->au_host, NULL, &hints, upstream_resolved, ui);
			ui->ui_resolving = 0;
			if (!ui->ui_resolved)
				return UPSTREAM_WAIT;
		}
		while (ui->ui_cur != NULL) {
			struct evutil_addrinfo *ai = ui->ui_cur;

			ui->ui_cur = ai->ai_next;
			if (ai->ai_family != AF_INET ||
			    ai->ai_addrlen < sizeof(*out))
				continue;
			memcpy(out, ai->ai_addr, sizeof(*out));
			out->sin_port = au->au_sin.sin_port;
			return UPSTREAM_TRY;
		}
 next:
		upstream_iter_clear(ui);
		ui->ui_resolved = 0;
	}
	return UPSTREAM_END;
}

const char *
upstream_dns_error(const struct upstream_iter *ui)
{
	return ui->ui_dnserr ? evutil_gai_strerror(ui->ui_dnserr) : NULL;
}

/*
 * Start a non-blocking connect to dst, from src when given.  Returns 0 and
 * the socket in *fdp (connected or in progress), or an errno value.
 */
int
upstream_connect(const struct sockaddr_in *dst, const struct sockaddr_in *src,
    int *fdp)
{
	int	fd, on = 1, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return errno;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		goto fail;
	if (src != NULL) {
		/* Allow the same source port towards different upstreams. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
		    sizeof(on));
		if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) == -1)
			goto fail;
	}
	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) == -1 &&
	    errno != EINPROGRESS)
		goto fail;
	*fdp = fd;
	return 0;
 fail:
	err = errno;
	close(fd);
	return err;
}
