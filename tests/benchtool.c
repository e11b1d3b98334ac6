/*
 * benchtool: load generator and backends for the relay64 benchmark.
 *
 * Servers (bind 127.0.0.1:0 unless -b ADDR, print the port on stdout, run
 * until SIGTERM/SIGINT or until stdin, when it is a pipe, reaches EOF):
 *   benchtool sink [-P]      read and discard; at EOF reply "BYTES\n", close
 *   benchtool echo [-P]      echo everything back; close after EOF
 *   -P: every connection starts with a PROXY protocol header (v1 or v2),
 *       which is read and discarded first: it is neither counted nor echoed.
 *       A connection that does not start with one is closed at once.
 *
 * Clients (print one line of key=value results on stdout):
 *   benchtool bulk ADDR PORT SECONDS [STREAMS] STREAMS connections at once
 *            (default 1), each sends for SECONDS; gbps is the aggregate
 *   benchtool conns ADDR PORT SECONDS WORKERS [COUNT]
 *            connect/64 B/64 B/close loops; with COUNT, stop after COUNT
 *            attempts in all (SECONDS still bounds the run)
 *   benchtool pingpong ADDR PORT SECONDS [COUNT]
 *            64-byte request/response on one connection, after 200 warm-up
 *            round trips; with COUNT, stop after COUNT timed round trips
 *            (SECONDS still bounds the run); roundtrips= counts both kinds
 *   benchtool idle ADDR PORT COUNT            open COUNT sessions, each does
 *            one 1-byte round trip, print "ready COUNT", hold them until
 *            stdin closes or a signal arrives
 *
 * ADDR is a numeric IPv4 or IPv6 address without brackets.
 * Only libc and pthreads; Linux (epoll, accept4).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MSG_SIZE 64
#define BULK_CHUNK (128 * 1024)
#define SERVER_BUF (256 * 1024)
#define MAX_SAMPLES 4000000
#define WARMUP_ROUNDTRIPS 200

static volatile sig_atomic_t bt_stop;

static void bt_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
bt_die(const char *fmt, ...)
{
	va_list ap;

	fputs("benchtool: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double
bt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
bt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
bt_on_signal(int sig)
{
	(void)sig;
	bt_stop = 1;
}

static void
bt_setup_process(void)
{
	struct rlimit rl;
	struct sigaction sa;

	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bt_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* True when stdin is a pipe or socket whose EOF means "stop". */
static int
bt_stdin_watchable(void)
{
	struct stat st;

	if (fstat(0, &st) != 0)
		return 0;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
}

static void
bt_resolve(const char *addr, const char *port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(addr, port, &hints, &res);
	if (rc != 0)
		bt_die("address %s port %s: %s", addr, port, gai_strerror(rc));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
}

static double
bt_parse_seconds(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end != '\0' || !(v > 0.0) || v > 86400.0)
		bt_die("bad duration \"%s\"", s);
	return v;
}

static long
bt_parse_count(const char *s, long max)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end != '\0' || v < 1 || v > max)
		bt_die("bad count \"%s\" (1..%ld)", s, max);
	return v;
}

static int
bt_connect(const struct sockaddr_storage *ss, socklen_t len, int nodelay)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)ss, len) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int
bt_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR && !bt_stop)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes; 0 on success, -1 on error, 1 on early EOF. */
static int
bt_read_all(int fd, char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR && !bt_stop)
				continue;
			return -1;
		}
		if (n == 0)
			return 1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---------------------------------------------------------------- servers */

struct srv_conn {
	struct srv_conn	*sc_prev, *sc_next;	/* all open connections */
	int		 sc_fd;
	unsigned long long sc_bytes;
	char		*sc_pend;	/* echo bytes not yet written */
	size_t		 sc_pend_off;
	size_t		 sc_pend_len;
	int		 sc_ph;		/* a PROXY header is still to be read */
	size_t		 sc_ph_len;	/* its bytes read so far */
	size_t		 sc_ph_total;	/* v2: its whole length, once known */
	unsigned char	 sc_ph_buf[16];	/* its first bytes */
	unsigned char	 sc_ph_prev;	/* v1: the byte read before */
};

/*
 * PROXY protocol headers, to be read and discarded (-P). v1 is a text line,
 * "PROXY ..." up to "\r\n", 107 bytes at most; v2 is a 12-byte signature, a
 * version/command byte (0x2X), a family byte and a 2-byte length of the rest.
 */
