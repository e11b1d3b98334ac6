#!/usr/bin/env python3
"""Listener options: v6only (dual-stack listeners), balance, source address; and
TCP_NODELAY on both of a session's sockets."""

import ctypes
import os
import re
import signal
import socket

from relaytest import *


def _session_via(r, be, what, family=socket.AF_INET6, host="::1", listener="cmdline", up=3000, down=2000):
    before = be.count()
    client, cport = exchange(r.port(listener), up, seed=before + 200, host=host, family=family,
                             rx_limit=down)
    upstream = be.wait_conns(before + 1).wait()
    verify_exchange(what, client, upstream, up, down)
    r.check_session(what, cport, up, down)
    return cport


def case_v6only_false():
    "v6only = false on [::]:0: an IPv4 client (127.0.0.1) is relayed (IPv4-mapped), and so is ::1"
    be = Backend(sink_source(2000))
    r = Relay(config="""\
listen dual {
    bind = "[::]:0"
    v6only = false
    upstream = "%s"
}
""" % be.addr)
    expect_match(r"^relay64: listen dual: listening on \[::\]:\d+, upstream \S+; IPv6 and IPv4 clients; IPv4 "
                 r"ones appear as ::ffff:a\.b\.c\.d to the socket and as a\.b\.c\.d in logs and PROXY headers; "
                 r"no PROXY header: the upstream sees the relay's address, not the client's$",
                 r.log_text(), "the start-up line says how the listener takes clients")
    _session_via(r, be, "IPv4 client on a dual-stack listener", socket.AF_INET, "127.0.0.1", "dual")
    _session_via(r, be, "IPv6 client on a dual-stack listener", socket.AF_INET6, "::1", "dual")
    r.check_fds("after the dual-stack sessions")


def case_v6only_true():
    "v6only = true (and the default) on [::]:0: an IPv4 client is refused, ::1 is relayed"
    be = Backend(sink_source(2000))
    r = Relay(config="""\
listen v6 {
    bind = "[::]:0"
    v6only = true
    upstream = "%s"
}
listen v6default {
    bind = "[::]:0"
    upstream = "%s"
}
""" % (be.addr, be.addr))
    for name in ("v6", "v6default"):
        expect_match(r"^relay64: listen %s: listening on \[::\]:\d+, upstream \S+; IPv6 clients only; IPv4 "
                     r"clients need their own listener or v6only = false; no PROXY header: " % name,
                     r.log_text(), "listener %s: the start-up line says it takes IPv6 clients only" % name)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(bound(5))
        try:
            s.connect(("127.0.0.1", r.port(name)))
            outcome = "connected"
        except ConnectionRefusedError:
            outcome = "refused"
        except OSError as e:
            outcome = str(e)
        finally:
            s.close()
        expect_eq(outcome, "refused", "listener %s: an IPv4 client connecting to 127.0.0.1:%d"
                  % (name, r.port(name)))
        _session_via(r, be, "IPv6 client on listener %s" % name, listener=name)
    expect_eq(be.count(), 2, "connections that reached the upstream")


def _two_backends():
    return Backend(sink_source(2000)), Backend(sink_source(2000))


def case_reload_address_same_port():
    "a reload that moves a listener from [::]:P to [::1]:P (or flips v6only) fails and says a restart is needed"
    be = Backend(sink_source(2000))
    conf = """\
listen a {
    bind = "[%s]:%d"
    v6only = %s
    upstream = "%s"
}
"""
    r = Relay(config=conf % ("::", 0, "true", be.addr))
    port = r.port("a")
    for addr, v6only in (("::1", "true"), ("::", "false")):
        with open(r.confpath, "w") as f:
            f.write(conf % (addr, port, v6only, be.addr))
        before = r.log_text().count("reload failed")
        r.send_signal(signal.SIGHUP)
        wait_until(lambda: r.log_text().count("reload failed") > before, bound(10))
        expect_match(r"reload failed: listen a: bind \[%s\]:%d overlaps \[::\]:%d of the running listen a, "
                     r".*needs a restart; the running configuration stays" % (re.escape(addr), port, port),
                     r.log_text(), "reload to [%s]:%d v6only %s: the reason" % (addr, port, v6only))
        _session_via(r, be, "the old listener after the failed reload", listener="a")


