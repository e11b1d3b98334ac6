#!/usr/bin/env python3
"""relay64 on a public address: the descriptor budget (never accept a client that
cannot be served), waiting for a descriptor instead of closing a client, and the
fault load a public listener meets (connect-and-reset floods, both sides resetting
at once, an upstream that never reads, reloads under traffic).  Each case checks
that the relay's descriptors come back to their baseline."""

import os
import resource
import signal
import socket
import struct
import threading
import time

from relaytest import *


def _config(upstream, workers=2, extra="", listen_extra=""):
    return """\
workers = %d
%s
listen pub {
    bind = "[::1]:0"
    upstream = "%s"
%s
}
""" % (workers, extra, upstream, listen_extra)


def _clients(port, n, size, timeout=None):
    """n clients connect at once (the kernel's backlog holds those the relay does not
    take yet), each sends size bytes and reads its echo. Returns the failures."""
    timeout = bound(60) if timeout is None else timeout
    socks = [connect6(port, timeout=timeout) for _ in range(n)]
    results = [None] * n

    def run(i):
        res = duplex(socks[i], Source(size, i + 1), timeout=timeout)
        socks[i].close()
        results[i] = res
    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 5)
    bad = []
    for i, res in enumerate(results):
        if res is None or res.timed_out or res.rx_len != size or res.rx_sha != res.tx_sha \
                or res.rx_end != "eof":
            bad.append("client %d: %r" % (i, res))
    return bad


def case_budget_serves_everyone():
    "RLIMIT_NOFILE 128, 300 clients at once: the budget is logged, every client is served whole, none is accepted beyond it"
    if WRAPPER:
        raise Skip("the descriptor limit cannot be set exactly under a wrapper")
    be = Backend(echo(), backlog=512)
    r = Relay(config=_config(be.addr), rlimit_nofile=(128, 128))
    bad = _clients(r.port("pub"), 300, 20000)
    expect_eq(bad, [], "clients not served whole")
    m = r.wait_log(r"^relay64: descriptor limit 128: room for (\d+) sessions$", what="the budget line")
    room = int(m.group(1))
    expect(20 <= room <= 57, "sessions 128 descriptors hold, after what the relay holds itself",
           "between 20 and 57", room)
    wait_until(lambda: len(r.sessions()) >= 300, bound(10))
    text = r.log_text()
    expect("out of descriptors" not in text and "Too many open files" not in text,
           "the relay never ran out of descriptors", "no such line", text[-2000:])
    expect_eq(len(r.sessions()), 300, "session lines")
    expect_eq({s.reason for s in r.sessions()}, {"done"}, "how the sessions ended")
    r.check_fds("after 300 clients under a limit of 128")


def case_budget_warning():
    "max-connections above what the descriptor limit holds: a warning says so, the budget applies"
    be = Backend(echo())
    r = Relay(config=_config(be.addr, extra="max-connections = 5000"), rlimit_nofile=(256, 256))
    r.wait_log(r"^relay64: max-connections 5000 is more than the descriptor limit 256 has room for: "
               r"at most \d+ sessions at once", what="the warning")


def case_upstream_waits_for_a_descriptor():
    "descriptors run out after start (another cause): an accepted client waits within connect-timeout for its upstream socket and is served"
    if WRAPPER:
        raise Skip("the descriptor limit cannot be set exactly under a wrapper")
    be = Backend(echo())
    r = Relay(config=_config(be.addr, workers=1, listen_extra="    connect-timeout = 10"))
    port = r.port("pub")
    fds = sorted(r.fd_list())
    expect_eq(fds, list(range(len(fds))), "the relay's descriptors are contiguous")
    soft, hard = resource.prlimit(r.pid, resource.RLIMIT_NOFILE)
    # room for the client's socket, not for the upstream's
    resource.prlimit(r.pid, resource.RLIMIT_NOFILE, (len(fds) + 1, hard))
    c = connect6(port, timeout=bound(20))
    r.wait_log(r"accept paused", what="the pause")
    time.sleep(0.5)
    expect(r.fd_count() == len(fds) + 1, "the client is accepted and kept open",
           "%d descriptors" % (len(fds) + 1), r.fd_count())
    resource.prlimit(r.pid, resource.RLIMIT_NOFILE, (soft, hard))
    res = duplex(c, Source(30000, 3), timeout=bound(20))
    c.close()
    expect(res.rx_len == 30000 and res.rx_sha == res.tx_sha and res.rx_end == "eof",
           "the waiting client is served once a descriptor is free", "30000 bytes echoed", repr(res))
    expect("cannot connect" not in r.log_text(), "no client was closed for want of a descriptor")
    r.check_fds("after waiting for a descriptor")


