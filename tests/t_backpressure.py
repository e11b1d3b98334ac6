#!/usr/bin/env python3
"""Backpressure: a reader that does not read stops the relay from reading the other side;
the relay's memory stays bounded; once the reader reads, every byte arrives."""

import threading

from relaytest import *

MAX_RSS_GROWTH_KIB = 8 * 1024
SOCKBUF = 256 * KiB          # the test's own socket buffers, kept small


def _sysctl_max(name):
    with open("/proc/sys/net/ipv4/" + name) as f:
        return int(f.read().split()[2])


# While the reader sleeps, the bytes the writer got rid of can only be in kernel buffers
# (the writer's send buffer, the relay's receive buffer on one socket and send buffer on
# the other, the relay's pipe, the reader's receive buffer) or in the relay's one flow
# buffer.  The kernel autotunes the relay's buffers up to tcp_rmem/tcp_wmem's maximum,
# which differs between machines (6 MiB by default, 32 MiB on some), so the bound is computed
# from them: anything beyond it is the relay buffering in user space.
RELAY_RCVBUF_MAX = _sysctl_max("tcp_rmem")
RELAY_SNDBUF_MAX = _sysctl_max("tcp_wmem")
MAX_IN_FLIGHT = (RELAY_RCVBUF_MAX + RELAY_SNDBUF_MAX
                 + 2 * 2 * SOCKBUF   # the test's two sockets (the kernel doubles SO_*BUF)
                 + 1 * MiB           # the relay's pipe (64 KiB) and flow buffer (64 KiB), slack
                 )
TOTAL = max(64 * MiB, 2 * MAX_IN_FLIGHT)


def _check_memory(r, rss0, what):
    rss = r.rss_kib()
    if SANITIZED or WRAPPER:
        note("  relay RSS %d KiB -> %d KiB (not checked under sanitizers or a wrapper)" % (rss0, rss))
        return
    expect(rss - rss0 < MAX_RSS_GROWTH_KIB, "%s: the relay's memory stays bounded" % what,
           "RSS growth < %d KiB" % MAX_RSS_GROWTH_KIB, "%d KiB -> %d KiB (+%d KiB)" % (rss0, rss, rss - rss0))
    note("  relay RSS %d KiB -> %d KiB" % (rss0, rss))


def case_slow_upstream():
    "the upstream does not read while the client pushes 64 MiB or more: the client stalls once the kernel's buffers are full, relay memory bounded; then everything arrives"
    be = Backend(sink_source(1000, after_eof=True, hold_rx=True, timeout=bound(60), rx_limit=TOTAL),
                 rcvbuf=SOCKBUF)
    r = Relay(args=["[::1]:0", be.addr])
    rss0 = r.rss_kib()
    s = connect6(r.port(), sndbuf=SOCKBUF)
    cport = s.getsockname()[1]
    t, res = duplex_thread(s, Source(TOTAL, 80), timeout=bound(60), rx_limit=1000)
    rec = be.wait_conns(1)
    sent = wait_stall(lambda: res.tx_len, TOTAL, quiet=1.0)
    note("  the client's sends stalled after %d bytes (%.1f MiB; bound %.1f MiB)" % (sent, sent / MiB, MAX_IN_FLIGHT / MiB))
    expect(sent < MAX_IN_FLIGHT, "slow upstream: the client's sends stall",
           "< %d bytes accepted" % MAX_IN_FLIGHT, "%d bytes accepted" % sent)
    expect_eq(rec.result.rx_len, 0, "slow upstream: bytes the upstream read so far")
    _check_memory(r, rss0, "slow upstream")
    rec.gate.set()
    t.join(bound(60))
    upstream = rec.wait(bound(60))
    verify_exchange("slow upstream, then reading", res, upstream, TOTAL, 1000)
    r.check_session("slow upstream", cport, TOTAL, 1000)
    r.check_fds("after the slow upstream")


def case_slow_client():
    "the client does not read while the upstream pushes 64 MiB or more: the upstream stalls once the kernel's buffers are full, relay memory bounded; then everything arrives"
    be = Backend(sink_source(TOTAL, timeout=bound(60), rx_limit=1000), sndbuf=SOCKBUF)
    r = Relay(args=["[::1]:0", be.addr])
    rss0 = r.rss_kib()
    s = connect6(r.port(), rcvbuf=SOCKBUF)
    cport = s.getsockname()[1]
    gate = threading.Event()
    t, res = duplex_thread(s, Source(1000, 81), timeout=bound(60), rx_gate=gate, rx_limit=TOTAL)
    rec = be.wait_conns(1)
    sent = wait_stall(lambda: rec.result.tx_len if rec.result else 0, TOTAL, quiet=1.0)
    note("  the upstream's sends stalled after %d bytes (%.1f MiB; bound %.1f MiB)" % (sent, sent / MiB, MAX_IN_FLIGHT / MiB))
    expect(sent < MAX_IN_FLIGHT, "slow client: the upstream's sends stall",
           "< %d bytes accepted" % MAX_IN_FLIGHT, "%d bytes accepted" % sent)
    _check_memory(r, rss0, "slow client")
    gate.set()
    t.join(bound(60))
    upstream = rec.wait(bound(60))
    verify_exchange("slow client, then reading", res, upstream, 1000, TOTAL)
    r.check_session("slow client", cport, 1000, TOTAL)
    r.check_fds("after the slow client")


if __name__ == "__main__":
    main([case_slow_upstream, case_slow_client])
