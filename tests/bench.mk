# Benchmark: relay64 (one worker with splice, one worker copying, one worker
# per CPU) against a direct connection, HAProxy and socat, with one-stream and
# multi-stream bulk loads. benchtool is the load generator and backend; it is
# built by "make check" (and by "make bench") but is not a test. Run the
# benchmark with "make bench" (BENCH_FLAGS=--quick for a smoke run, e.g.
# BENCH_FLAGS="--quick --only relay64,haproxy") or see tests/bench --help.
# "make bench-idle" measures relay64's memory with 100,000 idle sessions
# (tests/bench-idle; fewer where the descriptor limit cannot be raised).

check_PROGRAMS += tests/benchtool
tests_benchtool_SOURCES = tests/benchtool.c
tests_benchtool_LDADD = -lpthread
EXTRA_DIST += tests/bench tests/bench-idle

BENCH_FLAGS =

.PHONY: bench bench-idle
bench: tests/benchtool$(EXEEXT) src/relay64$(EXEEXT)
	$(PYTHON3) $(srcdir)/tests/bench --benchtool tests/benchtool$(EXEEXT) \
	    --relay src/relay64$(EXEEXT) $(BENCH_FLAGS)

bench-idle: tests/benchtool$(EXEEXT) src/relay64$(EXEEXT)
	$(PYTHON3) $(srcdir)/tests/bench-idle --benchtool tests/benchtool$(EXEEXT) \
	    --relay src/relay64$(EXEEXT)