def _rst(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def case_connect_and_reset_flood():
    "3,000 clients from 6 threads connect and reset at once: the relay runs on, its descriptors come back, a normal session works"
    be = Backend(echo(), backlog=512)
    r = Relay(config=_config(be.addr))
    port = r.port("pub")
    errors = []

    def flood(k):
        try:
            for i in range(500):
                s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                s.settimeout(bound(10))
                s.connect(("::1", port))
                if i % 2:
                    s.send(b"x" * 100)
                _rst(s)
        except OSError as e:
            errors.append("thread %d: %s" % (k, e))
    ts = [threading.Thread(target=flood, args=(k,), daemon=True) for k in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(bound(60))
    expect_eq(errors, [], "flood clients that could not connect")
    wait_until(lambda: len(r.sessions()) >= 3000, bound(30))
    expect_eq(len(r.sessions()), 3000, "session lines after the flood")
    expect(r.running(), "the relay runs on after the flood")
    # the backend may still be accepting the flood's last connections: ours
    # is the last one to arrive once the exchange is over
    client, _ = exchange(port, 100000)
    verify_exchange("a session after the flood", client, be.conns[-1].wait(), 100000, 100000)
    r.check_fds("after 3,000 connect-and-reset clients")


def case_both_sides_reset():
    "1,000 times, client and upstream reset in the same instant: every session ends, descriptors come back"
    def handler(rec):
        _rst(rec.sock)
    be = Backend(handler, backlog=512)
    r = Relay(config=_config(be.addr))
    port = r.port("pub")
    refused = 0
    for i in range(1000):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(bound(10))
        try:
            s.connect(("::1", port))
            s.send(b"y" * 50)
        except (ConnectionResetError, BrokenPipeError):
            refused += 1    # the upstream's reset came through first
        _rst(s)
    note("  %d clients saw the reset before their own" % refused)
    wait_until(lambda: len(r.sessions()) >= 1000, bound(30))
    expect_eq(len(r.sessions()), 1000, "session lines")
    expect(r.running(), "the relay runs on")
    r.check_fds("after 1,000 sessions reset on both sides")


def case_upstream_never_reads():
    "20 clients push into an upstream that never reads: relay memory stays bounded and its CPU idle once buffers are full"
    be = Backend(hold(), backlog=64)
    r = Relay(config=_config(be.addr))
    port = r.port("pub")
    rss0 = r.rss_kib()
    socks = []
    for i in range(20):
        s = connect6(port)
        s.setblocking(False)
        socks.append(s)
    be.wait_conns(20)
    chunk = b"z" * 65536
    pushed = [0] * 20
    quiet_rounds = 0
    while quiet_rounds < 10:
        moved = 0
        for i, s in enumerate(socks):
            try:
                while True:
                    n = s.send(chunk)
                    pushed[i] += n
                    moved += n
            except BlockingIOError:
                pass
        quiet_rounds = quiet_rounds + 1 if moved == 0 else 0
        time.sleep(0.1)
    note("  pushed %.1f MiB in all before every buffer was full" % (sum(pushed) / MiB))
    grown = r.rss_kib() - rss0
    expect(grown < 24 * 1024, "relay memory with 20 stalled directions", "less than 24 MiB more", "%d KiB" % grown)
    cpu0 = r.cpu_seconds()
    time.sleep(2.0)
    cpu = r.cpu_seconds() - cpu0
    expect(cpu < 0.3, "relay CPU while every buffer is full", "< 0.3 s in 2 s", "%.2f s" % cpu)
    for s in socks:
        _rst(s)
    for c in be.conns:
        c.gate.set()
    wait_until(lambda: len(r.sessions()) >= 20, bound(20))
    r.check_fds("after the stalled upstream")


def case_reloads_under_traffic():
    "40 SIGHUPs 100 ms apart while 6 clients exchange checksummed bytes: nothing lost, no failed connect"
    be = Backend(echo(), backlog=256)
    r = Relay(config=_config(be.addr))
    port = r.port("pub")
    stop = threading.Event()
    bad, done = [], [0]
    lock = threading.Lock()

    def client(k):
        seed = k * 1000
        while not stop.is_set():
            seed += 1
            try:
                res, _ = exchange(port, 200000, seed=seed, timeout=bound(20))
            except OSError as e:
                with lock:
                    bad.append("client %d: %s" % (k, e))
                return
            with lock:
                if res.rx_len != 200000 or res.rx_sha != res.tx_sha or res.rx_end != "eof":
                    bad.append("client %d: %r" % (k, res))
                done[0] += 1
    ts = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(6)]
    for t in ts:
        t.start()
    for _ in range(40):
        r.send_signal(signal.SIGHUP)
        time.sleep(0.1)
    wait_until(lambda: r.log_text().count("relay64: reloaded ") >= 40, bound(20))
    stop.set()
    for t in ts:
        t.join(bound(30))
    expect_eq(r.log_text().count("relay64: reloaded "), 40, "reloads done")
    expect_eq(bad, [], "exchanges that lost or changed bytes")
    expect(done[0] >= 6, "exchanges during the reloads", ">= 6", done[0])
    expect("no upstream reachable" not in r.log_text() and "reload failed" not in r.log_text(),
           "no failed connect and no failed reload", "neither", r.log_text()[-3000:])
    note("  %d exchanges of 200 kB each way during 40 reloads" % done[0])
    r.check_fds("after 40 reloads under traffic")


if __name__ == "__main__":
    main([case_budget_serves_everyone, case_budget_warning, case_upstream_waits_for_a_descriptor,
          case_connect_and_reset_flood, case_both_sides_reset, case_upstream_never_reads,
          case_reloads_under_traffic], overall=300)
