# Integration tests: Python 3 scripts (standard library only) that start the
# built relay64 on loopback ([::1] listeners, 127.0.0.1 upstreams, ports picked
# by the kernel) and check it from the outside. Included from tests/local.mk,
# which sets TEST_EXTENSIONS, PY_LOG_COMPILER and the RELAY64/PYTHONPATH
# environment. Each script: 0 pass, 1 fail, 77 skip, 99 hard error.
#   RELAY64_WRAPPER="valgrind -q ..."  runs the daemon under a wrapper;
#   RELAY64_KEEP_TMP=1                 keeps a test's temporary directory.
RELAY64_INTEGRATION_TESTS = \
	tests/t_cli.py \
	tests/t_conf_errors.py \
	tests/t_relay_bytes.py \
	tests/t_edges.py \
	tests/t_concurrent.py \
	tests/t_halfclose.py \
	tests/t_upstream_fail.py \
	tests/t_dns.py \
	tests/t_reset.py \
	tests/t_backpressure.py \
	tests/t_once.py \
	tests/t_idle.py \
	tests/t_stop.py \
	tests/t_limits.py \
	tests/t_listen_opts.py \
	tests/t_workers.py \
	tests/t_worker_faults.py \
	tests/t_public.py \
	tests/t_log.py \
	tests/t_metrics.py \
	tests/t_check.py \
	tests/t_access.py \
	tests/t_keepalive.py

TESTS += $(RELAY64_INTEGRATION_TESTS)
EXTRA_DIST += $(RELAY64_INTEGRATION_TESTS) tests/lib/relaytest.py
