/*
 * check.c: relay64 -C, the answer to "why does IPv6 work and IPv4 not".
 *
 * For every listener of a configuration: whether its address can be bound
 * now (and when not, by what kind of socket the port is held: IPv4,
 * dual-stack or IPv6-only, and by which program), which clients it will
 * take, and one TCP connect to each upstream address with the listener's
 * connect-timeout.  One line per finding, in plain words with the likely
 * cause.  It binds nothing for long, sends no byte anywhere, and works
 * while relay64 itself runs (its own listeners are "in use by relay64").
 * Blocking calls are fine here: this is a one-shot command, no loop.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "check.h"
#include "conf.h"

/* A listening socket on the port, as /proc/net/tcp{,6} shows it. */
struct check_holder {
	int		 ch_family;	/* AF_INET, AF_INET6 */
	char		 ch_addr[INET6_ADDRSTRLEN];
	unsigned long	 ch_inode;
	char		 ch_prog[64];	/* "nginx (pid 123)", or "" */
};

#define CHECK_HOLDERS	16

/* Can a TCP socket of family bind port on the wildcard now (not listen)? */
static int
check_probe(int family, uint16_t port, int v6only)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	int			 fd, on = 1, rc;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	}
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		    sizeof(v6only));
	rc = bind(fd, (struct sockaddr *)&ss, family == AF_INET ?
	    sizeof(*sin) : sizeof(*sin6));
	close(fd);
	return rc == 0 ? 1 : (errno == EADDRINUSE ? 0 : -1);
}

/* The program that has socket inode open: "name (pid N)", or "". */
static void
check_owner(unsigned long inode, char *buf, size_t len)
{
	char		 path[640], link[64], want[64], comm[32];
	struct dirent	*pd, *fd;
	DIR		*procs, *fds;
	FILE		*fp;
	ssize_t		 n;

	buf[0] = '\0';
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	if ((procs = opendir("/proc")) == NULL)
		return;
	while (buf[0] == '\0' && (pd = readdir(procs)) != NULL) {
		if (pd->d_name[0] < '0' || pd->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pd->d_name);
		if ((fds = opendir(path)) == NULL)
			continue;
		while ((fd = readdir(fds)) != NULL) {
			snprintf(path, sizeof(path), "/proc/%s/fd/%s",
			    pd->d_name, fd->d_name);
			if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) != 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%s/comm",
			    pd->d_name);
			comm[0] = '\0';
			if ((fp = fopen(path, "r")) != NULL) {
				if (fgets(comm, sizeof(comm), fp) == NULL)
					comm[0] = '\0';
				fclose(fp);
			}
			comm[strcspn(comm, "\n")] = '\0';
			snprintf(buf, len, "%s (pid %ld)", comm[0] ? comm : "?",
			    strtol(pd->d_name, NULL, 10));
			break;
		}
		closedir(fds);
	}
	closedir(procs);
}

/* The listening sockets on port, from /proc/net/tcp and tcp6. */
static size_t
check_holders(uint16_t port, struct check_holder *h, size_t max)
{
	static const struct {
		const char	*path;
		int		 family;
	} tables[] = {
		{ "/proc/net/tcp", AF_INET },
		{ "/proc/net/tcp6", AF_INET6 },
	};
	char		 line[512], hex[40];
	unsigned int	 lport, state, w[4];
	unsigned long	 inode;
	struct in6_addr	 a6;
	struct in_addr	 a4;
	size_t		 t, n = 0, i;
	FILE		*fp;

	for (t = 0; t < 2; t++) {
		if ((fp = fopen(tables[t].path, "r")) == NULL)
			continue;
		while (n < max && fgets(line, sizeof(line), fp) != NULL) {
			if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x "
			    "%x %*s %*s %*s %*u %*u %lu", hex, &lport, &state,
			    &inode) != 4 || lport != port || state != 0x0a)
				continue;
			h[n].ch_family = tables[t].family;
			h[n].ch_inode = inode;
			if (tables[t].family == AF_INET) {
				sscanf(hex, "%8x", &w[0]);
				a4.s_addr = w[0];
				inet_ntop(AF_INET, &a4, h[n].ch_addr,
				    sizeof(h[n].ch_addr));
			} else {
				sscanf(hex, "%8x%8x%8x%8x", &w[0], &w[1], &w[2],
				    &w[3]);
				for (i = 0; i < 4; i++)
					memcpy(&a6.s6_addr[i * 4], &w[i], 4);
				inet_ntop(AF_INET6, &a6, h[n].ch_addr,
				    sizeof(h[n].ch_addr));
			}
			check_owner(inode, h[n].ch_prog, sizeof(h[n].ch_prog));
			n++;
		}
		fclose(fp);
	}
	return n;
}

