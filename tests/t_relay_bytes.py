#!/usr/bin/env python3
"""Bytes arrive whole and in order both ways at once, for sizes from 0 to 64 MiB,
through an ad-hoc and a config-file listener; an upstream that speaks first; the
session log line counts the bytes."""

import socket

from relaytest import *

# (client -> upstream, upstream -> client): both directions at the same time
SIZES = [(0, 0), (1, 0), (0, 1), (1, 4095), (4095, 4096), (4096, 65536), (65536, 4095),
         (65536, 1), (0, 65536), (4096, 0)]


def _one(relay, backend, up, down, seed, listener="cmdline"):
    what = "%d bytes up, %d bytes down" % (up, down)
    before = backend.count()
    client, cport = exchange(relay.port(listener), up, seed=seed, rx_limit=down)
    rec = backend.wait_conns(before + 1)
    upstream = rec.wait()
    verify_exchange(what, client, upstream, up, down)
    s = relay.check_session(what, cport, up, down)
    expect_eq(s.listener, listener, "%s: listener named in the session line" % what)
    expect_eq(s.upstream, backend.addr, "%s: upstream named in the session line" % what)
    relay.check_fds("after %s" % what)
    note("  ok: %s (%.2f s)" % (what, s.secs))


def case_small_sizes():
    "ad hoc [::1]:0 -> 127.0.0.1, one session after the other: 0, 1, 4095, 4096, 65536 bytes each way at once; SHA-256, log line, descriptors"
    downs, ups = {}, {}

    def handler(rec):
        sink_source(downs[rec.index], rx_limit=ups[rec.index])(rec)
    be = Backend(handler)
    r = Relay(args=["[::1]:0", be.addr])
    for i, (up, down) in enumerate(SIZES):
        downs[i], ups[i] = down, up
        _one(r, be, up, down, seed=100 + i)


def case_64mib():
    "64 MiB up and 64 MiB - 1 down at the same time, SHA-256 both ways"
    up, down = 64 * MiB, 64 * MiB - 1
    be = Backend(sink_source(down, timeout=bound(60), rx_limit=up))
    r = Relay(args=["[::1]:0", be.addr])
    what = "%d bytes up, %d bytes down" % (up, down)
    client, cport = exchange(r.port(), up, seed=64, timeout=bound(60), rx_limit=down)
    upstream = be.wait_conns(1).wait(bound(60))
    verify_exchange(what, client, upstream, up, down)
    r.check_session(what, cport, up, down)
    r.check_fds("after 64 MiB")


def case_banner_first():
    "an upstream that speaks first: the client gets the banner before sending anything"
    banner = b"220 relay64 test banner, sent before the client says anything\r\n"
    be = Backend(sink_source(100000, banner=banner))
    r = Relay(args=["[::1]:0", be.addr])
    s = connect6(r.port())
    cport = s.getsockname()[1]
    got = b""
    s.settimeout(bound(10))
    try:
        while len(got) < len(banner):
            chunk = s.recv(len(banner) - len(got))
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    expect_eq(got, banner, "banner received before the client sent a byte")
    # the rest: a normal exchange on the same connection
    res = duplex(s, Source(5000, 7))
    s.close()
    upstream = be.wait_conns(1).wait()
    verify_exchange("after the banner", res, upstream, 5000, 100000)
    r.check_session("banner", cport, 5000, 100000 + len(banner))
    r.check_fds("after the banner session")


def case_config_listeners():
    "two listeners from a config file, each relaying to its own upstream"
    be_a = Backend(sink_source(70000))
    be_b = Backend(sink_source(3))
    r = Relay(config="""\
log-level = info
listen alpha {
    bind = "[::1]:0"
    upstream = "%s"
}
listen beta {
    bind = "[::1]:0"
    upstream = { "%s" }
}
""" % (be_a.addr, be_b.addr))
    expect(r.port("alpha") != r.port("beta"), "the two listeners have their own ports",
           "two ports", (r.port("alpha"), r.port("beta")))
    _one(r, be_a, 12345, 70000, seed=5, listener="alpha")
    _one(r, be_b, 65536, 3, seed=6, listener="beta")
    expect_eq((be_a.count(), be_b.count()), (1, 1), "connections seen by (alpha's, beta's) upstream")


if __name__ == "__main__":
    main([case_small_sizes, case_64mib, case_banner_first,
          case_config_listeners])
