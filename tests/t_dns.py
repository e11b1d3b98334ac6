#!/usr/bin/env python3
"""Upstream host names through a DNS server the test runs: looked up at start and at
reloads, refreshed as the TTL runs out, one look-up for many sessions, the last good
answer kept while DNS fails, NXDOMAIN trusted only when a second query confirms it,
every address of an answer used. The relay is pointed at the test's server with
RELAY64_TEST_DNS (never the system resolver); /etc/hosts stays first."""

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import relaytest
from relaytest import *

NAME = "db.relay64.test"


class DnsServer:
    """A DNS responder on 127.0.0.1 (UDP; the port is picked by binding port 0 and held
    for the whole case). Each name answers A records with a TTL, NXDOMAIN, SERVFAIL or
    an empty answer; one-shot answers can be queued before it; answering can stop
    (queries are then dropped, still counted). Every query is recorded."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Condition()
        self.records = {}       # name -> ("A", [addresses], ttl) | ("NXDOMAIN",) | ...
        self.once = {}          # name -> answers used before the record, first first
        self.answering = True
        self.queries = []       # (monotonic time, name, qtype, what was done)
        self.closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        relaytest._case_resources.append(self)

    def env(self, floor=1, timeout=None):
        """The relay's environment: this server, a TTL floor of floor seconds, and
        optionally evdns's timeout per try (two tries)."""
        hook = "127.0.0.1:%d,floor=%d" % (self.port, floor)
        if timeout is not None:
            hook += ",timeout=%d" % timeout
        return dict(os.environ, RELAY64_TEST_DNS=hook)

    def set(self, name, addrs, ttl=300):
        with self.lock:
            self.records[name] = ("A", list(addrs), ttl)

    def set_error(self, name, what):
        """what: NXDOMAIN, SERVFAIL or NODATA."""
        with self.lock:
            self.records[name] = (what,)

    def queue(self, name, *answers):
        """One-shot answers for the next queries of name, e.g. ("NXDOMAIN",)."""
        with self.lock:
            self.once.setdefault(name, []).extend(answers)

    def stop_answering(self):
        with self.lock:
            self.answering = False

    def start_answering(self):
        with self.lock:
            self.answering = True

    def count(self, name, what=None, since=0):
        with self.lock:
            return sum(1 for t, n, qt, w in self.queries
                       if n == name and t >= since and (what is None or w == what))

    def times(self, name):
        with self.lock:
            return [t for t, n, qt, w in self.queries if n == name]

    def wait_query(self, name, what=None, n=1, timeout=None):
        """Wait until n queries of name were answered with what; returns the time of the n-th."""
        timeout = bound(20) if timeout is None else timeout
        with self.lock:
            ok = self.lock.wait_for(lambda: self.count_unlocked(name, what) >= n, timeout)
            if not ok:
                raise Fail("DNS server: expected %d %s queries of %s within %.0f s, got %d (%s)"
                           % (n, what or "", name, timeout, self.count_unlocked(name, what),
                              self.queries))
            return [t for t, nm, qt, w in self.queries
                    if nm == name and (what is None or w == what)][n - 1]

    def count_unlocked(self, name, what):
        return sum(1 for t, n, qt, w in self.queries if n == name and (what is None or w == what))

    def _loop(self):
        while not self.closed:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                reply = self._answer(data)
            except (IndexError, struct.error, UnicodeDecodeError):
                continue
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    pass

    def _answer(self, data):
        ident, flags, qdcount = struct.unpack("!HHH", data[:6])
        if flags & 0x8000 or qdcount != 1:
            return None
        i, labels = 12, []
        while data[i] != 0:
            n = data[i]
            if n & 0xC0:
                return None
            labels.append(data[i + 1:i + 1 + n].decode("ascii"))
            i += 1 + n
        i += 1
        qtype, _ = struct.unpack("!HH", data[i:i + 4])
        question = data[12:i + 4]          # as asked: evdns randomizes the case
        name = ".".join(labels).lower()
        with self.lock:
            if not self.answering:
                ans = ("DROP",)
            elif self.once.get(name):
                ans = self.once[name].pop(0)
            else:
                ans = self.records.get(name, ("NXDOMAIN",))
            self.queries.append((time.monotonic(), name, qtype, ans[0]))
            self.lock.notify_all()
        if ans[0] == "DROP":
            return None
        rcode, records = 0, []
        if ans[0] == "A" and qtype == 1:
            for a in ans[1]:
                records.append(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ans[2], 4) + socket.inet_aton(a))
        elif ans[0] == "NXDOMAIN":
            rcode = 3
        elif ans[0] == "SERVFAIL":
            rcode = 2
        rflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode   # QR AA RD RA
        return struct.pack("!HHHHHH", ident, rflags, 1, len(records), 0, 0) + question + b"".join(records)

    def close(self):
        self.closed = True
        self.thread.join(2)
        try:
            self.sock.close()
        except OSError:
            pass