/* Is the IPv6 address on an interface here, and still tentative (DAD)? */
static int
check_tentative(const struct in6_addr *a)
{
	char		 hex[33], want[33];
	unsigned int	 flags;
	size_t		 i;
	FILE		*fp;
	int		 found = 0;

	for (i = 0; i < 16; i++)
		snprintf(want + i * 2, 3, "%02x", a->s6_addr[i]);
	if ((fp = fopen("/proc/net/if_inet6", "r")) == NULL)
		return 0;
	while (fscanf(fp, "%32s %*x %*x %*x %x %*s", hex, &flags) == 2)
		if (strcmp(hex, want) == 0 && (flags & 0x40))	/* TENTATIVE */
			found = 1;
	fclose(fp);
	return found;
}

/*
 * Bind state of lc: returns 1 when relay64 can serve it (free, or held by
 * relay64 itself), 0 otherwise; prints one line, and a second one when the
 * port's IPv4 side is another program's.
 */
static int
check_bind(const struct listen_conf *lc, FILE *out)
{
	struct check_holder	 h[CHECK_HOLDERS];
	char			 addr[ADDR_STRLEN], who[256], *p;
	uint16_t		 port = ntohs(lc->lc_bind.sin6_port);
	size_t			 n, i;
	int			 fd, on = 1, v6only = lc->lc_v6only, err, ours = 0;
	int			 v4held, v6held, any4 = 0;
	const char		*kind;

	addr_format((const struct sockaddr *)&lc->lc_bind, addr, sizeof(addr));
	if ((fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(out, "listen %s: bind %s: cannot make a socket: %s\n",
		    lc->lc_name, addr, strerror(errno));
		return 0;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	err = bind(fd, (const struct sockaddr *)&lc->lc_bind,
	    sizeof(lc->lc_bind)) == 0 ? 0 : errno;
	close(fd);
	n = port != 0 ? check_holders(port, h, CHECK_HOLDERS) : 0;
	if (err == 0) {
		fprintf(out, "listen %s: bind %s: free%s\n", lc->lc_name, addr,
		    port == 0 ? " (port 0: the kernel picks one)" : "");
		/* "Works over IPv6, not over IPv4": IPv4 goes elsewhere. */
		for (i = 0; i < n && v6only; i++)
			if (h[i].ch_family == AF_INET)
				fprintf(out, "listen %s: note: port %u is held "
				    "for IPv4 by an IPv4 socket on %s%s%s: IPv4 "
				    "clients reach that program, not relay64\n",
				    lc->lc_name, port, h[i].ch_addr,
				    h[i].ch_prog[0] ? " by " : "", h[i].ch_prog);
		return 1;
	}
	switch (err) {
	case EADDRINUSE:
		v4held = check_probe(AF_INET, port, 0) == 0;
		v6held = check_probe(AF_INET6, port, 1) == 0;
		for (i = 0; i < n; i++)
			any4 |= h[i].ch_family == AF_INET;
		who[0] = '\0';
		for (i = 0; i < n; i++) {
			if (strncmp(h[i].ch_prog, "relay64 ", 8) == 0)
				ours = 1;
			if (h[i].ch_family == AF_INET)
				kind = "an IPv4 socket";
			else if (strcmp(h[i].ch_addr, "::") != 0)
				kind = "an IPv6 socket";
			else if (v4held && !any4)
				kind = "a dual-stack socket";
			else
				kind = "an IPv6-only socket";
			p = who + strlen(who);
			snprintf(p, sizeof(who) - (size_t)(p - who), "%s%s on %s%s%s",
			    i ? "; " : "", kind, h[i].ch_addr,
			    h[i].ch_prog[0] ? " by " : "", h[i].ch_prog);
		}
		if (ours) {
			fprintf(out, "listen %s: bind %s: in use by relay64 "
			    "(%s): this configuration runs already\n",
			    lc->lc_name, addr, who);
			return 1;
		}
		fprintf(out, "listen %s: bind %s: in use%s%s: %s\n",
		    lc->lc_name, addr, who[0] ? " by " : "", who,
		    v4held && !v6held ? "an IPv4 socket holds the port, so "
		    "IPv4 clients reach it; with v6only = true relay64 can "
		    "take the IPv6 side" : v4held && v6held ? "IPv6 and IPv4 "
		    "clients of this port reach that program" : "an IPv6 "
		    "socket holds the port for IPv6 clients");
		return 0;
	case EADDRNOTAVAIL:
		if (check_tentative(&lc->lc_bind.sin6_addr))
			fprintf(out, "listen %s: bind %s: tentative: duplicate "
			    "address detection has not finished on this "
			    "address yet; binding will work in a moment\n",
			    lc->lc_name, addr);
		else
			fprintf(out, "listen %s: bind %s: not an address of "
			    "this host (ip -6 addr shows what is)\n",
			    lc->lc_name, addr);
		return 0;
	case EACCES:
		fprintf(out, "listen %s: bind %s: port %u needs privilege: "
		    "run as root, or with CAP_NET_BIND_SERVICE as the shipped "
		    "unit does\n", lc->lc_name, addr, port);
		return 0;
	default:
		fprintf(out, "listen %s: bind %s: %s\n", lc->lc_name, addr,
		    strerror(err));
		return 0;
	}
}

/* One connect to sin, from src when given; an errno, 0 when it connected. */
static int
check_connect(const struct sockaddr_in *sin, const struct sockaddr_in *src,
    int timeout, double *ms)
{
	struct pollfd	 pfd;
	struct timespec	 t0, t1;
	socklen_t	 len = sizeof(int);
	int		 fd, err = 0, on = 1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return errno;
	if (src != NULL) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
		    sizeof(on));
		if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) == -1) {
			err = errno;
			close(fd);
			return err;
		}
	}
	if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) == -1) {
		if (errno != EINPROGRESS)
			err = errno;
		else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout * 1000) == 0)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) == -1)
				err = errno;
		}
	}
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	return err;
}

