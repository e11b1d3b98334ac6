/*
 * relay64: relay TCP connections from IPv6 clients to IPv4 upstreams.
 *
 * main(): options, configuration, start-up order (bind, detach, drop
 * privileges, loop), signals and shutdown.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "activation.h"
#include "check.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "pool.h"
#include "proc.h"
#include "resolve.h"
#include "stats.h"

#define EXIT_RUNTIME	1
#define EXIT_USAGE	2

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR	"/run"
#endif

struct options {
	const char	*o_config;
	const char	*o_user;
	const char	*o_pidfile;
	const char	*o_proxy;
	int		 o_test;
	int		 o_check;	/* -C: -t, then bind and connect checks */
	int		 o_once;
	int		 o_level;	/* -1: from the configuration */
	int		 o_syslog;
	int		 o_daemon;
};

static int	signals_seen;

#define NSIGNALS	5

/* What main()'s steps and the control loop's handlers work on. */
static struct {
	struct options	*r_opts;
	struct conf	*r_conf;
	char		*r_reload;	/* the file to reload, absolute */
	const char	*r_user;	/* to drop to; NULL: stay */
	uid_t		 r_uid;
	gid_t		 r_gid;
	struct pool	*r_pool;
	struct stats	*r_stats;	/* the stats endpoint, if any */
	struct event_base *r_base;	/* the control loop */
	struct resolve	*r_resolve;	/* upstream host names */
	struct conf	*r_pending;	/* a reload waiting for host names */
	struct event	*r_sigs[NSIGNALS];
	struct event	*r_watchdog;
	int		 r_started;	/* the workers run */
	int		 r_failed;	/* the start failed after the workers did */
	int		 r_reload_due;	/* SIGHUP before that */
	int		 r_stopping;
} relay;

