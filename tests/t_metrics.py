#!/usr/bin/env python3
"""Metrics (`stats`) and SIGUSR1: exact counters after known traffic, read with an
independent parser (Debian's prometheus_client text parser) and promtool; a real
Prometheus server scraping relay64; many scrapes at once during traffic; bad requests;
reloads that move or remove the endpoint; the SIGUSR1 report."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from relaytest import *

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's package sits beside the system python3, which may not be this one.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None

_stats_re = re.compile(r"^relay64: stats: serving http://(\S+)/metrics$", re.M)


def _config(a_up, b_up, stats='"[::1]:0"', extra=""):
    return """\
workers = 2
%s
%s
listen a {
    bind = "[::1]:0"
    upstream = "%s"
}
listen b {
    bind = "[::1]:0"
    upstream = "%s"
}
""" % ("stats = %s" % stats if stats else "", extra, a_up, b_up)


def _stats_url(r, nth=-1):
    # logged after the listeners' lines, which the Relay waited for
    r.wait_log(_stats_re.pattern, what="the stats line")
    m = _stats_re.findall(r.log_text())
    if not m:
        raise Fail("no 'stats: serving' line in the log:\n%s" % r.log_text())
    return "http://%s/metrics" % m[nth]


def _get(url, method="GET", timeout=None):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=bound(10) if timeout is None else timeout) as f:
            return f.status, f.headers.get("Content-Type"), f.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, None, ""


def _parse(text):
    """{(name, frozenset(labels.items())): value} through prometheus_client's parser."""
    if text_string_to_metric_families is None:
        raise Skip("python3-prometheus-client is not installed")
    out, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out, types


def _v(m, name, **labels):
    key = (name, frozenset(labels.items()))
    if key not in m:
        raise Fail("no sample %s%s in the scrape" % (name, labels))
    return m[key]


def case_exact_counts():
    "known traffic, then a scrape: sessions, bytes each way, ends and failures by reason, the histogram, exact"
    down = 7000
    be = Backend(sink_source(down))
    dead = RefusedPort()
    r = Relay(config=_config(be.addr, dead.addr))
    sizes = [1000, 20000, 300000, 5, 123456]
    for i, n in enumerate(sizes):
        _, cport = checked_exchange("session %d" % (i + 1), r.port("a"), be, n, down, seed=i + 1)
        r.check_session("session %d" % (i + 1), cport, n, down)
    for i in range(2):
        c = connect6(r.port("b"))
        wait_closed(c, bound(10))
    wait_until(lambda: len(r.sessions()) >= 7, bound(10))
    st, ctype, text = _get(_stats_url(r))
    expect_eq(st, 200, "HTTP status of /metrics")
    expect_eq(ctype, "text/plain; version=0.0.4; charset=utf-8", "Content-Type")
    m, types = _parse(text)
    expect_eq(_v(m, "relay64_sessions_total", listener="a"), 5, "sessions_total{a}")
    expect_eq(_v(m, "relay64_sessions_active", listener="a"), 0, "sessions_active{a}")
    expect_eq(_v(m, "relay64_bytes_total", listener="a", direction="up"), sum(sizes), "bytes up{a}")
    expect_eq(_v(m, "relay64_bytes_total", listener="a", direction="down"), 5 * down, "bytes down{a}")
    expect_eq(_v(m, "relay64_session_end_total", listener="a", reason="done"), 5, "ends done{a}")
    expect_eq(_v(m, "relay64_session_duration_seconds_count", listener="a"), 5, "histogram count{a}")
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in m.items()
                      if k[0] == "relay64_session_duration_seconds_bucket" and dict(k[1])["listener"] == "a"))
    expect(all(buckets[i][1] <= buckets[i + 1][1] for i in range(len(buckets) - 1)),
           "histogram buckets are cumulative", "non-decreasing", buckets)
    expect_eq(buckets[-1], (float("inf"), 5), "the +Inf bucket")
    secs = sum(s.secs for s in r.sessions() if s.listener == "a")
    total = _v(m, "relay64_session_duration_seconds_sum", listener="a")
    expect(abs(total - secs) < 0.01 * 5 + 0.001, "histogram sum = the sessions' durations",
           "%.3f s" % secs, "%.6f s" % total)
    expect_eq(_v(m, "relay64_sessions_total", listener="b"), 2, "sessions_total{b}")
    expect_eq(_v(m, "relay64_session_end_total", listener="b", reason="no_upstream"), 2, "ends no_upstream{b}")
    expect_eq(_v(m, "relay64_upstream_failures_total", listener="b", reason="refused"), 2,
              "upstream failures refused{b}")
    expect_eq(_v(m, "relay64_bytes_total", listener="b", direction="up"), 0, "bytes up{b}")
    for reason in ("idle_timeout", "client_reset", "upstream_reset", "error", "drain"):
        expect_eq(_v(m, "relay64_session_end_total", listener="a", reason=reason), 0, "ends %s{a}" % reason)
    for reason in ("acl", "per_source", "accept_proxy"):
        expect_eq(_v(m, "relay64_refused_total", listener="a", reason=reason), 0, "refused %s{a}" % reason)
    expect_eq(_v(m, "relay64_dns_answers_stale", listener="a"), 0, "dns_answers_stale{a}")
    fds = _v(m, "relay64_descriptors_open")
    expect(abs(fds - r.fd_count()) <= 2, "descriptors_open is the relay's count", r.fd_count(), fds)
    soft = int(open("/proc/%d/limits" % r.pid).read().split("Max open files")[1].split()[0])
    expect_eq(_v(m, "relay64_descriptors_budget"), soft, "descriptors_budget = RLIMIT_NOFILE")
    expect_eq(types.get("relay64_session_duration_seconds"), "histogram", "the duration's type")
    expect_eq(types.get("relay64_sessions_active"), "gauge", "sessions_active's type")
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=bound(20))
        expect_eq((p.returncode, p.stdout + p.stderr), (0, ""), "promtool check metrics")
    else:
        note("  promtool not installed: lint skipped")