class RefusedAt:
    """host:port bound, not listening: connects to it are refused."""

    def __init__(self, host, port):
        self.sock = track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        self.sock.bind((host, port))

    def close(self):
        self.sock.close()


def backends_on_one_port(handler, hosts):
    """A Backend on each of hosts (127/8 addresses), all on the same port."""
    for _ in range(20):
        first = Backend(handler, host=hosts[0])
        try:
            return [first] + [Backend(handler, host=h, port=first.port) for h in hosts[1:]]
        except OSError:
            first.close()
    raise HardError("cannot bind %s on one port" % ", ".join(hosts))


def config(upstreams, name="web", extra="", head=""):
    ups = ", ".join('"%s"' % u for u in upstreams)
    return """\
%slisten %s {
    bind = "[::1]:0"
    upstream = { %s }
%s}
""" % (head, name, ups, extra)


def session_ok(r, be, n, what, listener="web", up=1500, down=2500, seed=0):
    """One session through the relay reaches be (its n-th connection); bytes check."""
    _, cport = checked_exchange(what, r.port(listener), be, up, down, seed=seed or n)
    expect_eq(be.count(), n, "%s: connections the upstream has seen" % what)
    return r.check_session(what, cport, up, down)


def log_count(r, regex):
    return len(re.findall(regex, r.log_text(), re.M))


def case_many_sessions_one_query():
    "200 sessions over 2 workers to a name (TTL 300): one DNS query, at start; the listening line names its address"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=300)
    be = Backend(sink_source(2500), host="127.0.0.2")
    r = Relay(config=config(["%s:%d" % (NAME, be.port)], head="workers = 2\n"), env=dns.env())
    expect_eq(r.listeners["web"][2], "%s:%d (127.0.0.2)" % (NAME, be.port),
              "the listening line: the name as written, with its address")
    expect_eq(dns.count(NAME), 1, "queries before the listening line")
    for i in range(200):
        session_ok(r, be, i + 1, "session %d to the name" % (i + 1), up=500, down=2500, seed=100 + i)
    n = dns.count(NAME)
    note("  200 sessions: %d DNS queries of %s in all" % (n, NAME))
    expect(n <= 2, "200 sessions cause at most a few queries", "1 (2 at most)", n)


def case_ttl_refresh():
    "TTL 2 s (floor 1 s by the test hook): the name is asked again about every 2 s while sessions run, never per session"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=2)
    be = Backend(sink_source(2500), host="127.0.0.2")
    r = Relay(config=config(["%s:%d" % (NAME, be.port)]), env=dns.env(floor=1))
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 7.5:
        n += 1
        session_ok(r, be, n, "session %d while the TTL runs out" % n)
        time.sleep(0.1)
    times = dns.times(NAME)
    gaps = [b - a for a, b in zip(times, times[1:])]
    note("  %d sessions in %.1f s: %d queries, gaps %s" % (n, time.monotonic() - t0, len(times),
                                                          ", ".join("%.2f" % g for g in gaps)))
    expect(4 <= len(times) <= 6, "queries in 7.5 s with a TTL of 2 s (one at start, then every 2 s)",
           "4 or 5", len(times))
    expect(all(g >= 1.8 for g in gaps), "the 2 s TTL is honoured, not the 1 s floor",
           "gaps of 2 s or more", gaps)
    expect(all(g <= bound(3.5) for g in gaps), "the name is refreshed as its TTL runs out",
           "gaps of about 2 s", gaps)