#define PH_V1_MAX	107
static const unsigned char ph_v1_sig[6] = { 'P', 'R', 'O', 'X', 'Y', ' ' };
static const unsigned char ph_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/*
 * Take the PROXY header's bytes from the front of buf (n bytes read).
 * Returns how many of them belonged to the header (the rest is data), or -1
 * when the stream does not start with a well-formed header.
 */
static ssize_t
ph_consume(struct srv_conn *c, const char *buf, size_t n)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t used = 0;

	while (c->sc_ph && used < n) {
		unsigned char b;
		size_t k;

		if (c->sc_ph_total != 0) {	/* v2: skip the rest whole */
			size_t take = c->sc_ph_total - c->sc_ph_len;

			if (take > n - used)
				take = n - used;
			used += take;
			c->sc_ph_len += take;
			if (c->sc_ph_len == c->sc_ph_total)
				c->sc_ph = 0;
			continue;
		}
		b = p[used++];
		k = ++c->sc_ph_len;
		if (k <= sizeof(c->sc_ph_buf))
			c->sc_ph_buf[k - 1] = b;
		if (c->sc_ph_buf[0] == ph_v1_sig[0]) {	/* v1 */
			if (k <= sizeof(ph_v1_sig)) {
				if (b != ph_v1_sig[k - 1])
					return -1;
			} else if (b == '\n' && c->sc_ph_prev == '\r') {
				c->sc_ph = 0;
			} else if (k >= PH_V1_MAX) {
				return -1;
			}
			c->sc_ph_prev = b;
			continue;
		}
		if (k <= sizeof(ph_v2_sig)) {			/* v2 */
			if (b != ph_v2_sig[k - 1])
				return -1;
		} else if (k == 13 && (b & 0xf0) != 0x20) {
			return -1;
		} else if (k == 16) {
			c->sc_ph_total = 16 + (((size_t)c->sc_ph_buf[14] << 8) |
			    c->sc_ph_buf[15]);
			if (c->sc_ph_total == 16)
				c->sc_ph = 0;
		}
	}
	return (ssize_t)used;
}

static struct srv_conn *srv_conns;

static void
srv_close(int ep, struct srv_conn *c)
{
	if (c->sc_prev != NULL)
		c->sc_prev->sc_next = c->sc_next;
	else
		srv_conns = c->sc_next;
	if (c->sc_next != NULL)
		c->sc_next->sc_prev = c->sc_prev;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->sc_fd, NULL);
	close(c->sc_fd);
	free(c->sc_pend);
	free(c);
}

/* Try to flush pending echo bytes; returns -1 on a dead connection. */
static int
srv_flush(int ep, struct srv_conn *c)
{
	struct epoll_event ev;

	while (c->sc_pend_off < c->sc_pend_len) {
		ssize_t n = send(c->sc_fd, c->sc_pend + c->sc_pend_off,
		    c->sc_pend_len - c->sc_pend_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		c->sc_pend_off += (size_t)n;
	}
	memset(&ev, 0, sizeof(ev));
	ev.data.ptr = c;
	if (c->sc_pend_off < c->sc_pend_len) {
		ev.events = EPOLLOUT;	/* stop reading until drained */
	} else {
		free(c->sc_pend);
		c->sc_pend = NULL;
		c->sc_pend_off = c->sc_pend_len = 0;
		ev.events = EPOLLIN;
	}
	epoll_ctl(ep, EPOLL_CTL_MOD, c->sc_fd, &ev);
	return 0;
}

static void
srv_readable(int ep, struct srv_conn *c, int echo, char *buf)
{
	int rounds;

	for (rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(c->sc_fd, buf, SERVER_BUF);
		char *data = buf;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				srv_close(ep, c);
			return;
		}
		if (n == 0) {
			if (!echo && !c->sc_ph) {
				char reply[32];
				int len = snprintf(reply, sizeof(reply),
				    "%llu\n", c->sc_bytes);

				(void)send(c->sc_fd, reply, (size_t)len,
				    MSG_NOSIGNAL);
			}
			srv_close(ep, c);
			return;
		}
		if (c->sc_ph) {
			ssize_t h = ph_consume(c, buf, (size_t)n);

			if (h < 0) {	/* no PROXY header: not ours */
				srv_close(ep, c);
				return;
			}
			data += h;
			n -= h;
			if (n == 0)
				continue;
		}
		c->sc_bytes += (unsigned long long)n;
		if (!echo)
			continue;
		{
			ssize_t w = send(c->sc_fd, data, (size_t)n, MSG_NOSIGNAL);

			if (w < 0) {
				if (errno != EAGAIN && errno != EWOULDBLOCK &&
				    errno != EINTR) {
					srv_close(ep, c);
					return;
				}
				w = 0;
			}
			if (w < n) {
				c->sc_pend_len = (size_t)(n - w);
				c->sc_pend_off = 0;
				c->sc_pend = malloc(c->sc_pend_len);
				if (c->sc_pend == NULL)
					bt_die("out of memory");
				memcpy(c->sc_pend, data + w, c->sc_pend_len);
				if (srv_flush(ep, c) < 0)
					srv_close(ep, c);
				return;
			}
		}
	}
}

