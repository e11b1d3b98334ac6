# Tests: C unit tests for the pure code, Python integration tests that start
# the real daemon on loopback.  Run by `make check`.
TEST_EXTENSIONS = .py
# Runs each Python test with $(PYTHON3), or skips it (77) without one.
PY_LOG_COMPILER = $(SHELL) $(srcdir)/tests/python3-or-skip
AM_TESTS_ENVIRONMENT = \
	PYTHON3='$(PYTHON3)'; export PYTHON3; \
	RELAY64='$(abs_top_builddir)/src/relay64'; export RELAY64; \
	RELAY64_RESOLVE_ONCE='$(abs_top_builddir)/tests/resolve_once'; export RELAY64_RESOLVE_ONCE; \
	PYTHONPATH='$(abs_top_srcdir)/tests/lib'; export PYTHONPATH; \
	PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE; \
	RELAY64_SPLICE='$(ENABLE_SPLICE)'; export RELAY64_SPLICE;
if SANITIZERS
AM_TESTS_ENVIRONMENT += \
	RELAY64_SANITIZED=1; export RELAY64_SANITIZED; \
	ASAN_OPTIONS='detect_leaks=1:abort_on_error=0:exitcode=99'; export ASAN_OPTIONS; \
	UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1:exitcode=99'; export UBSAN_OPTIONS;
endif
if TSAN
AM_TESTS_ENVIRONMENT += \
	TSAN_OPTIONS='halt_on_error=1:exitcode=99'; export TSAN_OPTIONS;
endif

# What the C test programs share: the sources' headers, and for those that
# link rooms using threads and libevent, their flags.
TEST_INCLUDES = $(AM_CPPFLAGS) -I$(top_srcdir)/src
TEST_THREAD_CC = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(LIBEVENT_CFLAGS)
TEST_THREAD_LD = $(AM_LDFLAGS) $(PTHREAD_CFLAGS)

check_PROGRAMS += tests/unit_addr
tests_unit_addr_SOURCES = tests/unit_addr.c tests/unit.h src/addr.c src/addr.h
tests_unit_addr_CPPFLAGS = $(TEST_INCLUDES)
TESTS += tests/unit_addr

check_PROGRAMS += tests/unit_admit
tests_unit_admit_SOURCES = tests/unit_admit.c tests/unit.h src/admit.c \
	src/admit.h src/addr.c src/addr.h src/log.c src/log.h
tests_unit_admit_CPPFLAGS = $(TEST_INCLUDES)
tests_unit_admit_CFLAGS = $(TEST_THREAD_CC)
tests_unit_admit_LDFLAGS = $(TEST_THREAD_LD)
tests_unit_admit_LDADD = $(LIBEVENT_LIBS)
TESTS += tests/unit_admit

check_PROGRAMS += tests/unit_metrics
tests_unit_metrics_SOURCES = tests/unit_metrics.c tests/unit.h \
	src/metrics.c src/metrics.h
tests_unit_metrics_CPPFLAGS = $(TEST_INCLUDES)
tests_unit_metrics_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_metrics_LDADD = $(LIBEVENT_LIBS)
TESTS += tests/unit_metrics
check_PROGRAMS += tests/unit_hosts
tests_unit_hosts_SOURCES = tests/unit_hosts.c tests/unit.h src/hosts.c src/hosts.h
tests_unit_hosts_CPPFLAGS = $(TEST_INCLUDES)
TESTS += tests/unit_hosts

# resolve_once() as a program, for t_dns.py.
check_PROGRAMS += tests/resolve_once
tests_resolve_once_SOURCES = tests/resolve_once.c src/resolve.c src/resolve.h \
	src/dns.c src/dns.h src/hosts.c src/hosts.h src/addr.c src/addr.h \
	src/log.c src/log.h
tests_resolve_once_CPPFLAGS = $(TEST_INCLUDES)
tests_resolve_once_CFLAGS = $(TEST_THREAD_CC)
tests_resolve_once_LDFLAGS = $(TEST_THREAD_LD)
tests_resolve_once_LDADD = $(LIBEVENT_LIBS)

check_PROGRAMS += tests/unit_proxyhdr
tests_unit_proxyhdr_SOURCES = tests/unit_proxyhdr.c tests/unit.h \
	src/proxyhdr.c src/proxyhdr.h
tests_unit_proxyhdr_CPPFLAGS = $(TEST_INCLUDES)
TESTS += tests/unit_proxyhdr

# PROXY protocol, decoded by an independent parser (HAProxy).
TESTS += tests/t_proxy.py tests/t_daemon.py tests/t_reload.py tests/t_notify.py tests/t_activation.py tests/t_unit.py
EXTRA_DIST += tests/setup-debian tests/suite tests/python3-or-skip tests/t_proxy.py tests/t_daemon.py \
	tests/t_reload.py tests/t_notify.py tests/t_activation.py tests/t_unit.py

include tests/integration.mk
include tests/bench.mk

# Fuzzing harnesses (tests/fuzz/): tests/fuzz/run runs them with libFuzzer;
# here each is linked with a plain main() and replays its seed corpus and
# regression cases, in every build (plain, sanitizers, threads).
check_PROGRAMS += tests/fuzz/replay_conf tests/fuzz/replay_addr \
	tests/fuzz/replay_proxyhdr
tests_fuzz_replay_conf_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz.h \
	tests/fuzz/fuzz_conf.c src/conf.c src/conf.h src/addr.c src/addr.h \
	src/log.c src/log.h src/proxyhdr.h
tests_fuzz_replay_conf_CPPFLAGS = $(TEST_INCLUDES)
tests_fuzz_replay_conf_CFLAGS = $(AM_CFLAGS) $(CONFUSE_CFLAGS)
tests_fuzz_replay_conf_LDADD = $(CONFUSE_LIBS)
tests_fuzz_replay_addr_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz.h \
	tests/fuzz/fuzz_addr.c src/addr.c src/addr.h
tests_fuzz_replay_addr_CPPFLAGS = $(TEST_INCLUDES)
tests_fuzz_replay_proxyhdr_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz.h \
	tests/fuzz/fuzz_proxyhdr.c src/proxyhdr.c src/proxyhdr.h
tests_fuzz_replay_proxyhdr_CPPFLAGS = $(TEST_INCLUDES)
TESTS += tests/fuzz_replay.sh
EXTRA_DIST += tests/fuzz_replay.sh tests/fuzz/run tests/fuzz/README \
	tests/fuzz/conf.dict tests/fuzz/corpus tests/fuzz/regress