def case_ttl_floor():
    "TTL 0, and a TTL with the top bit set (RFC 2181: zero), are refreshed after the floor (1 s here), not at once, not after the ceiling"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=0)
    dns.set("big.relay64.test", ["127.0.0.2"], ttl=0x80000000)
    be = Backend(sink_source(2500), host="127.0.0.2")
    r = Relay(config=config(["%s:%d" % (NAME, be.port), "big.relay64.test:%d" % be.port]),
              env=dns.env(floor=1))
    for name in (NAME, "big.relay64.test"):
        first = dns.wait_query(name, "A", 1)
        third = dns.wait_query(name, "A", 3, timeout=bound(10))
        note("  %s: 3 queries in %.2f s" % (name, third - first))
        expect(third - first >= 1.8, "%s: refreshed after the floor, not at once" % name,
               ">= 2 s for 3 queries", "%.2f s" % (third - first))
    session_ok(r, be, 1, "with a TTL of 0")


def case_dns_down():
    "DNS stops answering for 15 s: new sessions go on with the kept address, the log says so once, and once when it answers again"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=2)
    be = Backend(sink_source(2500), host="127.0.0.2")
    r = Relay(config=config(["%s:%d" % (NAME, be.port)]), env=dns.env(floor=1))
    n = 1
    session_ok(r, be, n, "before DNS stops")
    dns.stop_answering()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        n += 1
        session_ok(r, be, n, "session %d while DNS does not answer" % n)
        time.sleep(0.4)
    dropped = dns.count(NAME, "DROP")
    stale = r"DNS refresh failed \(timeout\); keeping 127\.0\.0\.2 from \d\d:\d\d:\d\d$"
    r.wait_log(r"listen web: upstream %s: %s" % (re.escape(NAME), stale), what="the stale line")
    expect_eq(log_count(r, stale), 1, "lines saying the refresh failed, over 15 s of failures")
    note("  %d sessions in 15 s without DNS, %d queries dropped" % (n - 1, dropped))
    expect(dropped <= 20, "no query per session while DNS is down", "a few retries", dropped)
    dns.start_answering()
    r.wait_log(r"listen web: upstream %s: DNS refresh works again: 127\.0\.0\.2$" % re.escape(NAME),
               timeout=bound(40), what="the recovery line")
    n += 1
    session_ok(r, be, n, "after DNS answers again")
    expect_eq(log_count(r, r"DNS refresh works again"), 1, "recovery lines")
    expect_eq(log_count(r, stale), 1, "stale lines in all")


def case_answer_changes():
    "the answer changes 127.0.0.2 -> 127.0.0.3: the change is logged, new sessions go to the new address, an open one stays"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=2)
    old, new = backends_on_one_port(sink_source(3000), ["127.0.0.2", "127.0.0.3"])
    r = Relay(config=config(["%s:%d" % (NAME, old.port)]), env=dns.env(floor=1))
    s = connect6(r.port("web"))
    cport = s.getsockname()[1]
    gate = threading.Event()
    t, open_res = duplex_thread(s, Source(4000, seed=7), tx_gate=gate)
    rec = old.wait_conns(1)
    dns.set(NAME, ["127.0.0.3"], ttl=2)
    r.wait_log(r"listen web: upstream %s: addresses changed: 127\.0\.0\.2 -> 127\.0\.0\.3$" % re.escape(NAME),
               what="the change")
    for i in range(3):
        sess = session_ok(r, new, i + 1, "new session %d after the change" % (i + 1), down=3000)
        expect_eq(sess.upstream, "127.0.0.3:%d" % old.port, "a new session's upstream")
    expect_eq(old.count(), 1, "sessions the old address got after the change")
    gate.set()
    t.join(bound(30))
    verify_exchange("the session open across the change", open_res, rec.wait(), 4000, 3000)
    sess = r.check_session("the session open across the change", cport, 4000, 3000)
    expect_eq(sess.upstream, "127.0.0.2:%d" % old.port, "the open session's upstream")