static int
srv_main(int argc, char **argv, int echo)
{
	const char *bind_addr = "127.0.0.1";
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct epoll_event ev, evs[256];
	char *buf, portstr[16];
	int lfd, ep, one = 1, watch_stdin, want_ph = 0, i, n;
	char stdin_tag;		/* its address marks stdin in epoll data */

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-b") == 0 && i + 1 < argc)
			bind_addr = argv[++i];
		else if (strcmp(argv[i], "-P") == 0)
			want_ph = 1;
		else
			bt_die("usage: benchtool %s [-b ADDR] [-P]",
			    echo ? "echo" : "sink");
	}

	bt_resolve(bind_addr, "0", &ss, &sslen);
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		bt_die("socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, sslen) != 0)
		bt_die("bind %s: %s", bind_addr, strerror(errno));
	if (listen(lfd, SOMAXCONN) != 0)
		bt_die("listen: %s", strerror(errno));
	sslen = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &sslen);
	if (ss.ss_family == AF_INET6)
		snprintf(portstr, sizeof(portstr), "%u",
		    (unsigned)ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	else
		snprintf(portstr, sizeof(portstr), "%u",
		    (unsigned)ntohs(((struct sockaddr_in *)&ss)->sin_port));

	buf = malloc(SERVER_BUF);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (buf == NULL || ep < 0)
		bt_die("setup: %s", strerror(errno));
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	watch_stdin = bt_stdin_watchable();
	if (watch_stdin) {
		ev.events = EPOLLIN;
		ev.data.ptr = &stdin_tag;
		epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
	}
	printf("%s\n", portstr);
	fflush(stdout);

	while (!bt_stop) {
		n = epoll_wait(ep, evs, 256, 1000);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			bt_die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			struct srv_conn *c = evs[i].data.ptr;

			if (evs[i].data.ptr == &stdin_tag) {
				ssize_t r = read(0, buf, SERVER_BUF);

				if (r <= 0)
					bt_stop = 1;
				continue;
			}
			if (c == NULL) {
				for (;;) {
					int fd = accept4(lfd, NULL, NULL,
					    SOCK_NONBLOCK | SOCK_CLOEXEC);

					if (fd < 0)
						break;
					c = calloc(1, sizeof(*c));
					if (c == NULL)
						bt_die("out of memory");
					c->sc_fd = fd;
					c->sc_ph = want_ph;
					c->sc_next = srv_conns;
					if (srv_conns != NULL)
						srv_conns->sc_prev = c;
					srv_conns = c;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
					    &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (c->sc_pend != NULL) {
				if (evs[i].events & (EPOLLOUT | EPOLLERR |
				    EPOLLHUP)) {
					if (srv_flush(ep, c) < 0)
						srv_close(ep, c);
				}
				continue;
			}
			srv_readable(ep, c, echo, buf);
		}
	}
	while (srv_conns != NULL)
		srv_close(ep, srv_conns);
	close(ep);
	close(lfd);
	free(buf);
	return 0;
}

/* ---------------------------------------------------------------- bulk */

/*
 * One thread per stream. All streams are connected before the clock's
 * deadline is set, send until the same deadline, then half-close and wait
 * for the sink's byte count. Errors are recorded, not fatal, so that the
 * other streams finish and the first failure is reported once.
 */
struct bulk_stream {
	int		 bs_fd;
	const char	*bs_buf;	/* BULK_CHUNK bytes, shared, read-only */
	double		 bs_deadline;
	double		 bs_end;	/* when the sink's count arrived */
	unsigned long long bs_sent;
	unsigned long long bs_got;
	const char	*bs_what;	/* first failure, NULL if none */
	int		 bs_errno;
};

static void
bulk_fail(struct bulk_stream *s, const char *what, int err)
{
	s->bs_what = what;
	s->bs_errno = err;
}

static void *
bulk_stream_run(void *p)
{
	struct bulk_stream *s = p;
	char reply[64];
	size_t rlen = 0;

	while (!bt_stop) {
		if (bt_write_all(s->bs_fd, s->bs_buf, BULK_CHUNK) != 0) {
			bulk_fail(s, "send", errno);
			return NULL;
		}
		s->bs_sent += BULK_CHUNK;
		if ((s->bs_sent & (8 * BULK_CHUNK - 1)) == 0 &&
		    bt_now() >= s->bs_deadline)
			break;
	}
	if (shutdown(s->bs_fd, SHUT_WR) != 0) {
		bulk_fail(s, "shutdown", errno);
		return NULL;
	}
	/* the sink answers with the byte count it received, then closes */
	for (;;) {
		ssize_t n = read(s->bs_fd, reply + rlen,
		    sizeof(reply) - 1 - rlen);

		if (n < 0 && errno == EINTR && !bt_stop)
			continue;
		if (n < 0) {
			bulk_fail(s, "reading the sink's count", errno);
			return NULL;
		}
		if (n == 0)
			break;
		rlen += (size_t)n;
		if (rlen >= sizeof(reply) - 1)
			break;
	}
	s->bs_end = bt_now();
	reply[rlen] = '\0';
	if (sscanf(reply, "%llu", &s->bs_got) != 1)
		bulk_fail(s, "no byte count from the sink", 0);
	else if (s->bs_got != s->bs_sent)
		bulk_fail(s, "sink count differs from bytes sent", 0);
	return NULL;
}

static int
bulk_main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct bulk_stream *st;
	pthread_t *tids;
	char *buf;
	unsigned long long sent = 0;
	double secs, t0, t1, g, gmin = 0.0, gmax = 0.0;
	long streams = 1, i;
	int failed = 0;

	if (argc != 5 && argc != 6)
		bt_die("usage: benchtool bulk ADDR PORT SECONDS [STREAMS]");
	bt_resolve(argv[2], argv[3], &ss, &sslen);
	secs = bt_parse_seconds(argv[4]);
	if (argc == 6)
		streams = bt_parse_count(argv[5], 1024);
	buf = malloc(BULK_CHUNK);
	st = calloc((size_t)streams, sizeof(*st));
	tids = calloc((size_t)streams, sizeof(*tids));
	if (buf == NULL || st == NULL || tids == NULL)
		bt_die("out of memory");
	memset(buf, 'x', BULK_CHUNK);

	t0 = bt_now();
	for (i = 0; i < streams; i++) {
		st[i].bs_fd = bt_connect(&ss, sslen, 0);
		if (st[i].bs_fd < 0)
			bt_die("stream %ld: connect %s port %s: %s", i + 1,
			    argv[2], argv[3], strerror(errno));
		st[i].bs_buf = buf;
	}
	for (i = 0; i < streams; i++) {
		st[i].bs_deadline = t0 + secs;
		if (pthread_create(&tids[i], NULL, bulk_stream_run, &st[i]) != 0)
			bt_die("pthread_create failed");
	}
	for (i = 0; i < streams; i++)
		pthread_join(tids[i], NULL);
	t1 = bt_now();
	for (i = 0; i < streams; i++) {
		close(st[i].bs_fd);
		if (st[i].bs_what != NULL) {
			if (!failed)
				fprintf(stderr, "benchtool: bulk stream %ld: "
				    "%s after %llu bytes%s%s (sink counted "
				    "%llu)\n", i + 1, st[i].bs_what,
				    st[i].bs_sent, st[i].bs_errno ? ": " : "",
				    st[i].bs_errno ? strerror(st[i].bs_errno) :
				    "", st[i].bs_got);
			failed++;
			continue;
		}
		g = (double)st[i].bs_sent * 8.0 / (st[i].bs_end - t0) / 1e9;
		if (sent == 0 || g < gmin)
			gmin = g;
		if (sent == 0 || g > gmax)
			gmax = g;
		sent += st[i].bs_sent;
	}
	free(buf);
	free(st);
	free(tids);
	if (failed)
		bt_die("bulk: %d of %ld streams failed", failed, streams);
	printf("streams=%ld bytes=%llu seconds=%.6f gbps=%.4f "
	    "min_stream_gbps=%.4f max_stream_gbps=%.4f\n", streams, sent,
	    t1 - t0, (double)sent * 8.0 / (t1 - t0) / 1e9, gmin, gmax);
	return 0;
}

