#!/usr/bin/env python3
"""Workers: `workers = N` runs N event loops (threads), each with its own SO_REUSEPORT
socket per listener; sessions spread over them, bytes arrive whole, the connection
limits count every worker's sessions exactly, reload and stop reach every worker; and
the `splice` switch decides whether bulk bytes go through a pipe."""

import os
import re
import select
import signal
import socket
import threading
import time

from relaytest import *

BANNER = b"HELLO relay64\r\n"
_worker_re = re.compile(r"session [0-9a-f]{16} from \S+ on worker (\d+)$", re.M)


def _worker_threads(pid):
    """The relay's worker threads, by name ("relay64 w0", ...)."""
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return sorted(n for n in names if re.fullmatch(r"relay64 w\d+", n))


def _run_sessions(port, n, base_seed):
    """n concurrent exchanges of distinct sizes; returns [(ident, client, up, down)]."""
    results = {}
    start = threading.Event()

    def one(i):
        start.wait()
        try:
            results[i] = sized_exchange(port, i, 1000 + 37 * i, 500 + 91 * i,
                                        base_seed + 2 * i, base_seed + 2 * i + 1,
                                        timeout=bound(60))
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(bound(90))
    return results


def _check_sessions(what, results, be, n, first=0):
    """Sessions 0..n-1 of _run_sessions arrived whole both ways (the upstream's
    connections first..first+n-1 carry them)."""
    for i in range(n):
        res = results.get(i)
        if isinstance(res, Exception):
            raise Fail("%s: session %d: %s" % (what, i, res))
        expect(res is not None, "%s: session %d finished" % (what, i))
    be.wait_conns(first + n)
    ups = {}
    for rec in be.conns[first:first + n]:
        rec.wait(bound(30))
        ups[rec.info.get("id")] = rec.result
    for i in range(n):
        expect(i in ups, "%s: session %d reached the upstream" % (what, i))
        verify_exchange("%s, session %d" % (what, i), results[i][0], ups[i],
                        1000 + 37 * i, 500 + 91 * i)