def case_bad_requests():
    "garbage, a wrong path, a wrong method, a scraper that never finishes: 400/404/501, dropped, the relay unharmed"
    be = Backend(echo())
    r = Relay(config=_config(be.addr, be.addr))
    url = _stats_url(r)
    host, port = re.match(r"http://\[(.*)\]:(\d+)/", url).groups()
    expect_eq(_get(url.replace("/metrics", "/other"))[0], 404, "status of /other")
    expect_eq(_get(url, method="POST")[0], 501, "status of POST /metrics")
    s = socket.create_connection((host, int(port)), timeout=bound(10))
    s.sendall(b"\x00\x01garbage\r\n\r\n")
    reply = s.recv(200)
    s.close()
    expect(reply.startswith(b"HTTP/1.1 400"), "garbage gets 400", "HTTP/1.1 400 ...", reply[:40])
    slow = socket.create_connection((host, int(port)), timeout=bound(20))
    slow.sendall(b"GET /metr")
    how, got, secs = wait_closed(slow, bound(20))
    expect(how in ("eof", "reset") and secs < bound(10), "a scraper that never finishes is dropped",
           "closed within about 5 s", "%s after %.1f s" % (how, secs))
    expect_eq(_get(url)[0], 200, "a scrape after the bad requests")
    checked_exchange("a session after the bad requests", r.port("a"), be, 40000, 40000)
    r.check_fds("after bad requests")