/* ---------------------------------------------------------------- conns */

struct conns_arg {
	const struct sockaddr_storage *ca_ss;
	socklen_t	 ca_len;
	double		 ca_deadline;
	unsigned long long ca_limit;	/* attempts in all, 0: no limit */
	unsigned long long *ca_taken;	/* attempts so far, shared */
	unsigned long long ca_ok;
	unsigned long long ca_err;
	char		 ca_first_err[128];
};

static void
conns_fail(struct conns_arg *a, const char *what, int err)
{
	if (a->ca_err++ == 0)
		snprintf(a->ca_first_err, sizeof(a->ca_first_err), "%s: %s",
		    what, err ? strerror(err) : "unexpected EOF or data");
}

static void *
conns_worker(void *p)
{
	struct conns_arg *a = p;
	char req[MSG_SIZE], rep[MSG_SIZE];
	unsigned long iter = 0;

	memset(req, 'q', sizeof(req));
	while (!bt_stop) {
		int fd, rc;

		if ((iter++ & 15) == 0 && bt_now() >= a->ca_deadline)
			break;
		if (a->ca_limit != 0 && __atomic_fetch_add(a->ca_taken, 1,
		    __ATOMIC_RELAXED) >= a->ca_limit)
			break;
		fd = bt_connect(a->ca_ss, a->ca_len, 1);
		if (fd < 0) {
			conns_fail(a, "connect", errno);
			if (errno == EADDRNOTAVAIL || errno == EMFILE)
				usleep(1000);
			continue;
		}
		if (bt_write_all(fd, req, sizeof(req)) != 0) {
			conns_fail(a, "send", errno);
			close(fd);
			continue;
		}
		rc = bt_read_all(fd, rep, sizeof(rep));
		if (rc != 0 || memcmp(req, rep, sizeof(rep)) != 0) {
			conns_fail(a, "reply", rc < 0 ? errno : 0);
			close(fd);
			continue;
		}
		close(fd);
		a->ca_ok++;
	}
	return NULL;
}

