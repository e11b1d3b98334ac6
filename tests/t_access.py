#!/usr/bin/env python3
"""Access control and per-source limits: allow and deny (IPv6 and IPv4 CIDRs, an IPv4
client of a dual-stack listener matched as IPv4), checked right after accept and
before any upstream connection; refusals logged at most once a second per listener
with a count of the rest; max-per-source exact across workers, an IPv4 client counted
under its /32."""

import re
import time

from relaytest import *


def _conf(upstream, extra, v6only="true", workers=2):
    return """\
workers = %d
listen acl {
    bind = "[::]:0"
    v6only = %s
    upstream = "%s"
%s
}
""" % (workers, v6only, upstream, extra)


def case_allow_deny():
    "allow and deny, IPv6 and IPv4: refused clients are closed with no byte, never reach the upstream, and are logged with the rule"
    be = Backend(banner_echo(b"HELLO\r\n"))
    r = Relay(config=_conf(be.addr, '    allow = { "::1/128", "127.0.0.0/8" }\n'
                                   '    deny = { "127.0.0.2", "2001:db8::/32" }\n', v6only="false"))
    port = r.port("acl")
    expect_eq(served_or_refused(port), "served", "::1 (in allow)")
    expect_eq(served_or_refused(port, "127.0.0.1"), "served",
              "127.0.0.1 on the dual-stack listener (allowed as IPv4 by 127.0.0.0/8)")
    served = be.count()
    expect_eq(served_or_refused(port, "127.0.0.1", source="127.0.0.2"), "refused",
              "127.0.0.2 (denied): closed without a byte")
    m = r.wait_log(r"^relay64: listen acl: refused 127\.0\.0\.2:\d+: deny 127\.0\.0\.2/32$", what="the deny line")
    expect_eq(be.count(), served, "upstream connections for the refused client")
    r.check_fds("after a refused client")


def case_not_in_allow():
    "allow = an IPv4 prefix only on a dual-stack listener: the IPv4 client is served, ::1 is refused as not in allow"
    be = Backend(banner_echo(b"HELLO\r\n"))
    r = Relay(config=_conf(be.addr, '    allow = { "127.0.0.1" }\n', v6only="false"))
    port = r.port("acl")
    expect_eq(served_or_refused(port, "127.0.0.1"), "served", "127.0.0.1 (allowed)")
    expect_eq(served_or_refused(port), "refused", "::1 (not in allow)")
    r.wait_log(r"^relay64: listen acl: refused \[::1\]:\d+: not in allow$", what="the refusal line")
    expect_eq(be.count(), 1, "upstream connections")


def case_refusals_rate_limited():
    "60 refused clients at once: at most a line a second, and a later line counts those not logged"
    be = Backend(banner_echo(b"HELLO\r\n"))
    r = Relay(config=_conf(be.addr, '    deny = { "::1" }\n'))
    port = r.port("acl")
    t0 = time.monotonic()
    for _ in range(60):
        expect_eq(served_or_refused(port), "refused", "a denied client")
    took = time.monotonic() - t0
    wait_until(lambda: False, 1.2)
    expect_eq(served_or_refused(port), "refused", "one more, a second later")
    def tally():
        lines = re.findall(r"^relay64: listen acl: refused \[::1\]:\d+: deny ::1/128(?: \((\d+) more refused "
                           r"since the last line\))?$", r.log_text(), re.M)
        return len(lines), sum(int(n) for n in lines if n)
    # the line of the last refusal may come just after its client saw the reset
    wait_until(lambda: sum(tally()) >= 61, bound(5))
    logged, counted = tally()
    note("  61 refusals in %.1f s: %d lines, %d counted in them" % (took + 1.2, logged, counted))
    expect(logged <= int(took + 1.2) + 2, "refusal lines", "at most one a second", logged)
    expect_eq(logged + counted, 61, "refusals logged or counted")
    expect_eq(be.count(), 0, "upstream connections")
    r.check_fds("after 61 refusals")


def case_max_per_source():
    "max-per-source = 2 across 2 workers: a third session from ::1 is refused (every time), one from 127.0.0.1 counts apart; a slot frees when a session ends"
    be = Backend(banner_echo(b"HELLO\r\n"))
    r = Relay(config=_conf(be.addr, '    max-per-source = 2\n', v6only="false"))
    port = r.port("acl")
    held = []
    for i in range(2):
        s = connect6(port)
        expect_eq(s.recv(7), b"HELLO\r\n", "session %d from ::1" % (i + 1))
        held.append(s)
    for i in range(10):
        expect_eq(served_or_refused(port), "refused", "a third session from ::1 (try %d)" % (i + 1))
    r.wait_log(r"^relay64: listen acl: refused \[::1\]:\d+: max-per-source 2 sessions from its /64 open already",
               what="the per-source line")
    v4 = []
    for i in range(2):
        s = connect4(port)
        expect_eq(s.recv(7), b"HELLO\r\n", "session %d from 127.0.0.1 (its own /32)" % (i + 1))
        v4.append(s)
    expect_eq(served_or_refused(port, "127.0.0.1"), "refused", "a third from 127.0.0.1")
    held.pop().close()
    wait_until(lambda: len([x for x in r.sessions() if x.client.startswith("[::1]")]) >= 1, bound(10))
    expect_eq(served_or_refused(port), "served", "a session from ::1 once one of its two ended")
    for s in held + v4:
        s.close()
    r.check_fds("after the per-source limit")


if __name__ == "__main__":
    main([case_allow_deny, case_not_in_allow, case_refusals_rate_limited, case_max_per_source])