def case_many_scrapes_during_traffic():
    "50 scrapers at once, 10 scrapes each, during bulk traffic: every scrape parses, bytes arrive whole, no descriptor left"
    be = Backend(echo())
    r = Relay(config=_config(be.addr, be.addr))
    url = _stats_url(r)
    bad = []
    done = threading.Event()

    def scraper():
        for _ in range(10):
            try:
                st, _, text = _get(url)
                if st != 200 or "relay64_sessions_total" not in text:
                    bad.append(st)
                else:
                    _parse(text)
            except Exception as e:
                bad.append(repr(e))
    results = []

    def traffic():
        for i in range(4):
            results.append(exchange(r.port("a"), 4 * MiB, seed=i + 9)[0])
        done.set()
    tt = threading.Thread(target=traffic, daemon=True)
    tt.start()
    ts = [threading.Thread(target=scraper, daemon=True) for _ in range(50)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(bound(60))
    tt.join(bound(60))
    expect_eq(bad, [], "scrapes that failed")
    for i, res in enumerate(results):
        verify_exchange("bulk session %d during the scrapes" % (i + 1), res, be.conns[i].wait(), 4 * MiB, 4 * MiB)
    m, _ = _parse(_get(url)[2])
    expect_eq(_v(m, "relay64_bytes_total", listener="a", direction="down"), 16 * MiB, "bytes down after the bulk")
    r.check_fds("after 500 scrapes")


def case_reload_moves_and_removes():
    "a reload moves the endpoint to a new port (the old one closes) and another removes it; errors name file:line"
    be = Backend(echo())
    r = Relay(config=_config(be.addr, be.addr))
    old = _stats_url(r)
    with open(r.confpath, "w") as f:
        f.write(_config(be.addr, be.addr, stats='"127.0.0.1:0"'))
    r.send_signal(signal.SIGHUP)
    r.wait_log(r"stats: serving http://127\.0\.0\.1:\d+/metrics", what="the new endpoint")
    new = _stats_url(r)
    expect_eq(_get(new)[0], 200, "a scrape of the new endpoint")
    host, port = re.match(r"http://\[(.*)\]:(\d+)/", old).groups()
    expect(refused(int(port), host), "the old endpoint is closed", "refused", "still open")
    with open(r.confpath, "w") as f:
        f.write(_config(be.addr, be.addr, stats=None))
    r.send_signal(signal.SIGHUP)
    wait_until(lambda: r.log_text().count("relay64: reloaded ") == 2, bound(10))
    expect_eq(r.log_text().count("stats: stopped serving"), 2, "'stopped serving' lines (moved, removed)")
    port = int(new.rsplit(":", 1)[1].split("/")[0])
    expect(refused(port, "::ffff:127.0.0.1"), "the removed endpoint is closed", "refused", "still open")
    r.rebaseline()
    for bad, msg in (('"localhost:9164"', r'stats "localhost:9164": not an IPv4 address'),
                     ('"[::1]:%d"' % r.port("a"), r"stats \[::1\]:\d+: overlaps bind \[::1\]:\d+ of listen a")):
        path = os.path.join(tmpdir(), "bad.conf")
        with open(path, "w") as f:
            f.write(_config(be.addr, be.addr, stats=bad).replace("listen a {\n    bind = \"[::1]:0\"",
                    "listen a {\n    bind = \"[::1]:%d\"" % r.port("a")))
        st, out, err = run_relay(["-t", "-c", path])
        expect_eq(st, 2, "exit status of -t with stats = %s" % bad)
        expect_match(r"^relay64: %s:2: %s" % (re.escape(path), msg), err, "the error for stats = %s" % bad)


def case_prometheus_scrapes():
    "a real Prometheus server scrapes relay64 every second; its API returns relay64_sessions_total"
    prom = shutil.which("prometheus")
    if not prom:
        raise Skip("prometheus is not installed")
    be = Backend(sink_source(100))
    r = Relay(config=_config(be.addr, be.addr))
    target = re.match(r"http://(.*)/metrics", _stats_url(r)).group(1)
    for i in range(3):
        res, _ = exchange(r.port("b"), 10, seed=i, rx_limit=100)
    d = tmpdir()
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: relay64\n"
                "    static_configs:\n      - targets: ['%s']\n" % target)
    log = open(os.path.join(d, "prometheus.log"), "wb")
    p = subprocess.Popen([prom, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "tsdb"),
                          "--web.listen-address=127.0.0.1:0"], stdout=log, stderr=subprocess.STDOUT)
    try:
        m = None
        deadline = time.monotonic() + bound(30)
        while m is None and time.monotonic() < deadline and p.poll() is None:
            m = re.search(rb'msg="Listening on" address=127\.0\.0\.1:(\d+)',
                          open(os.path.join(d, "prometheus.log"), "rb").read())
            time.sleep(0.2)
        if m is None:
            raise Fail("prometheus did not say where it listens:\n%s"
                       % open(os.path.join(d, "prometheus.log")).read()[-2000:])
        api = "http://127.0.0.1:%d/api/v1/query?query=relay64_sessions_total%%7Blistener%%3D%%22b%%22%%7D" \
              % int(m.group(1))
        value = None
        deadline = time.monotonic() + bound(30)
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(api, timeout=bound(5)) as f:
                    body = f.read().decode()
                mm = re.search(r'"value":\[[0-9.]+,"(\d+)"\]', body)
                if mm:
                    value = int(mm.group(1))
                    break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        expect_eq(value, 3, "relay64_sessions_total{listener=\"b\"} as Prometheus scraped it")
    finally:
        p.terminate()
        try:
            p.wait(bound(10))
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()


def case_sigusr1_report():
    "SIGUSR1: a line per listener with its counters, then a line per open session with its bytes"
    be = Backend(hold())
    r = Relay(config=_config(be.addr, be.addr, stats=None))
    socks = []
    for i in range(3):
        s = connect6(r.port("a"))
        s.sendall(b"x" * (1000 * (i + 1)))
        socks.append((s, s.getsockname()[1]))
    be.wait_conns(3)
    # the bytes sent are relayed (the upstream's buffer takes them): counted by now
    wait_until(lambda: False, 0.5)
    r.send_signal(signal.SIGUSR1)
    r.wait_log(r"(?s)(relay64: listen a: session \S+ .* open for .*){3}", what="three session lines")
    text = r.log_text()
    expect_match(r"^relay64: listen a: 3 sessions, 3 open, 6000 bytes up, 0 bytes down; ended: 0 done",
                 text, "the line of listener a")
    expect_match(r"^relay64: listen b: 0 sessions, 0 open", text, "the line of listener b")
    for s, cport in socks:
        m = re.search(r"^relay64: listen a: session [0-9a-f]{16} \[::1\]:%d -> 127\.0\.0\.1:%d open for "
                      r"[0-9.]+s, (\d+) bytes up, 0 bytes down \(relaying\)$" % (cport, be.port), text, re.M)
        expect(m is not None, "a line for the session from port %d" % cport, "present", text[-1500:])
    for s, _ in socks:
        s.close()
    for c in be.conns:
        c.gate.set()
    expect(r.running(), "the relay runs on after SIGUSR1")


if __name__ == "__main__":
    main([case_exact_counts, case_bad_requests, case_many_scrapes_during_traffic,
          case_reload_moves_and_removes, case_prometheus_scrapes, case_sigusr1_report], overall=300)
