#!/usr/bin/env python3
"""Stopping: SIGTERM closes the listeners at once and drains open sessions (up to
drain-timeout), then exits 0; a second signal exits at once; SIGINT stops too.
Signals that do not stop it (SIGHUP in the ad-hoc form, SIGUSR1, SIGUSR2) leave it
relaying."""

import signal
import socket
import time

from relaytest import *


def case_drain_completes():
    "SIGTERM with a session open: new connections are refused at once, the open session still completes (SHA-256), then exit 0"
    be = Backend(sink_source(1 * MiB, after_eof=True))
    r = Relay(args=["[::1]:0", be.addr])
    port = r.port()
    c = connect6(port)
    cport = c.getsockname()[1]
    be.wait_conns(1)
    r.send_signal(signal.SIGTERM)
    r.wait_log(r"^relay64: stopping: 1 sessions? open, draining up to 30 s", what="SIGTERM")
    t0 = time.monotonic()
    ok = wait_until(lambda: refused(port, timeout=1), bound(2), interval=0.02)
    expect(ok, "after SIGTERM, new connections are refused at once",
           "connect refused within %.0f s of the 'stopping' line" % bound(2), "still accepted")
    note("  new connections refused %.3f s after the 'stopping' line was seen" % (time.monotonic() - t0))
    expect(r.running(), "the relay still runs while its session is open")
    client = duplex(c, Source(1 * MiB, 100), rx_limit=1 * MiB)
    c.close()
    upstream = be.conns[0].wait()
    verify_exchange("session drained after SIGTERM", client, upstream, 1 * MiB, 1 * MiB)
    st = r.wait_exit(bound(10), "the relay exits once its last session ended")
    r.check_exit(st, 0, "exit status after draining")
    r.check_session("drained session", cport, 1 * MiB, 1 * MiB)
    expect_match(r"^relay64: stopped$", r.log_text(), "the log ends with 'stopped'")
    expect_eq(be.count(), 1, "connections that reached the upstream")


def case_drain_timeout():
    "drain-timeout = 1 and a session that never ends: SIGTERM ends it after about 1 s, exit 0, reason 'shutdown'"
    be = Backend(stream_forever(timeout=bound(30)))
    r = Relay(config="""\
drain-timeout = 1
listen endless {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % be.addr)
    c = connect6(r.port("endless"))
    cport = c.getsockname()[1]
    t, res = duplex_thread(c, Source(None, 101), timeout=bound(30))
    rec = be.wait_conns(1)
    wait_until(lambda: res.rx_len > 0 and rec.result is not None and rec.result.rx_len > 0, bound(10))
    t0 = time.monotonic()
    r.send_signal(signal.SIGTERM)
    st = r.wait_exit(bound(10), "SIGTERM with drain-timeout = 1 and an endless session")
    secs = time.monotonic() - t0
    r.check_exit(st, 0, "exit status after the drain timeout")
    expect(secs >= 0.8, "the relay waited for the drain timeout", "about 1 s", "%.2f s" % secs)
    t.join(bound(10))
    expect(res.rx_end in ("eof", "reset"), "the client's endless session was closed", "EOF or reset", repr(res))
    sess = r.session_for(cport)
    expect("shutdown" in sess.reason, "reason of the session cut by the drain timeout",
           "shutdown", sess.line)
    note("  exited %.2f s after SIGTERM" % secs)


def case_second_signal():
    "a second SIGTERM during the drain (drain-timeout 30) exits at once with 0"
    be = Backend(sink_source(0, shut_wr=False, timeout=bound(30)))
    r = Relay(args=["[::1]:0", be.addr])
    c = connect6(r.port())
    be.wait_conns(1)
    r.send_signal(signal.SIGTERM)
    r.wait_log(r"^relay64: stopping: ", what="first SIGTERM")
    time.sleep(0.2)
    expect(r.running(), "after the first SIGTERM the relay drains its open session")
    t0 = time.monotonic()
    r.send_signal(signal.SIGTERM)
    st = r.wait_exit(bound(5), "second SIGTERM")
    r.check_exit(st, 0, "exit status after the second SIGTERM")
    note("  exited %.2f s after the second SIGTERM" % (time.monotonic() - t0))
    how, got, secs = wait_closed(c, bound(5))
    expect(how in ("eof", "reset"), "the client's session is closed by the exit", "EOF or reset", how)


def case_sigint():
    "SIGINT stops an idle relay with status 0; SIGINT then SIGINT during a drain exits at once"
    be = Backend(sink_source(0, shut_wr=False, timeout=bound(30)))
    r = Relay(args=["[::1]:0", be.addr])
    r.stop(signal.SIGINT, 0)
    r2 = Relay(args=["[::1]:0", be.addr])
    c = connect6(r2.port())
    be.wait_conns(1)
    r2.send_signal(signal.SIGINT)
    r2.wait_log(r"^relay64: stopping: ", what="first SIGINT")
    r2.stop(signal.SIGINT, 0, timeout=bound(5))


def case_sighup_ignored():
    "SIGHUP does not stop the ad-hoc relay (no file to reload): it keeps serving"
    be = Backend(sink_source(5000))
    r = Relay(args=["[::1]:0", be.addr])
    r.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    expect(r.running(), "the relay survives SIGHUP", "running", "exited with %s" % r.proc.poll())
    client, cport = exchange(r.port(), 6000, seed=102, rx_limit=5000)
    verify_exchange("after SIGHUP", client, be.wait_conns(1).wait(), 6000, 5000)


def case_sigusr_harmless():
    "SIGUSR1 (the report) and SIGUSR2 mid-stream: logged at notice, the open session completes (SHA-256), new ones are served, SIGTERM stops with 0"
    size = 4 * MiB
    be = Backend(sink_source(size, hold_rx=True))
    r = Relay(args=["[::1]:0", be.addr])
    c = connect6(r.port())
    cport = c.getsockname()[1]
    t, client = duplex_thread(c, Source(size, 103), rx_limit=size)
    rec = be.wait_conns(1)
    # The upstream reads nothing yet: the session is open, with bytes in flight.
    wait_until(lambda: client.tx_len > 0 and client.rx_len > 0, bound(10))
    for sig, name, line in ((signal.SIGUSR1, "SIGUSR1", r"SIGUSR1: listeners and open sessions follow"),
                            (signal.SIGUSR2, "SIGUSR2", r"SIGUSR2: nothing to report \(SIGUSR1 reports\)")):
        r.send_signal(sig)
        r.wait_log(r"^relay64: %s$" % line, what=name)
        expect(r.running(), "the relay survives %s" % name, "running", "exited with %s" % r.proc.poll())
    rec.gate.set()
    t.join(bound(30))
    verify_exchange("the session open across SIGUSR1 and SIGUSR2", client, rec.wait(), size, size)
    r.check_session("the session open across SIGUSR1 and SIGUSR2", cport, size, size)
    c2 = connect6(r.port())
    t2, res = duplex_thread(c2, Source(1000, 104), rx_limit=size)
    rec2 = be.wait_conns(2)
    rec2.gate.set()
    t2.join(bound(30))
    verify_exchange("a new session after the signals", res, rec2.wait(), 1000, size)
    r.stop(signal.SIGTERM, 0)


if __name__ == "__main__":
    main([case_drain_completes, case_drain_timeout, case_second_signal, case_sigint,
          case_sighup_ignored, case_sigusr_harmless])
