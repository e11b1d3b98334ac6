/*
 * log.h: leveled logging to stderr (default) or syslog.
 *
 * log_warn() appends strerror(errno); log_warnx() does not.  Messages
 * are always printf formats written by relay64 itself; user text goes in
 * as an argument, never as the format.
 */
#ifndef RELAY64_LOG_H
#define RELAY64_LOG_H

#include <stdarg.h>
#include <syslog.h>

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))

void	log_init(int level, int use_syslog);
void	log_stderr_too(int on);
void	log_setlevel(int level);
int	log_getlevel(void);
int	log_debugging(void);
int	log_enabled(int pri);
int	log_level_parse(const char *name);	/* -1 when unknown */
const char *log_level_name(int level);
const char *log_errstr(int err);	/* strerror(), thread-safe */

void	log_warn(const char *, ...) LOG_FMT(1, 2);
void	log_warnx(const char *, ...) LOG_FMT(1, 2);
void	log_error(const char *, ...) LOG_FMT(1, 2);
void	log_notice(const char *, ...) LOG_FMT(1, 2);
void	log_info(const char *, ...) LOG_FMT(1, 2);
void	log_debug(const char *, ...) LOG_FMT(1, 2);
void	log_at(int pri, const char *, ...) LOG_FMT(2, 3);
void	log_vat(int pri, const char *, va_list) LOG_FMT(2, 0);
void	fatal(const char *, ...) LOG_FMT(1, 2) __attribute__((noreturn));
void	fatalx(const char *, ...) LOG_FMT(1, 2) __attribute__((noreturn));

#endif