static int
conns_main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct conns_arg *args;
	pthread_t *tids;
	unsigned long long ok = 0, err = 0, limit = 0, taken = 0;
	const char *first_err = NULL;
	double secs, t0, t1;
	long workers, i;

	if (argc != 6 && argc != 7)
		bt_die("usage: benchtool conns ADDR PORT SECONDS WORKERS [COUNT]");
	bt_resolve(argv[2], argv[3], &ss, &sslen);
	secs = bt_parse_seconds(argv[4]);
	workers = bt_parse_count(argv[5], 1024);
	if (argc == 7)
		limit = (unsigned long long)bt_parse_count(argv[6], 1000000000);
	args = calloc((size_t)workers, sizeof(*args));
	tids = calloc((size_t)workers, sizeof(*tids));
	if (args == NULL || tids == NULL)
		bt_die("out of memory");
	t0 = bt_now();
	for (i = 0; i < workers; i++) {
		args[i].ca_ss = &ss;
		args[i].ca_len = sslen;
		args[i].ca_deadline = t0 + secs;
		args[i].ca_limit = limit;
		args[i].ca_taken = &taken;
		if (pthread_create(&tids[i], NULL, conns_worker, &args[i]) != 0)
			bt_die("pthread_create failed");
	}
	for (i = 0; i < workers; i++) {
		pthread_join(tids[i], NULL);
		ok += args[i].ca_ok;
		err += args[i].ca_err;
		if (first_err == NULL && args[i].ca_err > 0)
			first_err = args[i].ca_first_err;
	}
	t1 = bt_now();
	if (first_err != NULL)
		fprintf(stderr, "benchtool: conns: %llu errors, first: %s\n",
		    err, first_err);
	printf("conns=%llu errors=%llu seconds=%.6f rate=%.1f\n", ok, err,
	    t1 - t0, (double)ok / (t1 - t0));
	free(args);
	free(tids);
	return ok > 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- pingpong */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_us(const uint64_t *s, size_t n, double p)
{
	size_t idx = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (idx < 1)
		idx = 1;
	if (idx > n)
		idx = n;
	return (double)s[idx - 1] / 1000.0;
}

