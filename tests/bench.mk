# Benchmark: relay64 (one worker with splice, one worker copying, one worker
# per CPU, one worker sending PROXY v2) against a direct connection, HAProxy
# (also with send-proxy-v2), nginx's stream module and socat, plus a
# worker-scaling case where the machine has the CPUs for it. benchtool is
# the load generator and backend; it is built by "make check" (and by "make
# bench") but is not a test. Run the benchmark with "make bench"
# (BENCH_FLAGS=--quick for a smoke run, e.g. BENCH_FLAGS="--quick --only
# relay64,haproxy") or see tests/bench --help.
# "make bench-idle" measures relay64's memory with 100,000 idle sessions
# (tests/bench-idle; fewer where the descriptor limit cannot be raised).
# "make bench-syscalls" counts the system calls relay64, nginx and HAProxy
# make per short connection and per round trip (tests/bench-syscalls, under
# strace). PERFORMANCE.md says what every figure means.

check_PROGRAMS += tests/benchtool
tests_benchtool_SOURCES = tests/benchtool.c
tests_benchtool_LDADD = -lpthread
EXTRA_DIST += tests/bench tests/bench-idle tests/bench-syscalls PERFORMANCE.md

BENCH_FLAGS =

.PHONY: bench bench-idle bench-syscalls
bench: tests/benchtool$(EXEEXT) src/relay64$(EXEEXT)
	$(PYTHON3) $(srcdir)/tests/bench --benchtool tests/benchtool$(EXEEXT) \
	    --relay src/relay64$(EXEEXT) $(BENCH_FLAGS)

bench-idle: tests/benchtool$(EXEEXT) src/relay64$(EXEEXT)
	$(PYTHON3) $(srcdir)/tests/bench-idle --benchtool tests/benchtool$(EXEEXT) \
	    --relay src/relay64$(EXEEXT)

bench-syscalls: tests/benchtool$(EXEEXT) src/relay64$(EXEEXT)
	$(PYTHON3) $(srcdir)/tests/bench-syscalls \
	    --benchtool tests/benchtool$(EXEEXT) --relay src/relay64$(EXEEXT)