def case_spread():
    "workers = 3: three loops (threads) take sessions; 120 concurrent sessions checksummed, every worker served some"
    be = Backend(sized(), backlog=256)
    r = Relay(config="""\
workers = 3
log-level = debug
listen spread {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % be.addr)
    expect_eq(r.workers(), 3, "workers started")
    expect_eq(_worker_threads(r.pid), ["relay64 w0", "relay64 w1", "relay64 w2"],
              "worker threads of the relay")
    results = _run_sessions(r.port("spread"), 120, 7000)
    _check_sessions("spread over workers", results, be, 120)
    per = {}
    for m in _worker_re.finditer(r.log_text()):
        per[int(m.group(1))] = per.get(int(m.group(1)), 0) + 1
    note("  sessions per worker: %s" % dict(sorted(per.items())))
    expect_eq(sum(per.values()), 120, "sessions started (debug lines)")
    # the kernel hashes each connection to one of the 3 sockets: all 120 on two or
    # fewer of them would take a (2/3)^120 chance
    expect_eq(sorted(per), [0, 1, 2], "workers that took sessions")
    r.check_fds("after sessions on every worker")


def case_default_per_cpu():
    "no workers key: one worker per CPU the relay may run on"
    be = Backend(sink_source(3000))
    r = Relay(args=["[::1]:0", be.addr])
    cpus = len(os.sched_getaffinity(0))
    expect_eq(r.workers(), min(cpus, 256), "workers started by default (CPUs: %d)" % cpus)
    expect_eq(len(_worker_threads(r.pid)), r.workers(), "worker threads of the relay")
    client, cport = exchange(r.port(), 5000, seed=7100, rx_limit=3000)
    verify_exchange("default workers", client, be.wait_conns(1).wait(), 5000, 3000)
    r.check_session("default workers", cport, 5000, 3000)


def _served_exactly(conns, limit, what):
    """Of conns, exactly `limit` get served (their banner arrives) and the rest wait.
    Watches all of them at once: until `limit` are served (bounded), then 0.5 s more
    in which no other may be.  Returns (served, waiting)."""
    got = {c: b"" for c in conns}
    served = []

    def poll(until):
        while time.monotonic() < until:
            waiting = [c for c in conns if c not in served]
            if not waiting:
                return
            ready, _, _ = select.select(waiting, [], [], max(0.0, until - time.monotonic()))
            for c in ready:
                try:
                    data = c.recv(len(BANNER) - len(got[c]))
                except ConnectionResetError:
                    data = b""
                if not data:
                    raise Fail("%s: a connection was closed while waiting" % what)
                got[c] += data
                if got[c] == BANNER:
                    served.append(c)
                elif not BANNER.startswith(got[c]):
                    raise Fail("%s: a connection got %r" % (what, got[c]))
            if len(served) >= limit and until - time.monotonic() > 0.5:
                until = time.monotonic() + 0.5

    want = min(limit, len(conns))
    poll(time.monotonic() + bound(10))
    expect_eq(len(served), want, "%s: connections served" % what)
    return served, [c for c in conns if c not in served]


def _limit_case(config, port_name, limit, be, r, what):
    port = r.port(port_name)
    conns = [connect6(port) for _ in range(3 * limit)]
    rounds = 0
    while conns:
        served, conns = _served_exactly(conns, limit, "%s, round %d" % (what, rounds + 1))
        expect_eq(be.count(), limit * rounds + len(served),
                  "%s, round %d: connections that reached the upstream" % (what, rounds + 1))
        for c in served:
            c.close()
        rounds += 1
    expect_eq(rounds, 3, "%s: rounds of %d" % (what, limit))
    r.check_fds("after %s" % what)


def case_global_limit_across_workers():
    "workers = 4, max-connections = 3: of 9 clients exactly 3 are served at a time, whichever worker took them"
    be = Backend(banner_echo(BANNER), backlog=64)
    config = """\
workers = 4
max-connections = 3
listen lim {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % be.addr
    r = Relay(config=config)
    _limit_case(config, "lim", 3, be, r, "global limit over 4 workers")


def case_listener_limit_across_workers():
    "workers = 4, listen max-connections = 2: of 6 clients exactly 2 are served at a time"
    be = Backend(banner_echo(BANNER), backlog=64)
    config = """\
workers = 4
listen lim {
    bind = "[::1]:0"
    upstream = "%s"
    max-connections = 2
}
""" % be.addr
    r = Relay(config=config)
    _limit_case(config, "lim", 2, be, r, "listener limit over 4 workers")


def case_reload_and_stop():
    "workers = 2: a reload adds and removes listeners in every worker; SIGTERM drains every worker, exit 0"
    be = Backend(sized(), backlog=128)
    conf1 = """\
workers = 2
listen old {
    bind = "[::1]:0"
    upstream = "%s"
}
listen kept {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % (be.addr, be.addr)
    r = Relay(config=conf1)
    old_port, kept_port = r.port("old"), r.port("kept")
    _reload(r, """\
workers = 3
listen kept {
    bind = "[::1]:0"
    upstream = "%s"
}
listen new {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % (be.addr, be.addr))
    r.wait_log(r"reload: a change of workers takes effect at the next start",
               what="the workers change is deferred")
    r.listeners = {}
    r.wait_ready()
    new_port = r.port("new")
    expect_eq(r.port("kept"), kept_port, "the kept listener's port")
    # "reloaded" is logged once every worker has applied the new configuration, so
    # no worker's socket for the removed listener is left: every connect is refused
    for i in range(20):
        expect(refused(old_port), "the removed listener refuses connection %d" % (i + 1),
               "refused", "accepted")
    results = _run_sessions(new_port, 40, 7200)
    _check_sessions("the new listener, every worker", results, be, 40)
    results = _run_sessions(kept_port, 40, 7300)
    _check_sessions("the kept listener, every worker", results, be, 40, first=40)
    status = r.stop(signal.SIGTERM)
    expect_eq(status, 0, "exit status after SIGTERM")


def _reload(r, text):
    """Write the new configuration over the old file, SIGHUP, wait for "reloaded"."""
    n = r.log_text().count("reloaded ")
    with open(r.confpath, "w") as f:
        f.write(text)
    r.send_signal(signal.SIGHUP)
    ok = wait_until(lambda: r.log_text().count("reloaded ") > n or "reload failed" in r.log_text(),
                    bound(10))
    expect(ok and "reload failed" not in r.log_text(), "the reload succeeds", "reloaded",
           r.log_text())


def _stalled_pipes(splice):
    """Upstream pushes 8 MiB to a client that does not read; once stalled, count the
    relay's pipe descriptors; then let everything through and check it."""
    total = 8 * MiB
    be = Backend(sink_source(total, timeout=bound(60), rx_limit=1000))
    r = Relay(config="""\
workers = 1
splice = %s
listen s {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % ("true" if splice else "false", be.addr))
    s = connect6(r.port("s"), rcvbuf=128 * KiB)
    cport = s.getsockname()[1]
    gate = threading.Event()
    t, res = duplex_thread(s, Source(1000, 7400), timeout=bound(60), rx_gate=gate, rx_limit=total)
    rec = be.wait_conns(1)
    wait_stall(lambda: rec.result.tx_len if rec.result else 0, total, quiet=1.0)
    pipes = sum(1 for fd, v in r.fd_list().items()
                if v.startswith("pipe:") and r.baseline_fds.get(fd) != v)
    gate.set()
    t.join(bound(60))
    verify_exchange("splice = %s" % splice, res, rec.wait(bound(60)), 1000, total)
    r.check_session("splice = %s" % splice, cport, 1000, total)
    r.check_fds("after the bulk session")
    return pipes


def case_splice_switch():
    "splice = false: bulk bytes never take a pipe; splice = true (a splice build): a bulk direction has one"
    expect_eq(_stalled_pipes(False), 0, "pipe descriptors of a stalled bulk session, splice = false")
    if os.environ.get("RELAY64_SPLICE") != "yes":
        note("  built without splice: splice = true is not checked")
        return
    expect_eq(_stalled_pipes(True), 2, "pipe descriptors of a stalled bulk session, splice = true")


if __name__ == "__main__":
    main([case_spread, case_default_per_cpu, case_global_limit_across_workers,
          case_listener_limit_across_workers, case_reload_and_stop, case_splice_switch])
