#!/usr/bin/env python3
"""idle-timeout: a session with no byte either way for N seconds is closed; traffic in
either direction keeps it alive."""

import socket
import threading
import time

from relaytest import *


def _config(upstream, idle):
    return """\
listen idle {
    bind = "[::1]:0"
    upstream = "%s"
    idle-timeout = %d
}
""" % (upstream, idle)


def case_idle_closes():
    "idle-timeout = 1: a session where nobody sends is closed after about 1 s with reason 'idle timeout'"
    be = Backend(sink_source(0, shut_wr=False, timeout=bound(20)))
    r = Relay(config=_config(be.addr, 1))
    s = connect6(r.port("idle"))
    cport = s.getsockname()[1]
    rec = be.wait_conns(1)
    how, got, secs = wait_closed(s, bound(10))
    expect(how in ("eof", "reset") and got == 0, "idle session: the client is closed",
           "EOF or reset within %.0f s" % bound(10), "%s, %d bytes, after %.2f s" % (how, got, secs))
    expect(secs >= 0.8, "idle session: closed only after the idle timeout", "about 1 s", "%.2f s" % secs)
    up = rec.wait(bound(10))
    expect(up.rx_end in ("eof", "reset"), "idle session: the upstream is closed too", "EOF or reset", repr(up))
    sess = r.session_for(cport)
    expect_eq(sess.reason, "idle timeout", "idle session: reason in the session line (%s)" % sess.line)
    r.check_fds("after an idle timeout")
    note("  ok: closed after %.2f s" % secs)


def _trickle(sock, period, total, stop_on_error=True):
    """Send one byte every `period` seconds for `total` seconds. Returns the bytes sent."""
    sent = b""
    t_end = time.monotonic() + total
    i = 0
    while time.monotonic() < t_end:
        b = bytes([65 + i % 26])
        sock.sendall(b)
        sent += b
        i += 1
        time.sleep(period)
    return sent


def case_client_traffic_keeps_alive():
    "idle-timeout = 2: a client sending a byte every 0.3 s for 3 s keeps the session; it then ends normally"
    be = Backend(echo())
    r = Relay(config=_config(be.addr, 2))
    s = connect6(r.port("idle"))
    cport = s.getsockname()[1]
    got = bytearray()
    done = threading.Event()

    def reader():
        s2 = s
        try:
            while True:
                data = s2.recv(4096)
                if not data:
                    break
                got.extend(data)
        except OSError:
            pass
        done.set()
    s.settimeout(bound(20))
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t0 = time.monotonic()
    try:
        sent = _trickle(s, 0.3, 3.0)
    except OSError as e:
        raise Fail("trickling client: the session was closed after %.1f s although a byte went up every 0.3 s (%s)"
                   % (time.monotonic() - t0, e))
    expect(not done.is_set(), "trickling client: the session is still open after 3 s",
           "open", "closed after %d bytes echoed" % len(got))
    s.sendall(b"end")
    sent += b"end"
    s.shutdown(socket.SHUT_WR)
    expect(done.wait(bound(10)), "trickling client: the echo ends after the client's EOF")
    expect_eq(bytes(got), sent, "trickling client: bytes echoed back")
    sess = r.session_for(cport)
    expect(sess.reason == "done" and sess.up == len(sent) and sess.down == len(sent),
           "trickling client: session line", "%d bytes up, %d bytes down: done" % (len(sent), len(sent)),
           sess.line)
    r.check_fds("after a trickling client")


def case_upstream_traffic_keeps_alive():
    "idle-timeout = 2: an upstream sending a byte every 0.3 s for 3 s keeps the session; the client gets every byte"
    def handler(rec):
        rec.sock.settimeout(bound(20))
        t0 = time.monotonic()
        try:
            rec.info["sent"] = _trickle(rec.sock, 0.3, 3.0)
        except OSError as e:
            raise Fail("the session was closed after %.1f s although a byte went down every 0.3 s (%s)"
                       % (time.monotonic() - t0, e))
        rec.sock.shutdown(socket.SHUT_WR)
        rec.result = duplex(rec.sock, None, timeout=bound(10))
    be = Backend(handler)
    r = Relay(config=_config(be.addr, 2))
    s = connect6(r.port("idle"))
    cport = s.getsockname()[1]
    s.settimeout(bound(20))
    got = b""
    t0 = time.monotonic()
    while True:
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            raise Fail("trickling upstream: the client was reset after %.1f s, %d bytes"
                       % (time.monotonic() - t0, len(got)))
        if not data:
            break
        got += data
    s.close()
    rec = be.wait_conns(1)
    rec.wait(bound(10))
    expect_eq(got, rec.info["sent"], "trickling upstream: bytes the client received")
    sess = r.session_for(cport)
    expect(sess.reason == "done" and sess.down == len(got),
           "trickling upstream: session line", "0 bytes up, %d bytes down: done" % len(got), sess.line)
    r.check_fds("after a trickling upstream")


def case_subsecond_precision():
    "idle-timeout = 1, 12 clients each sending a byte every 0.25 s for 3 s: none is closed as idle"
    # The clients start 1/12 s apart, so their timers fall all over the second: a
    # relay that measured idle time in whole seconds closes some of them early.
    be = Backend(echo())
    r = Relay(config=_config(be.addr, 1))
    port = r.port("idle")
    results = [None] * 12

    def client(i):
        time.sleep(i / 12.0)
        s = connect6(port)
        track(s)
        s.settimeout(bound(20))
        cport = s.getsockname()[1]
        try:
            sent = _trickle(s, 0.25, 3.0)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                data = s.recv(4096)
                if not data:
                    break
                got += data
            results[i] = (cport, sent, got, None)
        except OSError as e:
            results[i] = (cport, b"", b"", e)
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(bound(30))
    idle = []
    for cport, sent, got, err in results:
        sess = r.session_for(cport)
        if sess.reason != "done" or err is not None or got != sent:
            idle.append("%s (%s)" % (sess.line, err))
    expect_eq(idle, [], "sessions with a byte every 0.25 s that did not end normally")
    r.check_fds("after 12 trickling clients")


if __name__ == "__main__":
    main([case_idle_closes, case_client_traffic_keeps_alive, case_upstream_traffic_keeps_alive,
          case_subsecond_precision])
