#!/usr/bin/env python3
"""-1 / --once: one connection is served, then the relay exits 0 by itself."""

import socket

from relaytest import *


def _once(opt):
    be = Backend(sink_source(300000))
    r = Relay(args=["[::1]:0", be.addr], extra=[opt])
    port = r.port()
    c1 = connect6(port)
    cport = c1.getsockname()[1]
    be.wait_conns(1)
    # meanwhile a second client is not served: refused, or accepted by the kernel and never relayed
    second = "refused"
    c2 = None
    try:
        c2 = connect6(port, timeout=bound(5))
        second = "connected"
        c2.sendall(b"second client")
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        second = "connect timed out"
    note("  second connection: %s" % second)
    client = duplex(c1, Source(200000, 90), rx_limit=300000)
    c1.close()
    upstream = be.conns[0].wait()
    verify_exchange("%s: the one session" % opt, client, upstream, 200000, 300000)
    st = r.wait_exit(bound(10), "%s: the relay exits by itself after its session" % opt)
    r.check_exit(st, 0, "%s: exit status after the session" % opt)
    r.check_session("%s: the one session" % opt, cport, 200000, 300000)
    expect_eq(be.count(), 1, "%s: connections that reached the upstream" % opt)
    if c2 is not None:
        how, got, secs = wait_closed(c2, bound(5))
        expect(got == 0, "%s: the second client received nothing" % opt, "0 bytes", got)
        note("  second connection after the exit: %s" % how)
    expect_eq(len(r.sessions()), 1, "%s: session lines in the log" % opt)


def case_once_short():
    "-1: one session relayed (bytes check) while a second connection is not served; exit 0 when it ends"
    _once("-1")


def case_once_long():
    "--once works the same"
    _once("--once")


def case_once_no_upstream():
    "-1 with an upstream that refuses: the client is closed with no byte and the relay exits 1"
    up = RefusedPort()
    r = Relay(args=["[::1]:0", up.addr], extra=["-1"])
    c = connect6(r.port())
    how, got, secs = wait_closed(c, bound(10))
    expect_eq(got, 0, "-1, refused upstream: bytes the client received")
    st = r.wait_exit(bound(10), "-1: the relay exits after its one client")
    r.check_exit(st, 1, "-1: exit status when the one connection reached no upstream")
    expect_match(r"no upstream reachable", r.log_text(), "-1, refused upstream: the log says why")


def case_once_second_listener():
    "-1 with two listeners: the one connection, to the second, is that listener's session and reaches its upstream"
    dead = RefusedPort()
    be = Backend(sink_source(5000))
    r = Relay(config='listen a {\n    bind = "[::1]:0"\n    upstream = "%s"\n}\n'
                     'listen b {\n    bind = "[::1]:0"\n    upstream = "%s"\n}\n' % (dead.addr, be.addr),
              extra=["-1"])
    client, cport = exchange(r.port("b"), 3000, rx_limit=5000)
    verify_exchange("-1, the session of listener b", client, be.wait_conns(1).wait(), 3000, 5000)
    st = r.wait_exit(bound(10), "-1: the relay exits after its one client")
    r.check_exit(st, 0, "-1: exit status")
    s = r.session_for(cport)
    expect_eq(s.listener, "b", "the listener in the session line (%s)" % s.line)


if __name__ == "__main__":
    main([case_once_short, case_once_long, case_once_no_upstream, case_once_second_listener])
