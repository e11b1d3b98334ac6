#!/usr/bin/env python3
"""SIGHUP reload: sessions streaming through a reload lose nothing, an unchanged
listener keeps its very socket (same kernel-chosen port, no refused connect during
the reload), a new listener answers, a removed one stops, changed settings apply to
new sessions only, and a broken file leaves the running configuration in place."""

import os
import signal
import socket
import threading
import time

from relaytest import *


def conf(*listeners, extra=""):
    return extra + "".join(
        'listen %s {\n    bind = "[::1]:%d"\n    upstream = "%s"\n%s}\n' % l for l in listeners)


def reload_with(r, text, expect_ok=True):
    """Write the new configuration over the old file, SIGHUP, wait for the verdict."""
    n_before = r.log_text().count("reloaded ") + r.log_text().count("reload failed")
    with open(r.confpath, "w") as f:
        f.write(text)
    r.send_signal(signal.SIGHUP)
    ok = wait_until(lambda: r.log_text().count("reloaded ") + r.log_text().count("reload failed")
                    > n_before, bound(10))
    expect(ok, "the relay answers SIGHUP", "a 'reloaded' or 'reload failed' line", r.log_text())
    tail = r.log_text().split("SIGHUP: reloading")[-1]
    if expect_ok:
        expect("reloaded " in tail, "the reload succeeds", "reloaded", tail)
    else:
        expect("reload failed" in tail, "the reload fails", "reload failed", tail)
    return tail


def case_reload_under_load():
    "streams through a reload arrive whole; kept listener keeps its socket; new answers; removed stops"
    # The upstream reads nothing until after the reload, so the four
    # sessions (8 MiB each way) are mid-stream when it happens.
    be1 = Backend(sink_source(8 * MiB, hold_rx=True))
    be2 = Backend(sink_source(1000))
    r = Relay(config=conf(("keep", 0, be1.addr, ""), ("gone", 0, be1.addr, "")))
    keep_port, gone_port = r.port("keep"), r.port("gone")
    streams = []
    for i in range(4):
        s = connect6(keep_port)
        th, res = duplex_thread(s, Source(8 * MiB, 100 + i))
        streams.append((s.getsockname()[1], th, res))
        # one at a time, so that the upstream's i-th connection is this stream's
        # (workers would otherwise connect upstream in any order)
        be1.wait_conns(i + 1)

    # Connect to the kept listener over and over while the reload happens.
    stop = threading.Event()
    failures, attempts = [], [0]

    def hammer():
        while not stop.is_set():
            c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            c.settimeout(bound(5))
            try:
                c.connect(("::1", keep_port))
                attempts[0] += 1
            except OSError as e:
                failures.append(repr(e))
            finally:
                c.close()
            time.sleep(0.005)
    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    time.sleep(0.2)
    reload_with(r, conf(("keep", 0, be2.addr, '    idle-timeout = 300\n'),
                        ("fresh", 0, be2.addr, "")))
    time.sleep(0.2)
    stop.set()
    t.join(bound(10))
    expect_eq(failures, [], "connects to the kept listener during the reload (%d made)" % attempts[0])

    for rec in be1.conns[:4]:
        rec.gate.set()
    for (cport, th, res), rec in zip(streams, be1.conns[:4]):
        th.join(bound(30))
        verify_exchange("stream from port %d through the reload" % cport, res, rec.wait(),
                        8 * MiB, 8 * MiB)
        expect_eq(r.session_for(cport).reason, "done", "stream %d ended normally" % cport)

    r.listeners = {}
    r.wait_ready()
    expect_eq(r.port("keep"), keep_port, "the kept listener still has its kernel-chosen port")
    expect(refused(gone_port), "the removed listener refuses connections", "refused", "accepted")
    res, cport = exchange(r.port("fresh"), 500)
    expect_eq(res.rx_len, 1000, "the new listener relays to its upstream")
    res, cport = exchange(keep_port, 700)
    expect_eq(res.rx_len, 1000, "the kept listener's new sessions use the new upstream")
    r.rebaseline()


def case_broken_reload_keeps_running():
    "a reload with a broken file logs FILE:LINE and the running configuration stays"
    be = Backend(sink_source(2000))
    r = Relay(config=conf(("web", 0, be.addr, "")))
    port = r.port("web")
    tail = reload_with(r, 'listen web {\n    bind = "[::1]:0"\n    upstream = "10.0.0.300:80"\n}\n',
                       expect_ok=False)
    expect_match(r'reload failed: .*relay\d+\.conf:3: upstream "10\.0\.0\.300:80": not an IPv4 address'
                 r' or host name; the running configuration stays', tail, "the error names file and line")
    res, cport = exchange(port, 1234)
    expect_eq(res.rx_len, 2000, "the old listener still relays")
    expect(r.running(), "the relay still runs", "running", "exited")


def case_bind_failure_changes_nothing():
    "a reload whose new listener cannot bind changes nothing"
    be = Backend(sink_source(10))
    holder = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    track(holder)
    holder.bind(("::1", 0))
    holder.listen(1)
    busy = holder.getsockname()[1]
    r = Relay(config=conf(("a", 0, be.addr, ""), ("b", 0, be.addr, "")))
    pa, pb = r.port("a"), r.port("b")
    tail = reload_with(r, conf(("a", 0, be.addr, ""), ("c", busy, be.addr, "")), expect_ok=False)
    expect_match(r"listen c: bind \[::1\]:%d: Address already in use" % busy, tail, "the bind error")
    for name, p in (("a", pa), ("b", pb)):
        res, cport = exchange(p, 10)
        expect_eq(res.rx_len, 10, "listener %s still relays" % name)


if __name__ == "__main__":
    main([case_reload_under_load, case_broken_reload_keeps_running, case_bind_failure_changes_nothing])
