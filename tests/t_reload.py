#!/usr/bin/env python3
"""SIGHUP reload: sessions streaming through a reload lose nothing, an unchanged
listener keeps its very socket (same kernel-chosen port, no refused connect during
the reload), a new listener answers, a removed one stops, changed settings apply to
new sessions only, and a broken file leaves the running configuration in place."""

import os
import re
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


def proxy_sink(down):
    """Handler: read a PROXY v1 header if one comes first (rec.info["header"]: the
    line, or None), then, once the client has sent something, send `down` bytes while
    reading to EOF.  A client that sends nothing gets nothing: its session stays idle."""
    def handler(rec):
        rec.sock.settimeout(bound(30))
        rec.info["header"] = None
        if rec.sock.recv(6, socket.MSG_PEEK | socket.MSG_WAITALL) == b"PROXY ":
            line = b""
            while not line.endswith(b"\r\n") and len(line) < 108:
                b = rec.sock.recv(1)
                if not b:
                    break
                line += b
            rec.info["header"] = line.decode(errors="replace")
        rec.result = DuplexResult()
        if rec.sock.recv(1, socket.MSG_PEEK) == b"":
            rec.result.rx_end = "eof"
            return
        rec.info["seed"] = 2000 + rec.index
        duplex(rec.sock, Source(down, rec.info["seed"]), res=rec.result, stop=rec.stop)
    return handler


SETTINGS = """\
listen web {
    bind = "[::1]:0"
    upstream = { "%s", "%s" }
    balance = %s
    proxy-protocol = %s
    idle-timeout = %d
    max-connections = %d
}
"""


def _conns(*backends):
    return sum(b.count() for b in backends)


def case_reload_changes_settings():
    "a reload changes balance, proxy-protocol, idle-timeout and max-connections: new sessions take them, an open one keeps its own"
    down = 30000
    a, b = Backend(proxy_sink(down)), Backend(proxy_sink(down))
    r = Relay(config=SETTINGS % (a.addr, b.addr, "first", "off", 0, 1))
    port = r.port("web")

    # Old settings: balance first, no PROXY header.
    for i in range(2):
        res, cport = exchange(port, 5000 + i, seed=60 + i, rx_limit=down)
        verify_exchange("old session %d" % (i + 1), res, a.wait_conns(i + 1).wait(), 5000 + i, down)
    expect_eq((a.count(), b.count()), (2, 0), "sessions per upstream with balance first")
    expect_eq([rec.info["header"] for rec in a.conns], [None, None], "PROXY headers with proxy-protocol off")

    # S1 stays open, idle (idle-timeout 0), across the reload.
    s1 = connect6(port)
    s1_port = s1.getsockname()[1]
    s1_go = threading.Event()
    t1, s1_res = duplex_thread(s1, Source(200 * KiB, 70), tx_gate=s1_go, rx_limit=down)
    a.wait_conns(3)
    # max-connections = 1 holds: a second client waits.
    c_wait = connect6(port)
    c_wait_port = c_wait.getsockname()[1]
    time.sleep(1)
    expect_eq(_conns(a, b), 3, "upstream connections while S1 is open and max-connections is 1")

    reload_with(r, SETTINGS % (a.addr, b.addr, "roundrobin", "v1", 2, 2))
    # max-connections = 2: the waiting client is served now, S1 still open.
    expect(wait_until(lambda: _conns(a, b) == 4, bound(10)), "the waiting client is served after the reload",
           "4 upstream connections", _conns(a, b))
    # ...and a third waits while those two are open (c_wait kept busy below its idle-timeout).
    c3 = connect6(port)
    c3_port = c3.getsockname()[1]
    src = Source(3000, 71)
    for _ in range(5):
        c_wait.sendall(src.read(1))
        time.sleep(0.2)
    expect_eq(_conns(a, b), 4, "upstream connections while two sessions are open and max-connections is 2")
    res = duplex(c_wait, src, rx_limit=down)
    c_wait.close()
    t_served = None
    if wait_until(lambda: _conns(a, b) == 5, bound(10)):
        t_served = time.monotonic()
    expect(t_served is not None, "the third client is served once the second ended", "5 connections",
           _conns(a, b))
    # c3 sends nothing: idle-timeout = 2 closes it; S1 (idle far longer, idle-timeout 0) runs on.
    how, got, secs = wait_closed(c3, bound(10))
    idle = time.monotonic() - t_served
    expect(how in ("eof", "reset") and got == 0, "the idle new session is closed", "EOF, 0 bytes", (how, got))
    expect(idle >= 1.5, "it was closed by the new idle-timeout (2 s)", ">= about 2 s", "%.2f s" % idle)
    expect_eq(r.session_for(c3_port).reason, "idle timeout", "reason of the idle new session")
    expect(t1.is_alive() and s1_res.rx_end is None, "S1, idle since before the reload, is still open",
           "open", repr(s1_res))

    # S1 completes under its own settings: no header, upstream by balance first.
    s1_go.set()
    t1.join(bound(30))
    s1_rec = a.conns[2]
    verify_exchange("S1, open across the reload", s1_res, s1_rec.wait(), 200 * KiB, down)
    expect_eq(s1_rec.info["header"], None, "S1's upstream got no PROXY header")
    expect_eq(r.session_for(s1_port).reason, "done", "S1 ended normally")

    # New sessions: PROXY v1 headers, round robin.
    news = [c_wait_port, c3_port]
    later = []
    for i in range(2):
        res2, cport = exchange(port, 4000 + i, seed=72 + i, rx_limit=down)
        news.append(cport)
        later.append((cport, res2, 4000 + i))
        expect_eq(_conns(a, b), 6 + i, "upstream connections")
    by_port = {}
    for name, be in (("A", a), ("B", b)):
        for rec in be.conns:
            rec.wait()
            h = rec.info["header"]
            if h is not None:
                m = re.fullmatch(r"PROXY TCP6 ::1 ::1 (\d+) (\d+)\r\n", h)
                expect(m is not None and int(m.group(2)) == port, "a v1 header naming the relay's port",
                       "PROXY TCP6 ::1 ::1 CPORT %d" % port, h)
                by_port[int(m.group(1))] = (name, rec)
    expect_eq(sorted(by_port), sorted(news), "client ports in the PROXY headers = the new sessions'")
    order = [by_port[p][0] for p in news]
    note("  upstreams of the new sessions, in order: %s" % " ".join(order))
    expect(all(order[i] != order[i + 1] for i in range(len(order) - 1)),
           "round robin: consecutive new sessions alternate between the upstreams", "A B A B or B A B A", order)
    verify_exchange("the session that waited for the new limit", res, by_port[c_wait_port][1].result, 3000, down)
    for cport, res2, size in later:
        verify_exchange("new session from port %d" % cport, res2, by_port[cport][1].result, size, down)


if __name__ == "__main__":
    main([case_reload_under_load, case_broken_reload_keeps_running, case_bind_failure_changes_nothing,
          case_reload_changes_settings])
