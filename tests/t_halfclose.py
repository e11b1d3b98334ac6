#!/usr/bin/env python3
"""Half-close: after one side sends FIN, the other direction keeps flowing until it ends too."""

from relaytest import *


def case_client_closes_first():
    "client sends 300000 bytes and shuts down writing; the upstream reads to EOF, only then sends 1 MiB; the client gets it all"
    up, down = 300000, 1 * MiB
    be = Backend(sink_source(down, after_eof=True))
    r = Relay(args=["[::1]:0", be.addr])
    client, cport = exchange(r.port(), up, seed=11, rx_limit=down)
    upstream = be.wait_conns(1).wait()
    verify_exchange("client FIN first", client, upstream, up, down)
    expect(upstream.t_rx_end <= upstream.t_tx_end,
           "the upstream saw EOF before it started sending", "EOF first", repr(upstream))
    r.check_session("client FIN first", cport, up, down)
    r.check_fds("after the client-first half-close")


def case_upstream_closes_first():
    "the upstream sends 200000 bytes and shuts down writing; the client, after reading EOF, still sends 1 MiB, which the upstream gets whole"
    up, down = 1 * MiB, 200000
    be = Backend(sink_source(down))
    r = Relay(args=["[::1]:0", be.addr])
    client, cport = exchange(r.port(), up, seed=12, tx_after_eof=True, rx_limit=down)
    upstream = be.wait_conns(1).wait()
    verify_exchange("upstream FIN first", client, upstream, up, down)
    expect(client.t_rx_end <= client.t_tx_end,
           "the client saw EOF before it started sending", "EOF first", repr(client))
    r.check_session("upstream FIN first", cport, up, down)
    r.check_fds("after the upstream-first half-close")


def case_both_directions_on_one_relay():
    "both half-close orders one after the other on the same relay, 0-byte sides included"
    plan = [(0, 65536, True), (65536, 0, False), (1, 1, True), (1, 1, False)]
    handlers = {}

    def handler(rec):
        handlers[rec.index](rec)
    be = Backend(handler)
    r = Relay(args=["[::1]:0", be.addr])
    for i, (up, down, client_first) in enumerate(plan):
        handlers[i] = sink_source(down, after_eof=client_first)
        what = "%s first, %d up, %d down" % ("client" if client_first else "upstream", up, down)
        client, cport = exchange(r.port(), up, seed=20 + i, tx_after_eof=not client_first,
                                 rx_limit=down)
        upstream = be.wait_conns(i + 1).wait()
        verify_exchange(what, client, upstream, up, down)
        r.check_session(what, cport, up, down)
        r.check_fds("after " + what)
        note("  ok: " + what)


if __name__ == "__main__":
    main([case_client_closes_first, case_upstream_closes_first, case_both_directions_on_one_relay])