def case_nxdomain_confirmed():
    "NXDOMAIN twice in a row: the address is kept after the first, dropped after the second; then sessions fail 'cannot resolve', and work again once the name is back"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=2)
    be = Backend(sink_source(2500), host="127.0.0.2")
    r = Relay(config=config(["%s:%d" % (NAME, be.port)]), env=dns.env(floor=1))
    session_ok(r, be, 1, "before NXDOMAIN")
    dns.set_error(NAME, "NXDOMAIN")
    first = dns.wait_query(NAME, "NXDOMAIN", 1)
    r.wait_log(r"upstream %s: DNS says no such name; keeping 127\.0\.0\.2 from \d\d:\d\d:\d\d until a second "
               r"query confirms it$" % re.escape(NAME), what="the first NXDOMAIN")
    r.wait_log(r"upstream %s: no such name, confirmed by a second query: dropping 127\.0\.0\.2; "
               r"new sessions fail until it resolves$" % re.escape(NAME), what="the confirmation")
    second = dns.wait_query(NAME, "NXDOMAIN", 2)
    note("  the second NXDOMAIN came %.2f s after the first" % (second - first))
    expect(second - first >= 0.9, "the confirming query is a second one, a floor later",
           ">= 1 s apart", "%.2f s" % (second - first))
    s = connect6(r.port("web"))
    c = s.getsockname()[1]
    how, got, secs = wait_closed(s, bound(10))
    expect(how in ("eof", "reset") and got == 0, "a session once NXDOMAIN is confirmed is closed, empty",
           "closed with 0 bytes", "%s, %d bytes" % (how, got))
    sess = r.session_for(c)
    expect_eq(sess.reason, "no upstream reachable (cannot resolve: %s: no such name)" % NAME,
              "the session's reason")
    expect_eq(be.count(), 1, "connections the backend got once the name was gone")
    dns.set(NAME, ["127.0.0.2"], ttl=2)
    r.wait_log(r"upstream %s: resolves again: 127\.0\.0\.2$" % re.escape(NAME), timeout=bound(20),
               what="the name back")
    session_ok(r, be, 2, "once the name is back")


def case_nxdomain_once():
    "one NXDOMAIN between good answers: nothing is dropped, sessions right after it go on"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=2)
    be = Backend(sink_source(2500), host="127.0.0.2")
    r = Relay(config=config(["%s:%d" % (NAME, be.port)]), env=dns.env(floor=1))
    session_ok(r, be, 1, "before the NXDOMAIN")
    dns.queue(NAME, ("NXDOMAIN",))
    dns.wait_query(NAME, "NXDOMAIN", 1)
    r.wait_log(r"upstream %s: DNS says no such name; keeping 127\.0\.0\.2" % re.escape(NAME),
               what="the NXDOMAIN kept at bay")
    for i in range(3):
        session_ok(r, be, 2 + i, "session %d right after the NXDOMAIN" % (i + 1))
    r.wait_log(r"upstream %s: DNS refresh works again: 127\.0\.0\.2$" % re.escape(NAME),
               what="the good answer after it")
    session_ok(r, be, 5, "after the good answer")
    expect_eq(log_count(r, r"confirmed by a second query|cannot resolve"), 0,
              "lines saying the name was dropped")


