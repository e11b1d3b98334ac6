#!/usr/bin/env python3
"""Upstream failures: refused, connect timeout, failover to the next upstream; upstream
forms (host name, IPv4-mapped). Only 127.0.0.0/8 addresses are used."""

import socket
import time

from relaytest import *


def _expect_closed_empty(relay, what, timeout, send=b"hello?", listener="cmdline"):
    """A client connects, (optionally) sends a little, and must be closed with 0 bytes."""
    s = connect6(relay.port(listener))
    cport = s.getsockname()[1]
    t0 = time.monotonic()
    if send:
        try:
            s.sendall(send)
        except OSError:
            pass
    how, got, secs = wait_closed(s, timeout)
    s.close()
    expect(how in ("eof", "reset"), "%s: the client connection is closed" % what,
           "EOF or reset within %.0f s" % timeout, "%s after %.1f s" % (how, secs))
    expect_eq(got, 0, "%s: bytes the client received" % what)
    return cport, time.monotonic() - t0


def case_refused():
    "the only upstream refuses: the client is closed with 0 bytes; the log says no upstream reachable, refused"
    dead = RefusedPort()
    r = Relay(args=["[::1]:0", dead.addr])
    for i in range(3):
        cport, secs = _expect_closed_empty(r, "refused upstream", bound(10), send=b"x" * i * 1000)
        s = r.session_for(cport)
        expect("no upstream reachable" in s.reason and "refused" in s.reason.lower()
               and dead.addr in s.reason,
               "refused upstream: the session's reason", "no upstream reachable (last: %s: Connection refused)"
               % dead.addr, s.line)
        expect_eq((s.upstream, s.up, s.down), ("-", 0, 0), "refused upstream: upstream and counts in the log")
        r.check_fds("after a refused upstream")
    expect(r.running(), "the relay keeps running after refused upstreams")


def case_failover_refused():
    "upstream = { refused, good }: the session goes to the good one, bytes check"
    dead = RefusedPort()
    be = Backend(sink_source(50000))
    r = Relay(config="""\
listen fo {
    bind = "[::1]:0"
    upstream = { "%s", "%s" }
}
""" % (dead.addr, be.addr))
    for i in range(2):
        client, cport = exchange(r.port("fo"), 40000, seed=30 + i, rx_limit=50000)
        upstream = be.wait_conns(i + 1).wait()
        verify_exchange("failover from a refused upstream", client, upstream, 40000, 50000)
        s = r.check_session("failover from refused", cport, 40000, 50000)
        expect_eq(s.upstream, be.addr, "failover from refused: upstream in the session line")
        r.check_fds("after a failover")


def case_connect_timeout():
    "connect-timeout = 1 and an upstream that never answers: the client is closed with 0 bytes in about 1 s; the log says connect timeout"
    hang = FullBacklog()
    r = Relay(config="""\
listen ct {
    bind = "[::1]:0"
    upstream = "%s"
    connect-timeout = 1
}
""" % hang.addr)
    cport, secs = _expect_closed_empty(r, "connect timeout", bound(10), listener="ct")
    expect(secs >= 0.8, "connect timeout: the relay waited for the connect timeout",
           "closed after about 1 s", "closed after %.2f s" % secs)
    s = r.session_for(cport)
    expect("no upstream reachable" in s.reason and "connect timeout" in s.reason and hang.addr in s.reason,
           "connect timeout: the session's reason",
           "no upstream reachable (last: %s: connect timeout)" % hang.addr, s.line)
    r.check_fds("after a connect timeout")
    note("  ok: closed after %.2f s: %s" % (secs, s.reason))


def case_failover_timeout():
    "connect-timeout = 1, upstream = { never answers, good }: the session reaches the good one after the timeout, bytes check"
    hang = FullBacklog()
    be = Backend(sink_source(70000))
    r = Relay(config="""\
listen fo {
    bind = "[::1]:0"
    upstream = { "%s", "%s" }
    connect-timeout = 1
}
""" % (hang.addr, be.addr))
    t0 = time.monotonic()
    client, cport = exchange(r.port("fo"), 60000, seed=40, rx_limit=70000)
    secs = time.monotonic() - t0
    upstream = be.wait_conns(1).wait()
    verify_exchange("failover after a connect timeout", client, upstream, 60000, 70000)
    expect(secs >= 0.8, "failover after timeout: the first upstream was tried first",
           "about 1 s or more", "%.2f s" % secs)
    s = r.check_session("failover after timeout", cport, 60000, 70000)
    expect_eq(s.upstream, be.addr, "failover after timeout: upstream in the session line")
    r.check_fds("after a failover from a timeout")


def case_host_name():
    "upstream localhost:PORT (resolved to IPv4) reaches the 127.0.0.1 backend"
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo("localhost", None, socket.AF_INET, socket.SOCK_STREAM)}
    except OSError:
        addrs = set()
    if "127.0.0.1" not in addrs:
        raise Skip("localhost does not resolve to 127.0.0.1 here")
    be = Backend(sink_source(1000))
    r = Relay(args=["[::1]:0", "localhost:%d" % be.port])
    client, cport = exchange(r.port(), 2000, seed=50, rx_limit=1000)
    upstream = be.wait_conns(1).wait()
    verify_exchange("upstream localhost", client, upstream, 2000, 1000)
    r.check_session("upstream localhost", cport, 2000, 1000)
    # the one resolver looked the name up at start: sessions add no descriptor
    for i in range(12):
        client, cport = exchange(r.port(), 3000, seed=51 + i, rx_limit=1000)
        upstream = be.wait_conns(2 + i).wait()
        verify_exchange("upstream localhost, again", client, upstream, 3000, 1000)
        r.check_session("upstream localhost, again", cport, 3000, 1000)
        r.check_fds("after sessions to a host name")


def case_mapped_upstream():
    "upstream [::ffff:127.0.0.1]:PORT means 127.0.0.1:PORT"
    be = Backend(sink_source(4321))
    r = Relay(args=["[::1]:0", "[::ffff:127.0.0.1]:%d" % be.port])
    client, cport = exchange(r.port(), 1234, seed=60, rx_limit=4321)
    upstream = be.wait_conns(1).wait()
    verify_exchange("IPv4-mapped upstream", client, upstream, 1234, 4321)
    r.check_session("IPv4-mapped upstream", cport, 1234, 4321)


if __name__ == "__main__":
    main([case_refused, case_failover_refused, case_connect_timeout, case_failover_timeout,
          case_host_name, case_mapped_upstream])
