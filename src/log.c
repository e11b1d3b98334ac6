/*
 * log.c: leveled logging to stderr or syslog.
 *
 * On stderr every line starts with "relay64: ".  When stderr is the
 * systemd journal (JOURNAL_STREAM names it), lines carry a "<N>" priority
 * prefix instead, which the journal turns into the message's level.
 * A daemon starting up logs to syslog and to stderr too, until it is
 * ready (log_stderr_too()).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

/* Set by the control thread (a reload, the end of a start), read by every
   worker. */
static atomic_int log_level = LOG_INFO;
static atomic_int log_tee;	/* syslog and stderr */
static int	log_syslog;
static int	log_journal;

static const struct {
	const char	*name;
	int		 level;
} log_levels[] = {
	{ "error",	LOG_ERR },
	{ "warning",	LOG_WARNING },
	{ "notice",	LOG_NOTICE },
	{ "info",	LOG_INFO },
	{ "debug",	LOG_DEBUG },
};

static int
log_stderr_is_journal(void)
{
	const char	*js = getenv("JOURNAL_STREAM");
	unsigned long	 dev, ino;
	struct stat	 st;

	if (js == NULL || sscanf(js, "%lu:%lu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return st.st_dev == dev && st.st_ino == ino;
}

void
log_init(int level, int use_syslog)
{
	log_level = level;
	log_syslog = use_syslog;
	log_journal = !use_syslog && log_stderr_is_journal();
	if (use_syslog)
		openlog("relay64", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* With syslog: copy every line to stderr as well (on), or no more (off). */
void
log_stderr_too(int on)
{
	atomic_store_explicit(&log_tee, on && log_syslog, memory_order_relaxed);
}

/*
 * strerror() for any thread: workers log errors from their own threads,
 * and strerror()'s buffer for an unknown errno is shared.
 */
const char *
log_errstr(int err)
{
	static __thread char	buf[64];

	return strerror_r(err, buf, sizeof(buf));
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Worth formatting a message at pri? */
int
log_enabled(int pri)
{
	return pri <= log_getlevel();
}

/* Worth formatting a debug message? */
int
log_debugging(void)
{
	return log_getlevel() >= LOG_DEBUG;
}

int
log_level_parse(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcasecmp(name, log_levels[i].name) == 0)
			return log_levels[i].level;
	return -1;
}

const char *
log_level_name(int level)
{
	size_t	i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (log_levels[i].level == level)
			return log_levels[i].name;
	return "unknown";
}

void
log_vat(int pri, const char *fmt, va_list ap)
{
	int	saved = errno;

	va_list	ap2;

	if (pri > log_getlevel())
		return;
	if (log_syslog) {
		va_copy(ap2, ap);
		vsyslog(pri, fmt, ap2);
		va_end(ap2);
	}
	if (!log_syslog || atomic_load_explicit(&log_tee, memory_order_relaxed)) {
		/* One line at a time: workers log from their own threads. */
		flockfile(stderr);
		if (log_journal)
			fprintf(stderr, "<%d>", pri);
		else
			fputs("relay64: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		fflush(stderr);
		funlockfile(stderr);
	}
	errno = saved;
}

void
log_at(int pri, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vat(pri, fmt, ap);
	va_end(ap);
}

static void
log_verr(int pri, const char *fmt, va_list ap)
{
	char	msg[1024];
	int	saved = errno;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_at(pri, "%s: %s", msg, log_errstr(saved));
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_verr(LOG_WARNING, fmt, ap);
	va_end(ap);
}

#define LOG_SIMPLE(fn, pri)			\
void						\
fn(const char *fmt, ...)			\
{						\
	va_list	ap;				\
						\
	va_start(ap, fmt);			\
	log_vat(pri, fmt, ap);			\
	va_end(ap);				\
}

LOG_SIMPLE(log_warnx, LOG_WARNING)
LOG_SIMPLE(log_error, LOG_ERR)
LOG_SIMPLE(log_notice, LOG_NOTICE)
LOG_SIMPLE(log_info, LOG_INFO)
LOG_SIMPLE(log_debug, LOG_DEBUG)

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_verr(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vat(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}