def case_every_address():
    "a name with two addresses, roundrobin with a literal after it: sessions spread over all three addresses; balance first fails over across a name's addresses"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2", "127.0.0.3"], ttl=300)
    bes = backends_on_one_port(sink_source(2500), ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    port = bes[0].port
    r = Relay(config=config(["%s:%d" % (NAME, port), "127.0.0.4:%d" % port],
                            extra="    balance = roundrobin\n"), env=dns.env())
    expect_eq(r.listeners["web"][2], "%s:%d (127.0.0.2, 127.0.0.3),127.0.0.4:%d" % (NAME, port, port),
              "the listening line")
    order = []
    for i in range(6):
        before = [b.count() for b in bes]
        client, cport = exchange(r.port("web"), 1000, seed=200 + i, rx_limit=2500)
        got = wait_until(lambda: [j for j, b in enumerate(bes) if b.count() > before[j]], bound(10))
        expect(len(got) == 1, "roundrobin session %d reached one backend" % (i + 1), "one", got)
        order.append(bes[got[0]].host)
        verify_exchange("roundrobin session %d" % (i + 1), client, bes[got[0]].conns[-1].wait(), 1000, 2500)
        r.check_session("roundrobin session %d" % (i + 1), cport, 1000, 2500)
    counts = [b.count() for b in bes]
    note("  roundrobin over 127.0.0.2, 127.0.0.3, 127.0.0.4: %s" % ", ".join(order))
    expect_eq(counts, [2, 2, 2], "sessions per address, 6 sessions")

    # failover: the first address refuses
    dns.set("fo.relay64.test", ["127.0.0.5", "127.0.0.2"], ttl=300)
    RefusedAt("127.0.0.5", port)
    r2 = Relay(config=config(["fo.relay64.test:%d" % port], name="fo"), env=dns.env())
    sess = session_ok(r2, bes[0], 3, "failover across the name's addresses", listener="fo")
    expect_eq(sess.upstream, "127.0.0.2:%d" % port, "failover: the session's upstream")
    r2.wait_log(r"upstream 127\.0\.0\.5:%d: Connection refused" % port, what="the refused first address")


def _hosts_localhost():
    try:
        with open("/etc/hosts") as f:
            for line in f:
                fields = line.split("#")[0].split()
                if len(fields) >= 2 and fields[0] == "127.0.0.1" and "localhost" in fields[1:]:
                    return True
    except OSError:
        pass
    return False


def case_hosts_first():
    "localhost comes from /etc/hosts: DNS is never asked, even though it would answer something else"
    if not _hosts_localhost():
        raise Skip("/etc/hosts has no '127.0.0.1 localhost' line")
    dns = DnsServer()
    dns.set("localhost", ["127.0.0.9"], ttl=300)
    be = Backend(sink_source(2500))
    r = Relay(args=["[::1]:0", "localhost:%d" % be.port], env=dns.env())
    expect_eq(r.listeners["cmdline"][2], "localhost:%d (127.0.0.1)" % be.port, "the listening line")
    for i in range(3):
        session_ok(r, be, i + 1, "session %d to localhost" % (i + 1), listener="cmdline")
    expect_eq(dns.count("localhost"), 0, "DNS queries for localhost")


def case_resolve_once():
    "resolve_once(), for a check of the configuration: /etc/hosts first, then DNS, every address, the reason when there is none"
    prog = os.environ.get("RELAY64_RESOLVE_ONCE")
    if not prog or not os.access(prog, os.X_OK):
        raise Skip("RELAY64_RESOLVE_ONCE is not an executable (run through make check)")
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2", "127.0.0.3"], ttl=60)
    dns.set_error("gone.relay64.test", "NXDOMAIN")
    dns.set_error("empty.relay64.test", "NODATA")
    dns.set("localhost", ["127.0.0.9"])
    names = [NAME, "gone.relay64.test", "empty.relay64.test"]
    expect_lines = ["%s: 127.0.0.2, 127.0.0.3" % NAME, "gone.relay64.test: cannot resolve: no such name",
                    "empty.relay64.test: cannot resolve: no IPv4 address"]
    if _hosts_localhost():
        names.append("localhost")
        expect_lines.append("localhost: 127.0.0.1")
    p = subprocess.run(WRAPPER + [prog] + names, capture_output=True, text=True, env=dns.env(),
                       timeout=bound(20))
    expect(relaytest._sanitizer_re.search(p.stderr) is None, "no sanitizer report", "none", p.stderr)
    expect_eq(p.stdout.splitlines(), expect_lines, "what resolve_once() found (stderr %r)" % p.stderr)
    expect_eq(p.returncode, 1, "exit status with names that do not resolve")
    expect_eq(dns.count(NAME), 1, "DNS queries of %s" % NAME)
    expect_eq(dns.count("localhost"), 0, "DNS queries of localhost")
    dns.stop_answering()
    p = subprocess.run(WRAPPER + [prog, NAME], capture_output=True, text=True, env=dns.env(),
                       timeout=bound(20))
    expect_eq((p.stdout, p.returncode), ("%s: cannot resolve: timeout\n" % NAME, 1),
              "resolve_once() without an answer")


def case_unresolved_at_start():
    "DNS does not answer at start: a warning, the relay starts anyway; sessions fail 'cannot resolve' until DNS answers, then work without a reload"
    dns = DnsServer()
    dns.stop_answering()
    be = Backend(sink_source(2500), host="127.0.0.2")
    t0 = time.monotonic()
    r = Relay(config=config(["%s:%d" % (NAME, be.port)]), env=dns.env(floor=1))
    note("  started in %.1f s without an answer" % (time.monotonic() - t0))
    expect_eq(r.listeners["web"][2], "%s:%d (cannot resolve: timeout)" % (NAME, be.port), "the listening line")
    r.wait_log(r"listen web: upstream %s: cannot resolve \(timeout\); sessions to it fail until it resolves$"
               % re.escape(NAME), what="the warning")
    s = connect6(r.port("web"))
    c = s.getsockname()[1]
    how, got, secs = wait_closed(s, bound(10))
    expect(how in ("eof", "reset") and got == 0, "a session without any answer is closed, empty",
           "closed with 0 bytes", "%s, %d bytes" % (how, got))
    expect(secs < bound(2), "a session without any answer fails at once (no wait for DNS)",
           "under 2 s", "%.2f s" % secs)
    expect_eq(r.session_for(c).reason, "no upstream reachable (cannot resolve: %s: timeout)" % NAME,
              "the session's reason")
    dns.set(NAME, ["127.0.0.2"], ttl=300)
    dns.start_answering()
    r.wait_log(r"upstream %s: resolves now: 127\.0\.0\.2$" % re.escape(NAME), timeout=bound(30),
               what="the first answer")
    session_ok(r, be, 1, "once DNS answers")


def case_reload():
    "a reload asks DNS again; with DNS down it keeps the answer and does not wait; a name it adds is resolved before the reload is done"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=300)
    dns.set("new.relay64.test", ["127.0.0.3"], ttl=300)
    a, b = backends_on_one_port(sink_source(2500), ["127.0.0.2", "127.0.0.3"])
    text = config(["%s:%d" % (NAME, a.port)])
    r = Relay(config=text, env=dns.env())
    expect_eq(dns.count(NAME), 1, "queries at start")
    r.send_signal(signal.SIGHUP)
    r.wait_log(r"^relay64: reloaded ", what="the first reload")
    wait_until(lambda: dns.count(NAME) >= 2, bound(5))
    expect_eq(dns.count(NAME), 2, "queries after a reload")
    session_ok(r, a, 1, "after the reload")

    dns.stop_answering()
    t0 = time.monotonic()
    r.send_signal(signal.SIGHUP)
    wait_until(lambda: log_count(r, r"^relay64: reloaded ") >= 2, bound(10))
    secs = time.monotonic() - t0
    expect(log_count(r, r"^relay64: reloaded ") == 2 and secs < bound(1.5),
           "a reload with DNS down and a known answer does not wait for DNS", "reloaded at once",
           "%.2f s" % secs)
    expect(re.search(r"listen web: kept on \[::1\]:%d, upstream %s:%d \(127\.0\.0\.2\);"
                     % (r.port("web"), re.escape(NAME), a.port), r.log_text(), re.M),
           "the kept line names the kept address", "kept on ..., upstream %s:%d (127.0.0.2)" % (NAME, a.port),
           r.log_text()[-600:])
    session_ok(r, a, 2, "after a reload with DNS down")
    r.wait_log(r"DNS refresh failed \(timeout\); keeping 127\.0\.0\.2 from", what="the reload's failed query")
    dns.start_answering()

    with open(r.confpath, "w") as f:
        f.write(text + config(["new.relay64.test:%d" % a.port], name="more"))
    r.send_signal(signal.SIGHUP)
    wait_until(lambda: log_count(r, r"^relay64: reloaded ") >= 3, bound(10))
    m = r.wait_log(r"listen more: listening on \[::1\]:(\d+), upstream new\.relay64\.test:%d \(127\.0\.0\.3\);"
                   % a.port, what="the new listener's line")
    r.listeners["more"] = ("::1", int(m.group(1)), "")
    session_ok(r, b, 1, "the reload's new name, at once", listener="more")
    r.rebaseline()      # the new listener's sockets