/* A connect's outcome, in plain words with the likely cause. */
static void
check_say(FILE *out, const struct listen_conf *lc, const char *what,
    const struct sockaddr_in *sin, int err, double ms)
{
	char	a[ADDR_STRLEN], host[INET_ADDRSTRLEN];

	addr_format((const struct sockaddr *)sin, a, sizeof(a));
	inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
	fprintf(out, "listen %s: upstream %s%s%s: ", lc->lc_name, what,
	    strcmp(what, a) != 0 ? " = " : "", strcmp(what, a) != 0 ? a : "");
	switch (err) {
	case 0:
		fprintf(out, "reachable (connected in %.1f ms; nothing sent)\n",
		    ms);
		break;
	case ECONNREFUSED:
		fprintf(out, "refused: nothing listens on %s, or a firewall "
		    "rejects it; check ss -ltn on that host\n", a);
		break;
	case ETIMEDOUT:
		fprintf(out, "timed out after %d s: the host is down, or a "
		    "firewall drops the packets; check the route (ip route get "
		    "%s) and the firewalls on the way\n",
		    lc->lc_connect_timeout, host);
		break;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EINVAL:
		fprintf(out, "no route: this host cannot reach %s (%s); check "
		    "ip route get %s and that this host has IPv4 "
		    "connectivity\n", host, strerror(err), host);
		break;
	default:
		fprintf(out, "%s\n", strerror(err));
		break;
	}
}

/* Every upstream of lc, every address: how many are reachable. */
static int
check_upstreams(const struct listen_conf *lc, FILE *out)
{
	const struct addr_upstream *au;
	struct addrinfo		 hints, *res, *ai;
	struct sockaddr_in	 sin;
	char			 what[ADDR_HOSTMAX + 8];
	double			 ms;
	size_t			 i;
	int			 reachable = 0, err, rc;

	for (i = 0; i < lc->lc_nupstreams; i++) {
		au = &lc->lc_upstreams[i];
		addr_format_upstream(au, what, sizeof(what));
		if (au->au_host[0] == '\0') {
			err = check_connect(&au->au_sin, lc->lc_has_source ?
			    &lc->lc_source : NULL, lc->lc_connect_timeout, &ms);
			check_say(out, lc, what, &au->au_sin, err, ms);
			reachable += err == 0;
			continue;
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_INET;
		hints.ai_socktype = SOCK_STREAM;
		if ((rc = getaddrinfo(au->au_host, NULL, &hints, &res)) != 0) {
			fprintf(out, "listen %s: upstream %s: cannot resolve: "
			    "%s; check the name and /etc/resolv.conf (an "
			    "IPv4 address, an A record, is needed)\n",
			    lc->lc_name, what, gai_strerror(rc));
			continue;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			memcpy(&sin, ai->ai_addr, sizeof(sin));
			sin.sin_port = au->au_sin.sin_port;
			err = check_connect(&sin, lc->lc_has_source ?
			    &lc->lc_source : NULL, lc->lc_connect_timeout, &ms);
			check_say(out, lc, what, &sin, err, ms);
			reachable += err == 0;
		}
		freeaddrinfo(res);
	}
	return reachable;
}

/*
 * The whole check: 0 when every listener can bind and reaches at least
 * one upstream, 1 otherwise.  The summary line says which.
 */
int
check_run(const struct conf *conf, FILE *out)
{
	const struct listen_conf *lc;
	int			 n = 0, bind_ok = 0, up_ok = 0;

	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		n++;
		bind_ok += check_bind(lc, out);
		fprintf(out, "listen %s: takes %s; %s\n", lc->lc_name,
		    addr_takes(&lc->lc_bind, lc->lc_v6only),
		    conf_proxy_text(lc));
		up_ok += check_upstreams(lc, out) > 0;
	}
	fprintf(out, "check: %d of %d listeners can bind, %d of %d reach an "
	    "upstream: %s\n", bind_ok, n, up_ok, n, bind_ok == n &&
	    up_ok == n ? "OK" : "FAILED");
	return bind_ok == n && up_ok == n ? 0 : 1;
}
