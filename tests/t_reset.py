#!/usr/bin/env python3
"""A reset on one side resets or closes the other side promptly, and the log says which."""

import socket
import struct
import time

from relaytest import *


def case_upstream_resets():
    "the upstream resets mid-stream (both directions busy): the client's connection dies promptly both ways; the reason names the upstream"
    be = Backend(reset_after(256 * KiB, read_first=64 * KiB))
    r = Relay(args=["[::1]:0", be.addr])
    s = connect6(r.port())
    cport = s.getsockname()[1]
    # the client sends without end and reads: it must see the end of the connection
    res = duplex(s, Source(None, 70), timeout=bound(10))
    rec = be.wait_conns(1)
    rec.wait()
    s.close()
    expect(not res.timed_out and res.rx_end in ("eof", "reset") and res.tx_end in ("reset", "epipe"),
           "upstream reset: the client connection ends both ways within %.0f s" % bound(10),
           "read: EOF or reset; write: fails", repr(res))
    delay = max(res.t_rx_end, res.t_tx_end) - rec.info["t_reset"]
    note("  client saw read %s, write %s, %.2f s after the upstream's reset; it got %d of 262144 bytes"
         % (res.rx_end, res.tx_end, delay, res.rx_len))
    expect(res.rx_len <= 256 * KiB, "upstream reset: the client got no more than the upstream sent",
           "<= 262144 bytes", res.rx_len)
    sess = r.session_for(cport)
    expect("upstream" in sess.reason, "upstream reset: the session's reason names the upstream",
           "e.g. 'upstream reset'", sess.line)
    r.check_fds("after an upstream reset")


def case_client_resets():
    "the client resets mid-stream (both directions busy): the upstream's connection dies promptly both ways; the reason names the client"
    be = Backend(stream_forever(timeout=bound(10)))
    r = Relay(args=["[::1]:0", be.addr])
    s = connect6(r.port())
    cport = s.getsockname()[1]
    rec = be.wait_conns(1)
    # exchange some bytes both ways, then reset
    res = duplex(s, Source(128 * KiB, 71), shut_wr=False, until="tx", timeout=bound(10))
    s.setblocking(True)
    s.settimeout(bound(10))
    got = 0
    while got < 64 * KiB:
        data = s.recv(64 * KiB)
        expect(data, "client reset: the client receives the upstream's stream", "data", "EOF")
        got += len(data)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    t_reset = time.monotonic()
    s.close()
    up = rec.wait(bound(15))
    expect(not up.timed_out and up.rx_end in ("eof", "reset") and up.tx_end in ("reset", "epipe"),
           "client reset: the upstream connection ends both ways within %.0f s" % bound(10),
           "read: EOF or reset; write: fails", repr(up))
    note("  upstream saw read %s, write %s, %.2f s after the client's reset"
         % (up.rx_end, up.tx_end, max(up.t_rx_end, up.t_tx_end) - t_reset))
    sess = r.session_for(cport)
    expect("client" in sess.reason, "client reset: the session's reason names the client",
           "e.g. 'client reset'", sess.line)
    r.check_fds("after a client reset")


def case_upstream_resets_at_once():
    "the upstream accepts and resets before any byte: the client is closed with 0 bytes, the relay goes on"
    be = Backend(reset_after(0))
    r = Relay(args=["[::1]:0", be.addr])
    for i in range(3):
        # The reset can reach the client before its connect() has returned:
        # bind first so the port is known, and count that as a reset.
        s = track(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
        s.bind(("::1", 0))
        cport = s.getsockname()[1]
        s.settimeout(bound(10))
        try:
            s.connect(("::1", r.port()))
            how, got, secs = wait_closed(s, bound(10))
        except ConnectionResetError:
            how, got, secs = "reset", 0, 0.0
        s.close()
        expect(how in ("eof", "reset") and got == 0, "immediate upstream reset: client closed with 0 bytes",
               "EOF or reset, 0 bytes", "%s, %d bytes after %.1f s" % (how, got, secs))
        sess = r.session_for(cport)
        expect("upstream" in sess.reason, "immediate upstream reset: the reason names the upstream",
               "e.g. 'upstream reset'", sess.line)
        r.check_fds("after an immediate upstream reset")


if __name__ == "__main__":
    main([case_upstream_resets, case_client_resets, case_upstream_resets_at_once])