def case_reload_drops_name():
    "a reload removes the listener of a name while a session to it is open: the name is asked no more, the session runs on whole and ends"
    dns = DnsServer()
    dns.set(NAME, ["127.0.0.2"], ttl=2)
    be = Backend(sink_source(3000), host="127.0.0.2")
    other = Backend(sink_source(2500))
    keep = config([other.addr], name="keep")
    r = Relay(config=config(["%s:%d" % (NAME, be.port)]) + keep, env=dns.env(floor=1))
    s = connect6(r.port("web"))
    cport = s.getsockname()[1]
    gate = threading.Event()
    t, res = duplex_thread(s, Source(5000, seed=9), tx_gate=gate)
    rec = be.wait_conns(1)
    with open(r.confpath, "w") as f:
        f.write(keep)
    r.send_signal(signal.SIGHUP)
    r.wait_log(r"^relay64: reloaded ", what="the reload")
    r.wait_log(r"listen web: removed; 1 open sessions run on$", what="the removed listener")
    time.sleep(0.5)
    n = dns.count(NAME)
    time.sleep(3.5)
    expect_eq(dns.count(NAME), n, "queries of the removed listener's name over 3.5 s (TTL 2 s)")
    gate.set()
    t.join(bound(30))
    verify_exchange("the session of the removed listener", res, rec.wait(), 5000, 3000)
    r.check_session("the session of the removed listener", cport, 5000, 3000)
    session_ok(r, other, 1, "the listener kept", listener="keep")
    r.rebaseline()      # the removed listener's sockets are gone