static int
pingpong_main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char req[MSG_SIZE], rep[MSG_SIZE];
	uint64_t *samples, sum = 0;
	size_t n = 0, max = MAX_SAMPLES;
	double secs, deadline;
	int fd, i;

	if (argc != 5 && argc != 6)
		bt_die("usage: benchtool pingpong ADDR PORT SECONDS [COUNT]");
	bt_resolve(argv[2], argv[3], &ss, &sslen);
	secs = bt_parse_seconds(argv[4]);
	if (argc == 6)
		max = (size_t)bt_parse_count(argv[5], MAX_SAMPLES);
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	if (samples == NULL)
		bt_die("out of memory");
	memset(req, 'p', sizeof(req));
	fd = bt_connect(&ss, sslen, 1);
	if (fd < 0)
		bt_die("connect %s port %s: %s", argv[2], argv[3], strerror(errno));
	for (i = 0; i < WARMUP_ROUNDTRIPS; i++) {	/* warm up */
		if (bt_write_all(fd, req, sizeof(req)) != 0 ||
		    bt_read_all(fd, rep, sizeof(rep)) != 0)
			bt_die("warm-up round trip failed");
	}
	deadline = bt_now() + secs;
	while (!bt_stop && n < max) {
		uint64_t t0 = bt_now_ns(), t1;

		if (bt_write_all(fd, req, sizeof(req)) != 0)
			bt_die("send: %s", strerror(errno));
		if (bt_read_all(fd, rep, sizeof(rep)) != 0)
			bt_die("reply: %s", errno ? strerror(errno) : "EOF");
		t1 = bt_now_ns();
		samples[n++] = t1 - t0;
		sum += t1 - t0;
		if ((n & 63) == 0 && (double)t1 / 1e9 >= deadline)
			break;
	}
	close(fd);
	if (n == 0)
		bt_die("no samples");
	qsort(samples, n, sizeof(*samples), cmp_u64);
	printf("samples=%zu p50_us=%.2f p99_us=%.2f mean_us=%.2f max_us=%.2f "
	    "roundtrips=%zu\n", n, pct_us(samples, n, 50.0),
	    pct_us(samples, n, 99.0), (double)sum / (double)n / 1000.0, (double)samples[n - 1] / 1000.0,
	    n + WARMUP_ROUNDTRIPS);
	free(samples);
	return 0;
}

/* ---------------------------------------------------------------- idle */

static int
idle_main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int *fds, watch;
	long count, i;
	char b = 'i';

	if (argc != 5)
		bt_die("usage: benchtool idle ADDR PORT COUNT");
	bt_resolve(argv[2], argv[3], &ss, &sslen);
	count = bt_parse_count(argv[4], 1000000);
	fds = calloc((size_t)count, sizeof(*fds));
	if (fds == NULL)
		bt_die("out of memory");
	for (i = 0; i < count && !bt_stop; i++) {
		/* one round trip proves the whole path is set up */
		fds[i] = bt_connect(&ss, sslen, 1);
		if (fds[i] < 0)
			bt_die("session %ld of %ld: connect: %s", i + 1, count,
			    strerror(errno));
		if (bt_write_all(fds[i], &b, 1) != 0 ||
		    bt_read_all(fds[i], &b, 1) != 0)
			bt_die("session %ld of %ld: no echo", i + 1, count);
	}
	if (bt_stop)
		return 1;
	printf("ready %ld\n", count);
	fflush(stdout);
	watch = bt_stdin_watchable();
	while (!bt_stop) {
		struct pollfd pfd = { .fd = 0, .events = POLLIN };

		if (!watch) {
			pause();
			continue;
		}
		if (poll(&pfd, 1, 1000) > 0) {
			char tmp[256];

			if (read(0, tmp, sizeof(tmp)) <= 0)
				break;
		}
	}
	for (i = 0; i < count; i++)
		close(fds[i]);
	free(fds);
	return 0;
}

static void
usage(void)
{
	fputs("usage: benchtool sink|echo [-b ADDR] [-P]\n"
	    "       benchtool bulk ADDR PORT SECONDS [STREAMS]\n"
	    "       benchtool conns ADDR PORT SECONDS WORKERS [COUNT]\n"
	    "       benchtool pingpong ADDR PORT SECONDS [COUNT]\n"
	    "       benchtool idle ADDR PORT COUNT\n", stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	bt_setup_process();
	if (strcmp(argv[1], "sink") == 0)
		return srv_main(argc, argv, 0);
	if (strcmp(argv[1], "echo") == 0)
		return srv_main(argc, argv, 1);
	if (strcmp(argv[1], "bulk") == 0)
		return bulk_main(argc, argv);
	if (strcmp(argv[1], "conns") == 0)
		return conns_main(argc, argv);
	if (strcmp(argv[1], "pingpong") == 0)
		return pingpong_main(argc, argv);
	if (strcmp(argv[1], "idle") == 0)
		return idle_main(argc, argv);
	usage();
	return 2;
}
