#!/usr/bin/env python3
"""200 sessions at the same time, each with its own sizes both ways: every byte arrives
in its own session, and the relay's descriptors come back to the baseline."""

import os
import random
import threading

from relaytest import *

SESSIONS = 200


def case_200_concurrent():
    "200 concurrent sessions with random sizes (0..256 KiB) each way, SHA-256 per session"
    seed = int(os.environ.get("RELAY64_TEST_SEED", random.randrange(1 << 30)))
    note("  sizes from seed %d (set RELAY64_TEST_SEED to repeat)" % seed)
    rnd = random.Random(seed)
    plan = []
    for i in range(SESSIONS):
        pick = lambda: rnd.choice([0, 1, rnd.randrange(1, 4097), rnd.randrange(1, 256 * KiB + 1)])
        plan.append((i, pick(), pick(), rnd.randrange(1 << 40), rnd.randrange(1 << 40)))
    be = Backend(sized(), backlog=SESSIONS + 16)
    r = Relay(args=["[::1]:0", be.addr])
    port = r.port()
    results = {}
    start = threading.Event()

    def client(ident, up, down, up_seed, down_seed):
        start.wait()
        try:
            results[ident] = sized_exchange(port, ident, up, down, up_seed, down_seed,
                                            timeout=bound(60))
        except Exception as e:
            results[ident] = e

    threads = [threading.Thread(target=client, args=p, daemon=True) for p in plan]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(bound(90))
    missing = [p[0] for p in plan if p[0] not in results]
    expect(not missing, "every client thread finished", "%d finished" % SESSIONS,
           "%d still running (e.g. %s)" % (len(missing), missing[:5]))
    errors = {i: v for i, v in results.items() if isinstance(v, Exception)}
    expect(not errors, "no client failed to connect or exchange", "none",
           "%d, e.g. %s" % (len(errors), list(errors.items())[:3]))
    be.wait_conns(SESSIONS)
    by_id = {}
    for rec in be.conns:
        rec.wait(bound(30))
        by_id[rec.info.get("id")] = rec
    expect_eq(len(be.conns), SESSIONS, "upstream connections")
    failures = []
    for ident, up, down, _, _ in plan:
        client, cport = results[ident]
        rec = by_id.get(ident)
        try:
            expect(rec is not None, "session %d reached the upstream" % ident)
            verify_exchange("session %d (%d up, %d down)" % (ident, up, down), client, rec.result,
                            up, down)
        except Fail as e:
            failures.append(str(e))
    expect(not failures, "every session's bytes arrived whole both ways", "0 failures",
           "%d failures, first: %s" % (len(failures), failures[:3]))
    # the log: one line per session with the right counts (+ 24 header bytes up)
    wait_until(lambda: len(r.sessions()) >= SESSIONS, bound(10))
    sessions = {s.client.rsplit(":", 1)[-1]: s for s in r.sessions()}
    bad = []
    for ident, up, down, _, _ in plan:
        client, cport = results[ident]
        s = sessions.get(str(cport))
        if s is None or (s.up, s.down, s.reason) != (up + 24, down, "done"):
            bad.append((ident, up + 24, down, s))
    expect(not bad, "one session line per session with the right counts and reason done",
           "%d lines" % SESSIONS, "%d wrong, e.g. %s" % (len(bad), bad[:3]))
    r.check_fds("after %d concurrent sessions" % SESSIONS)
    note("  ok: %d sessions, %d bytes up, %d bytes down"
         % (SESSIONS, sum(p[1] for p in plan), sum(p[2] for p in plan)))


if __name__ == "__main__":
    main([case_200_concurrent])