def case_roundrobin():
    "balance = roundrobin spreads 4 sessions over 2 upstreams 2/2, alternating"
    a, b = _two_backends()
    r = Relay(config="""\
listen rr {
    bind = "[::1]:0"
    upstream = { "%s", "%s" }
    balance = roundrobin
}
""" % (a.addr, b.addr))
    order = []
    for i in range(4):
        ca, cb = a.count(), b.count()
        client, cport = exchange(r.port("rr"), 1000, seed=300 + i, rx_limit=2000)
        sess = r.session_for(cport)
        order.append(sess.upstream)
        be = a if sess.upstream == a.addr else b
        upstream = be.wait_conns((ca if be is a else cb) + 1).wait()
        verify_exchange("round robin session %d" % (i + 1), client, upstream, 1000, 2000)
    expect_eq((a.count(), b.count()), (2, 2), "sessions per upstream (first, second); order %s" % order)
    expect(order[0] != order[1] and order[1] != order[2] and order[2] != order[3],
           "round robin alternates the upstreams", "alternating", order)
    r.check_fds("after round robin")


def case_first():
    "balance = first (and the default) sends every session to the first upstream"
    for balance in ("balance = first", ""):
        a, b = _two_backends()
        r = Relay(config="""\
listen f {
    bind = "[::1]:0"
    upstream = { "%s", "%s" }
    %s
}
""" % (a.addr, b.addr, balance))
        for i in range(4):
            _session_via(r, a, "%s session %d" % (balance or "default balance", i + 1), listener="f")
        expect_eq((a.count(), b.count()), (4, 0),
                  "sessions per upstream (first, second) with %s" % (balance or "the default balance"))
        r.stop()


def case_source():
    "source = 127.0.0.2: the upstream sees the connection come from 127.0.0.2"
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.2", 0))
    except OSError:
        raise Skip("127.0.0.2 cannot be bound here")
    finally:
        probe.close()
    be = Backend(sink_source(2000))
    r = Relay(config="""\
listen src {
    bind = "[::1]:0"
    upstream = "%s"
    source = "127.0.0.2"
}
""" % be.addr)
    for i in range(2):
        _session_via(r, be, "source 127.0.0.2, session %d" % (i + 1), listener="src")
        expect_eq(be.conns[i].peer[0], "127.0.0.2", "the address the upstream sees the relay connect from")
    r.check_fds("after sessions with a source address")
    # without source, the kernel picks 127.0.0.1
    be2 = Backend(sink_source(2000))
    r2 = Relay(args=["[::1]:0", be2.addr])
    _session_via(r2, be2, "no source address")
    expect_eq(be2.conns[0].peer[0], "127.0.0.1", "the address the upstream sees without source")


_SYS_PIDFD_OPEN, _SYS_PIDFD_GETFD = 434, 438


def _their_socket(pid, fd):
    """A duplicate of descriptor fd of process pid (pidfd_getfd(2)), as a socket."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(_SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        raise Skip("pidfd_open: %s" % os.strerror(ctypes.get_errno()))
    try:
        dup = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if dup < 0:
            raise Skip("pidfd_getfd: %s (needs Linux 5.6 and ptrace rights)"
                       % os.strerror(ctypes.get_errno()))
    finally:
        os.close(pidfd)
    return socket.socket(fileno=dup)


def case_nodelay():
    "a session's client and upstream sockets in the relay both have TCP_NODELAY (Nagle off)"
    be = Backend(hold())
    r = Relay(args=["[::1]:0", be.addr])
    before = r.fd_list()
    c = connect6(r.port())
    rec = be.wait_conns(1)
    wait_until(lambda: len([f for f in r.fd_list() if f not in before]) >= 2, bound(10))
    fresh = sorted(f for f, v in r.fd_list().items() if before.get(f) != v and v.startswith("socket:"))
    expect_eq(len(fresh), 2, "new sockets in the relay for one session")
    for fd in fresh:
        s = _their_socket(r.pid, fd)
        try:
            expect_eq(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1,
                      "TCP_NODELAY on the relay's %s socket"
                      % ("client" if s.family == socket.AF_INET6 else "upstream"))
        finally:
            s.close()
    c.close()
    rec.gate.set()
    r.check_fds("after the TCP_NODELAY check")


if __name__ == "__main__":
    main([case_v6only_false, case_v6only_true, case_reload_address_same_port, case_roundrobin, case_first, case_source,
          case_nodelay])
