#!/usr/bin/env python3
"""Limits: max-connections (global and per listener) and running out of descriptors:
the relay stops accepting without a busy loop, keeps its sessions and resumes by itself."""

import hashlib
import resource
import socket
import time

from relaytest import *

BANNER = b"HELLO relay64\r\n"


def _banner(sock, timeout):
    """Wait for the banner: "served", "timeout" (nothing yet), "closed" or "bad"."""
    sock.settimeout(timeout)
    got = b""
    try:
        while len(got) < len(BANNER):
            data = sock.recv(len(BANNER) - len(got))
            if not data:
                return "closed"
            got += data
    except socket.timeout:
        return "timeout" if not got else "bad"
    except ConnectionResetError:
        return "closed"
    return "served" if got == BANNER else "bad"


def _echo_check(sock, what, size=100000):
    """Bytes through an echo upstream come back whole; leaves the socket open."""
    data = Source(size, size).read(size)
    sock.settimeout(bound(10))
    sock.sendall(data)
    got = b""
    while len(got) < size:
        chunk = sock.recv(65536)
        expect(chunk, "%s: echo through the relay" % what, "%d bytes back" % size, "EOF after %d" % len(got))
        got += chunk
    expect_eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest(),
              "%s: SHA-256 of the echoed bytes" % what)


def case_global_max_connections():
    "max-connections = 2: a third connection is not served while two are open, and is served once one closes"
    be = Backend(banner_echo(BANNER))
    r = Relay(config="""\
max-connections = 2
listen lim {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % be.addr)
    port = r.port("lim")
    c1, c2 = connect6(port), connect6(port)
    for i, c in enumerate((c1, c2)):
        expect_eq(_banner(c, bound(10)), "served", "connection %d of 2 is served" % (i + 1))
    c3 = connect6(port)
    st = _banner(c3, 1.0)
    expect_eq(st, "timeout", "a third connection is not served (nor closed) while two are open")
    expect_eq(be.count(), 2, "connections that reached the upstream while the limit holds")
    _echo_check(c2, "an open session under the limit")
    c1.close()
    expect_eq(_banner(c3, bound(10)), "served", "the third connection is served once the first closed")
    _echo_check(c3, "the third connection")
    c3.close()
    c2.close()
    r.check_fds("after the connection limit")


def case_listener_max_connections():
    "listen max-connections = 1: a second connection to that listener waits, another listener still serves"
    be = Backend(banner_echo(BANNER))
    r = Relay(config="""\
listen one {
    bind = "[::1]:0"
    upstream = "%s"
    max-connections = 1
}
listen free {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % (be.addr, be.addr))
    c1 = connect6(r.port("one"))
    expect_eq(_banner(c1, bound(10)), "served", "the first connection to listener one is served")
    c2 = connect6(r.port("one"))
    expect_eq(_banner(c2, 1.0), "timeout", "a second connection to listener one waits")
    f1, f2 = connect6(r.port("free")), connect6(r.port("free"))
    expect_eq(_banner(f1, bound(10)), "served", "listener free serves while one is full (1)")
    expect_eq(_banner(f2, bound(10)), "served", "listener free serves while one is full (2)")
    c1.close()
    expect_eq(_banner(c2, bound(10)), "served", "the waiting connection to listener one is served once the first closed")
    _echo_check(c2, "the waiting connection")
    for c in (c2, f1, f2):
        c.close()
    r.check_fds("after the per-listener limit")


def case_out_of_descriptors():
    "descriptors run out (RLIMIT_NOFILE lowered): no busy loop, open sessions keep working, waiting clients and new ones are served once descriptors are free"
    if WRAPPER:
        raise Skip("the descriptor limit cannot be set exactly under a wrapper")
    be = Backend(banner_echo(BANNER), backlog=64)
    r = Relay(args=["[::1]:0", be.addr])
    port = r.port()
    base = r.baseline
    # descriptors one session takes
    c = connect6(port)
    expect_eq(_banner(c, bound(10)), "served", "a first session is served")
    wait_until(lambda: r.fd_count() > base, bound(5))
    time.sleep(0.2)
    per = r.fd_count() - base
    c.close()
    r.check_fds("after the measuring session")
    expect(per >= 2, "a session holds at least two descriptors", ">= 2", per)
    fits = 3
    soft = base + fits * per
    maxfd = max(r.fd_list())
    expect(maxfd < soft, "descriptor numbers are dense enough for the test", "max fd < %d" % soft, maxfd)
    old = resource.prlimit(r.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(r.pid, resource.RLIMIT_NOFILE, (soft, old[1]))
    note("  %d descriptors at rest, %d per session: soft limit %d leaves room for %d sessions"
         % (base, per, soft, fits))
    served = []
    for i in range(fits):
        s = connect6(port)
        st = _banner(s, bound(10))
        expect_eq(st, "served", "session %d of %d that fit under the limit" % (i + 1, fits))
        served.append(s)
    waiting = [connect6(port) for _ in range(3)]
    st = _banner(waiting[0], 2.0)
    expect_eq(st, "timeout", "a client beyond the descriptor limit waits (neither served nor dropped)")
    cpu0 = r.cpu_seconds()
    time.sleep(2.0)
    cpu = r.cpu_seconds() - cpu0
    note("  relay CPU time over 2 s while out of descriptors: %.2f s" % cpu)
    expect(cpu < 0.5, "no busy loop while out of descriptors", "< 0.5 s CPU in 2 s", "%.2f s" % cpu)
    for w in waiting:
        w.settimeout(0)
        try:
            data = w.recv(1)
            raise Fail("a waiting client was %s while out of descriptors"
                       % ("served" if data else "dropped (EOF)"))
        except (BlockingIOError, socket.timeout):
            pass
        except ConnectionResetError:
            raise Fail("a waiting client was dropped (reset) while out of descriptors")
    for i, s in enumerate(served):
        _echo_check(s, "open session %d while out of descriptors" % (i + 1))
    expect(r.running(), "the relay keeps running out of descriptors")
    for s in served:
        s.close()
    for i, w in enumerate(waiting):
        expect_eq(_banner(w, bound(10)), "served", "waiting client %d is served once descriptors are free" % (i + 1))
        _echo_check(w, "waiting client %d" % (i + 1))
        w.close()
    n = connect6(port)
    expect_eq(_banner(n, bound(10)), "served", "a new connection is served (no restart)")
    _echo_check(n, "a new connection after the shortage")
    n.close()
    resource.prlimit(r.pid, resource.RLIMIT_NOFILE, old)
    r.check_fds("after the descriptor shortage")


if __name__ == "__main__":
    main([case_global_max_connections, case_listener_max_connections, case_out_of_descriptors])