static void	reload_begin(void);
static void	reload_drop(void);

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: relay64 [OPTIONS] LISTEN UPSTREAM\n"
	    "       relay64 [OPTIONS] [-c FILE]\n"
	    "\n"
	    "Relay TCP connections from IPv6 clients to an IPv4 upstream.\n"
	    "  LISTEN    [IPV6]:PORT, e.g. '[::]:2000'\n"
	    "  UPSTREAM  IPV4:PORT or HOST:PORT, e.g. 192.0.2.1:2000\n"
	    "\n"
	    "  -c, --config FILE     configuration file (default %s)\n"
	    "  -t, --test            check the configuration, print the "
	    "listeners, exit\n"
	    "  -C, --check           -t, then whether each listener can bind "
	    "and\n"
	    "                        reaches its upstreams (one connect each), "
	    "exit\n"
	    "  -u, --user USER       drop to USER after binding\n"
	    "  -1, --once            serve one connection, then exit\n"
	    "  -p, --proxy-protocol off|v1|v2\n"
	    "                        send a PROXY header upstream (ad-hoc "
	    "form)\n"
	    "  -l, --log-level LEVEL error, warning, notice, info or debug\n"
	    "  -s, --syslog          log to syslog instead of stderr\n"
	    "  -d, --daemon          detach, log to syslog, write a pid file\n"
	    "      --pidfile FILE    pid file for --daemon (default %s)\n"
	    "  -V, --version         print the version and exit\n"
	    "  -h, --help            print this help and exit\n",
	    SYSCONFDIR "/relay64.conf", RUNSTATEDIR "/relay64/relay64.pid");
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list	ap;

	fputs("relay64: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'relay64 --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

enum { OPT_PIDFILE = 256 };

static const struct option longopts[] = {
	{ "config",	required_argument,	NULL, 'c' },
	{ "test",	no_argument,		NULL, 't' },
	{ "check",	no_argument,		NULL, 'C' },
	{ "user",	required_argument,	NULL, 'u' },
	{ "once",	no_argument,		NULL, '1' },
	{ "log-level",	required_argument,	NULL, 'l' },
	{ "proxy-protocol", required_argument,	NULL, 'p' },
	{ "syslog",	no_argument,		NULL, 's' },
	{ "daemon",	no_argument,		NULL, 'd' },
	{ "pidfile",	required_argument,	NULL, OPT_PIDFILE },
	{ "version",	no_argument,		NULL, 'V' },
	{ "help",	no_argument,		NULL, 'h' },
	{ NULL,		0,			NULL, 0 }
};

/* What the value of an option is, for messages. */
static const char *
opt_value(int val)
{
	switch (val) {
	case 'c':
	case OPT_PIDFILE:
		return "file name";
	case 'u':
		return "user name";
	case 'l':
		return "level (error, warning, notice, info or debug)";
	case 'p':
		return "PROXY protocol version (off, v1 or v2)";
	}
	return "value";
}

static const char *
opt_longname(int val)
{
	const struct option	*lo;

	for (lo = longopts; lo->name != NULL; lo++)
		if (lo->val == val)
			return lo->name;
	return "?";
}

/*
 * An option that getopt_long() refused, named as typed: arg is the
 * command-line word it ended in, opt the option's value (0: unknown).
 */
static void __attribute__((noreturn))
opt_refused(int ch, const char *arg, int opt)
{
	const struct option	*lo;
	const char		*match = NULL;
	size_t			 n;
	int			 nmatch = 0;

	if (strncmp(arg, "--", 2) != 0) {
		/* A short option, alone or in a cluster such as -tu. */
		if (ch == ':')
			usage_error("-%c: missing %s", opt, opt_value(opt));
		if (opt == '=')
			usage_error("unknown option -=; values follow an "
			    "option as -c FILE or --config=FILE");
		usage_error("unknown option -%c", opt);
	}
	n = strcspn(arg, "=");
	if (ch == ':')
		usage_error("%.*s: missing %s", (int)n, arg, opt_value(opt));
	if (opt != 0)
		usage_error("%s: --%s takes no value", arg, opt_longname(opt));
	for (lo = longopts; lo->name != NULL; lo++) {
		if (strncmp(lo->name, arg + 2, n - 2) == 0) {
			if (nmatch++ > 0)
				usage_error("%.*s: ambiguous, --%s or --%s?",
				    (int)n, arg, match, lo->name);
			match = lo->name;
		}
	}
	usage_error("unknown option %.*s", (int)n, arg);
}

static void
parse_options(int argc, char *argv[], struct options *o)
{
	char	name[32];
	int	ch, li;

	memset(o, 0, sizeof(*o));
	o->o_level = -1;
	o->o_pidfile = RUNSTATEDIR "/relay64/relay64.pid";
	opterr = 0;
	for (;;) {
		li = -1;
		if ((ch = getopt_long(argc, argv, ":c:tCu:1l:p:sdVh", longopts,
		    &li)) == -1)
			break;
		if (ch == ':' || ch == '?')
			opt_refused(ch, argv[optind - 1], optopt);
		/* The option as typed, for messages: --name or -c. */
		if (li >= 0)
			snprintf(name, sizeof(name), "--%s", longopts[li].name);
		else
			snprintf(name, sizeof(name), "-%c", ch);
		if (optarg != NULL && *optarg == '\0')
			usage_error("%s: empty %s", name, opt_value(ch));
		switch (ch) {
		case 'c':
			o->o_config = optarg;
			break;
		case 't':
			o->o_test = 1;
			break;
		case 'C':
			o->o_test = o->o_check = 1;
			break;
		case 'u':
			o->o_user = optarg;
			break;
		case '1':
			o->o_once = 1;
			break;
		case 'l':
			if ((o->o_level = log_level_parse(optarg)) == -1)
				usage_error("%s \"%s\": not one of error, "
				    "warning, notice, info, debug", name,
				    optarg);
			break;
		case 'p':
			o->o_proxy = optarg;
			break;
		case 's':
			o->o_syslog = 1;
			break;
		case 'd':
			o->o_daemon = 1;
			break;
		case OPT_PIDFILE:
			o->o_pidfile = optarg;
			break;
		case 'V':
			printf("relay64 %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		}
	}
}

static void
status_ready(void)
{
	notify("READY=1\nSTATUS=relaying on %u listeners with %zu workers, "
	    "%u sessions open", pool_listeners(relay.r_pool),
	    relay.r_pool->p_n, pool_sessions(relay.r_pool));
}

static void
signal_stop(evutil_socket_t sig, short what, void *arg)
{
	struct pool	*p = arg;

	(void)what;
	if (signals_seen++ == 0) {
		log_notice("%s: stopping", strsignal((int)sig));
		notify("STOPPING=1\nSTATUS=draining %u sessions",
		    pool_sessions(p));
		relay.r_stopping = 1;
		if (relay.r_pending != NULL) {
			log_notice("the reload waiting for host names is "
			    "dropped");
			reload_drop();
		}
		if (!relay.r_started) {
			/* Still waiting for host names: no worker to stop. */
			resolve_cancel_wait(relay.r_resolve);
			event_base_loopexit(relay.r_base, NULL);
			return;
		}
		pool_stop(p);
	} else if (!relay.r_started) {
		event_base_loopexit(relay.r_base, NULL);
	} else {
		log_notice("%s again: closing every session now",
		    strsignal((int)sig));
		pool_halt(p);
	}
}

static void
stats_log(const struct stats *st, const char *what)
{
	char	addr[ADDR_STRLEN];

	log_notice("stats: %s http://%s/metrics", what,
	    stats_addr(st, addr, sizeof(addr)));
}

/*
 * A reload's stats endpoint, before anything else changes: the running
 * one when the address is the same, a new one bound and serving, or none.
 */
static int
stats_reload_open(const struct conf *conf, struct stats **stp, char *err,
    size_t errlen)
{
	struct stats	*st;

	*stp = NULL;
	if (conf->c_statslen == 0)
		return 0;
	if (relay.r_stats != NULL && stats_same(relay.r_stats,
	    (const struct sockaddr *)&conf->c_stats, conf->c_statslen)) {
		*stp = relay.r_stats;
		return 0;
	}
	if ((st = stats_open((const struct sockaddr *)&conf->c_stats,
	    conf->c_statslen, err, errlen)) == NULL)
		return -1;
	if (stats_start(st, relay.r_base, pool_metrics, relay.r_pool, err,
	    errlen) == -1) {
		stats_free(st);
		return -1;
	}
	*stp = st;
	return 0;
}

/* The reload is done: the old endpoint goes, the new one is said. */
static void
stats_reload_commit(struct stats *st)
{
	if (st == relay.r_stats)
		return;
	if (relay.r_stats != NULL) {
		stats_free(relay.r_stats);
		log_notice("stats: stopped serving");
	}
	relay.r_stats = st;
	if (st != NULL)
		stats_log(st, "serving");
}

/* The reload waiting for its host names is given up. */
static void
reload_drop(void)
{
	resolve_detach(relay.r_resolve, relay.r_pending);
	conf_free(relay.r_pending);
	relay.r_pending = NULL;
}

/*
 * The new configuration's host names have answers (or the wait is over):
 * apply it (see pool_reload()); on any error log it and keep running as
 * before.
 */
static void
reload_apply(void)
{
	struct conf	*conf = relay.r_pending;
	struct stats	*st;
	char		 err[CONF_ERRLEN];

	if (stats_reload_open(conf, &st, err, sizeof(err)) == -1 ||
	    pool_reload(relay.r_pool, conf, err, sizeof(err)) == -1) {
		if (st != relay.r_stats)
			stats_free(st);
		reload_drop();
		log_error("reload failed: %s; the running configuration stays",
		    err);
		status_ready();
		return;
	}
	stats_reload_commit(st);
	relay.r_pending = NULL;
	if ((conf->c_user == NULL) != (relay.r_conf->c_user == NULL) ||
	    (conf->c_user != NULL &&
	    strcmp(conf->c_user, relay.r_conf->c_user) != 0))
		log_warnx("reload: a change of user takes effect at the next "
		    "start");
	if (conf->c_workers != relay.r_conf->c_workers)
		log_warnx("reload: a change of workers takes effect at the "
		    "next start");
	log_setlevel(conf->c_log_level);
	resolve_detach(relay.r_resolve, relay.r_conf);
	conf_free(relay.r_conf);
	relay.r_conf = conf;
	log_notice("reloaded %s", conf->c_file);
	status_ready();
}

static void
reload_resolved(void *arg)
{
	(void)arg;
	reload_apply();
}

/*
 * Parse the configuration file anew, then look its host names up; a name
 * that had no answer yet is waited for (RESOLVE_WAIT at most), so new
 * sessions find addresses, then the reload is applied.  A reload still
 * waiting is dropped for the new one.
 */
static void
reload_begin(void)
{
	struct conf	*conf;
	struct timespec	 ts;
	char		 err[CONF_ERRLEN];

	if (relay.r_reload == NULL) {
		log_notice("SIGHUP: the ad-hoc form has no file to reload");
		return;
	}
	if (relay.r_pending != NULL) {
		log_notice("SIGHUP: the reload still waiting for host names is "
		    "dropped for this one");
		reload_drop();
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000, relay.r_reload);
	log_notice("SIGHUP: reloading %s", relay.r_reload);
	if ((conf = conf_load(relay.r_reload, err, sizeof(err))) == NULL) {
		log_error("reload failed: %s; the running configuration stays",
		    err);
		status_ready();
		return;
	}
	if (relay.r_opts->o_level != -1)
		conf->c_log_level = relay.r_opts->o_level;
	relay.r_pending = conf;
	if (!resolve_attach(relay.r_resolve, conf, reload_resolved, NULL))
		reload_apply();
}

/* SIGHUP: reload (once the start is done). */
static void
signal_reload(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	if (relay.r_stopping)
		return;
	if (!relay.r_started) {
		log_notice("SIGHUP: reloading once the start is done");
		relay.r_reload_due = 1;
		return;
	}
	reload_begin();
}

/*
 * SIGUSR1: every listener's counters, then every open session (each
 * worker logs its own).  SIGUSR2 has no job: a signal sent to ask for one
 * must not kill the relay (its default action) nor touch its sessions.
 */
static void
signal_report(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	if (sig == SIGUSR1 && relay.r_started) {
		log_notice("SIGUSR1: listeners and open sessions follow");
		pool_report(arg);
	} else if (sig == SIGUSR1)
		log_notice("SIGUSR1: nothing to report before the start is "
		    "done");
	else
		log_notice("SIGUSR2: nothing to report (SIGUSR1 reports)");
}

/* Ping the service manager only while every worker's loop answers. */
static void
watchdog_ping(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	if (pool_alive(arg))
		notify("WATCHDOG=1");
}

/*
 * The steps of main(): the command line and the configuration, test
 * mode, start-up (log, limits, bind, detach, pid file, drop), the control
 * loop, shutdown.  Each returns an exit status, 0 to go on.
 */

/*
 * The configuration file as an absolute path, for every reload: -d
 * changes to "/".  Not resolved further: a symbolic link is followed anew
 * at each reload, to wherever it points then.  Without a working
 * directory to start from, the file stays as given.
 */
static char *
reload_path(const char *file)
{
	char	*cwd, *path;
	int	 n = -1;

	if (file[0] != '/' && (cwd = getcwd(NULL, 0)) != NULL) {
		n = asprintf(&path, "%s%s%s", cwd,
		    cwd[strlen(cwd) - 1] == '/' ? "" : "/", file);
		free(cwd);
	}
	if (n == -1 && (path = strdup(file)) == NULL)
		fatal("strdup");
	return path;
}

/* Parse the command line and load the configuration (or the ad-hoc form). */
static int
setup_conf(struct options *o, int nargs, char *args[])
{
	struct conf	*conf;
	char		 err[CONF_ERRLEN];

	if (nargs >= 1 && *args[0] == '\0')
		usage_error("LISTEN: empty; expected [IPV6]:PORT such as "
		    "'[::]:2000'");
	if (nargs >= 2 && *args[1] == '\0')
		usage_error("UPSTREAM: empty; expected IPV4:PORT or HOST:PORT");
	if (nargs == 2) {
		if (o->o_config != NULL)
			usage_error("LISTEN UPSTREAM and -c exclude each other");
		conf = conf_adhoc(args[0], args[1], o->o_proxy, err,
		    sizeof(err));
	} else if (nargs == 0) {
		if (o->o_proxy != NULL)
			usage_error("--proxy-protocol applies to the ad-hoc "
			    "form; use proxy-protocol in the configuration");
		conf = conf_load(o->o_config ? o->o_config :
		    SYSCONFDIR "/relay64.conf", err, sizeof(err));
	} else if (nargs == 1)
		usage_error("UPSTREAM missing after LISTEN \"%s\"", args[0]);
	else
		usage_error("too many arguments: \"%s\"", args[2]);
	if (conf == NULL) {
		fprintf(stderr, "relay64: %s\n", err);
		return EXIT_USAGE;
	}
	if (o->o_level != -1)
		conf->c_log_level = o->o_level;
	relay.r_conf = conf;
	if (conf->c_file != NULL)
		relay.r_reload = reload_path(conf->c_file);
	relay.r_user = o->o_user ? o->o_user : conf->c_user;
	if (relay.r_user != NULL && proc_lookup_user(relay.r_user,
	    &relay.r_uid, &relay.r_gid, err, sizeof(err)) == -1) {
		if (o->o_user != NULL)
			fprintf(stderr, "relay64: --user: %s\n", err);
		else
			fprintf(stderr, "relay64: %s:%d: %s\n", conf->c_file,
			    conf->c_user_line, err);
		return EXIT_USAGE;
	}
	return 0;
}

/*
 * -t: print the effective listeners; nothing is bound.  -C: then check
 * what each can bind and reach (check.c); 1 when something cannot.
 */
static int
test_print(void)
{
	conf_print(relay.r_conf, stdout);
	puts("configuration OK");
	if (!relay.r_opts->o_check)
		return 0;
	fflush(stdout);
	return check_run(relay.r_conf, stdout) == 0 ? 0 : EXIT_RUNTIME;
}

/*
 * Start-up, in this order: logging, the descriptor limit, binding (or
 * taking passed sockets) while still privileged, detaching and the pid
 * file, then the privilege drop.  With -d, the process that was started
 * waits until the daemon is ready (see control_loop()) or has failed,
 * and exits with its status; until then the daemon logs to stderr too.
 */
static int
startup(void)
{
	struct options	*o = relay.r_opts;
	struct conf	*conf = relay.r_conf;
	char		 err[CONF_ERRLEN];

	log_init(conf->c_log_level, o->o_syslog || o->o_daemon);
	log_stderr_too(o->o_daemon);
	notify_init();
	signal(SIGPIPE, SIG_IGN);
	/* Harmless from the start; the control loop logs them. */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	if (proc_raise_nofile(err, sizeof(err)) == -1)
		log_warnx("%s", err);
	if (o->o_daemon && proc_pidfile_prepare(o->o_pidfile, relay.r_user,
	    relay.r_user ? relay.r_uid : geteuid(),
	    relay.r_user ? relay.r_gid : getegid(), err, sizeof(err)) == -1) {
		log_error("%s", err);
		return EXIT_RUNTIME;
	}

	activation_init();
	relay.r_pool = pool_new(conf->c_workers > 0 ?
	    (size_t)conf->c_workers : pool_default_workers(), o->o_once);
	if (pool_bind(relay.r_pool, conf, err, sizeof(err)) == -1) {
		log_error("%s", err);
		activation_done();
		return EXIT_RUNTIME;
	}
	activation_done();
	if (conf->c_statslen > 0 && (relay.r_stats = stats_open((const struct
	    sockaddr *)&conf->c_stats, conf->c_statslen, err,
	    sizeof(err))) == NULL) {
		log_error("%s", err);
		return EXIT_RUNTIME;
	}
	if (o->o_daemon && (proc_daemonize(err, sizeof(err)) == -1 ||
	    proc_pidfile_write(err, sizeof(err)) == -1)) {
		log_error("%s", err);
		return EXIT_RUNTIME;
	}
	/* A drop that fails will fail again: exit 2, which is not restarted. */
	if (relay.r_user != NULL && proc_drop(relay.r_user, relay.r_uid,
	    relay.r_gid, err, sizeof(err)) == -1) {
		log_error("%s: refusing to run on", err);
		return EXIT_USAGE;
	}
	return 0;
}

/* The signals the control loop handles. */
static const struct {
	int			 cs_sig;
	event_callback_fn	 cs_fn;
} control_signals[] = {
	{ SIGTERM,	signal_stop },
	{ SIGINT,	signal_stop },
	{ SIGHUP,	signal_reload },
	{ SIGUSR1,	signal_report },
	{ SIGUSR2,	signal_report },
};
_Static_assert(sizeof(control_signals) / sizeof(control_signals[0]) ==
    NSIGNALS, "NSIGNALS: one event per handled signal");

/*
 * The configuration's host names have their first answers (or failed, or
 * the wait is over): start the workers, then say the relay is ready.
 */
static void
control_start(void *arg)
{
	char		 err[CONF_ERRLEN];
	struct timeval	 tv;
	uint64_t	 wd;

	(void)arg;
	pool_start(relay.r_pool, relay.r_base, relay.r_conf);
	relay.r_started = 1;
	if (relay.r_stats != NULL) {
		if (stats_start(relay.r_stats, relay.r_base, pool_metrics,
		    relay.r_pool, err, sizeof(err)) == -1) {
			log_error("%s", err);
			relay.r_failed = 1;
			pool_halt(relay.r_pool);
			return;
		}
		stats_log(relay.r_stats, "serving");
	}
	if ((wd = notify_watchdog_usec()) != 0) {
		/* Ping at half the interval, if every worker answers. */
		tv.tv_sec = (time_t)(wd / 2 / 1000000);
		tv.tv_usec = (suseconds_t)(wd / 2 % 1000000);
		relay.r_watchdog = event_new(relay.r_base, -1, EV_PERSIST,
		    watchdog_ping, relay.r_pool);
		if (relay.r_watchdog == NULL ||
		    event_add(relay.r_watchdog, &tv) == -1)
			fatalx("cannot start the watchdog timer");
	}
	status_ready();
	/* Where READY=1 went, -d lets the process that started it exit 0. */
	log_stderr_too(0);
	proc_daemon_ready(0);
	if (relay.r_reload_due) {
		relay.r_reload_due = 0;
		reload_begin();
	}
}

/*
 * The control loop: signals, reload, watchdog, the resolver; the workers
 * relay.  Host names are looked up first, so the listening lines (and
 * the first sessions) have their addresses.
 */
static int
control_loop(void)
{
	size_t	i;

	if ((relay.r_base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	for (i = 0; i < NSIGNALS; i++) {
		relay.r_sigs[i] = evsignal_new(relay.r_base,
		    control_signals[i].cs_sig, control_signals[i].cs_fn,
		    relay.r_pool);
		if (relay.r_sigs[i] == NULL ||
		    evsignal_add(relay.r_sigs[i], NULL) == -1)
			fatalx("cannot install signal handlers");
	}
	relay.r_resolve = resolve_new(relay.r_base);
	if (!resolve_attach(relay.r_resolve, relay.r_conf, control_start,
	    NULL))
		control_start(NULL);
	if (event_base_dispatch(relay.r_base) == -1)
		log_error("event loop failed");
	return 0;
}

/*
 * The one way out, whatever step ended: every worker has ended (or none
 * started); free what the steps made, remove the pid file, and with -d
 * pass a start-up failure's status on to the process waiting for it.
 */
static int
shutdown_all(int status)
{
	size_t	i;

	/* A worker whose loop failed, or a --once client that reached no
	   upstream, turns a clean stop into status 1. */
	if (relay.r_pool != NULL && pool_free(relay.r_pool) != 0 &&
	    status == 0)
		status = 1;
	if (relay.r_failed && status == 0)
		status = EXIT_RUNTIME;
	/* Before the loop it serves on goes. */
	stats_free(relay.r_stats);
	if (relay.r_base != NULL) {
		log_notice("stopped");
		if (relay.r_watchdog != NULL)
			event_free(relay.r_watchdog);
		for (i = 0; i < NSIGNALS; i++)
			if (relay.r_sigs[i] != NULL)
				event_free(relay.r_sigs[i]);
		/* After the signals: it runs the loop once more, for evdns. */
		resolve_free(relay.r_resolve);
		event_base_free(relay.r_base);
	}
	conf_free(relay.r_pending);
	conf_free(relay.r_conf);
	free(relay.r_reload);
	proc_pidfile_remove();
	proc_daemon_ready(status);
	return status;
}

int
main(int argc, char *argv[])
{
	struct options	o;
	int		status;

	parse_options(argc, argv, &o);
	relay.r_opts = &o;
	if ((status = setup_conf(&o, argc - optind, argv + optind)) == 0) {
		if (o.o_test)
			status = test_print();
		else if ((status = startup()) == 0)
			status = control_loop();
	}
	return shutdown_all(status);
}
