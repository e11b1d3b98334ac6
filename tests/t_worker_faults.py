#!/usr/bin/env python3
"""Workers under faults: a worker whose loop fails stops the process (its listening
socket closed, exit 1); a stalled worker stops the watchdog's pings; workers leave
synchronous signals unblocked (so a crash reaches the sanitizers' reporters); a reload
that runs out of descriptors fails and keeps the relay running."""

import os
import re
import resource
import signal
import socket
import time

from relaytest import *
from t_notify import NotifySocket


def _config(upstream, workers, extra=""):
    return """\
workers = %d
listen a {
    bind = "[::1]:0"
    upstream = "%s"
}
%s""" % (workers, upstream, extra)


def case_loop_failure_stops():
    "a worker whose event loop fails: its listeners and sessions close, the process stops with status 1"
    be = Backend(echo())
    env = dict(os.environ, RELAY64_TEST_HOOK="fail-loop:1")
    r = Relay(config=_config(be.addr, 2), env=env, wait=False)
    st = r.wait_exit(bound(20), "a relay whose worker loop failed")
    r.check_exit(st, 1, "exit status when a worker's loop failed")
    text = r.log_text()
    expect_match(r"worker 1: event loop failed: closing its listeners", text, "the failed worker says so")
    expect_match(r"a worker's event loop failed: stopping", text, "the process says why it stops")


def case_watchdog_stall():
    "WATCHDOG_USEC set and worker 1 stalled: the watchdog pings stop and the log names the worker"
    be = Backend(echo())
    ns = NotifySocket()
    env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="200000",
               RELAY64_TEST_HOOK="stall-ping:1")
    r = Relay(config=_config(be.addr, 2), env=env)
    try:
        r.wait_log(r"worker 1 has not answered for a watchdog interval", bound(10),
                   "the stalled worker is named")
        # what was sent before that line is in the socket already: drop it
        ns.sock.setblocking(False)
        try:
            while True:
                ns.sock.recv(4096)
        except BlockingIOError:
            pass
        # from now on no WATCHDOG=1 may come: listen for ten intervals
        got = []
        ns.sock.settimeout(0.2)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                got.append(ns.sock.recv(4096).decode())
            except socket.timeout:
                pass
        pings = [m for m in got if "WATCHDOG=1" in m.split("\n")]
        expect_eq(pings, [], "WATCHDOG=1 messages while worker 1 is stalled")
    finally:
        r.kill()


def _sigmask(pid, tid):
    with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
        m = re.search(r"^SigBlk:\s*([0-9a-f]+)$", f.read(), re.M)
    return int(m.group(1), 16)


def _comm(pid, tid):
    with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
        return f.read().strip()


def case_worker_signal_mask():
    "workers block the control thread's signals (TERM, INT, HUP, USR1, USR2) and no synchronous one"
    be = Backend(echo())
    r = Relay(config=_config(be.addr, 2))
    workers = [t for t in os.listdir("/proc/%d/task" % r.pid) if _comm(r.pid, t).startswith("relay64 w")]
    expect_eq(len(workers), 2, "worker threads found by name")
    for t in workers:
        mask = _sigmask(r.pid, t)
        for sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT,
                    signal.SIGTRAP):
            expect(not mask & (1 << (sig - 1)), "worker %s: %s not blocked" % (_comm(r.pid, t), sig.name),
                   "unblocked", "blocked (mask %x)" % mask)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            expect(mask & (1 << (sig - 1)), "worker %s: %s blocked" % (_comm(r.pid, t), sig.name),
                   "blocked", "unblocked (mask %x)" % mask)
    client, _ = exchange(r.port("a"), 100000)
    verify_exchange("traffic through the workers", client, be.conns[0].wait(), 100000, 100000)


def case_reload_out_of_descriptors():
    "a reload that adds a listener when descriptors run out fails with a reason; the relay runs on"
    be = Backend(echo())
    r = Relay(config=_config(be.addr, 4))
    port = r.port("a")
    soft, hard = resource.prlimit(r.pid, resource.RLIMIT_NOFILE)
    fds = sorted(r.fd_list())
    expect_eq(fds, list(range(len(fds))), "the relay's descriptors are contiguous")
    # room for one descriptor more: the new listener's first socket, not one per worker
    resource.prlimit(r.pid, resource.RLIMIT_NOFILE, (len(fds) + 1, hard))
    with open(r.confpath, "w") as f:
        f.write(_config(be.addr, 4, 'listen b {\n    bind = "[::1]:0"\n    upstream = "%s"\n}\n' % be.addr))
    r.send_signal(signal.SIGHUP)
    r.wait_log(r"reload failed: listen b: .*Too many open files; the running configuration stays",
               bound(10), "the reload fails with a reason")
    expect(r.running(), "the relay runs on after the failed reload")
    resource.prlimit(r.pid, resource.RLIMIT_NOFILE, (soft, hard))
    client, _ = exchange(port, 50000)
    verify_exchange("listen a after the failed reload", client, be.conns[0].wait(), 50000, 50000)
    r.check_fds("after the failed reload")
    # with descriptors to spare, the same reload succeeds
    r.send_signal(signal.SIGHUP)
    m = r.wait_log(r"^relay64: listen b: listening on \[::1\]:(\d+)", bound(10), "the reload succeeds")
    client, _ = exchange(int(m.group(1)), 50000)
    verify_exchange("listen b after the second reload", client, be.conns[1].wait(), 50000, 50000)
    r.rebaseline()


if __name__ == "__main__":
    main([case_loop_failure_stops, case_watchdog_stall, case_worker_signal_mask,
          case_reload_out_of_descriptors])