def case_stop_while_waiting():
    "SIGHUP and SIGTERM while the start waits for DNS: the reload waits for the start; SIGTERM exits 0 at once"
    dns = DnsServer()
    dns.stop_answering()
    # a 3 s timeout, two tries: the start waits 6 s for the name
    r = Relay(config=config(["%s:9" % NAME]), env=dns.env(timeout=3), wait=False)
    dns.wait_query(NAME, "DROP", 1)
    r.send_signal(signal.SIGHUP)
    r.wait_log(r"SIGHUP: reloading once the start is done$", what="SIGHUP before the start")
    r.send_signal(signal.SIGTERM)
    st = r.wait_exit(bound(5), "SIGTERM while waiting for DNS")
    r.check_exit(st, 0, "exit status of a stop while waiting for DNS")
    expect("listening on" not in r.log_text(), "no listener started", "no 'listening on' line", r.log_text())

    r2 = Relay(config=config(["%s:9" % NAME]), env=dns.env(timeout=3), wait=False)
    dns.wait_query(NAME, "DROP", 2)
    r2.send_signal(signal.SIGHUP)
    r2.wait_ready()
    r2.wait_log(r"^relay64: reloaded ", what="the reload asked for during the start")


if __name__ == "__main__":
    main([case_many_sessions_one_query, case_ttl_refresh, case_ttl_floor, case_dns_down, case_answer_changes,
          case_nxdomain_confirmed, case_nxdomain_once, case_every_address, case_hosts_first,
          case_resolve_once, case_unresolved_at_start, case_reload, case_reload_drops_name,
          case_stop_while_waiting], overall=300)
