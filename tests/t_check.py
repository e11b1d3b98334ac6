#!/usr/bin/env python3
"""relay64 -C: the bind state of each listener (free; in use by an IPv4, a dual-stack
or an IPv6-only socket, or by relay64 itself; not an address of this host), which
clients it takes, and one connect to each upstream address (reachable, refused, timed
out, no route, cannot resolve), with the exit status SPEC gives. The last cases build
an IPv4-only upstream host in a network namespace (root only)."""

import os
import re
import shutil
import socket
import subprocess
import sys

from relaytest import *


def _conf(bind, upstreams, v6only="true", extra=""):
    ups = ", ".join('"%s"' % u for u in upstreams)
    return 'listen a {\n    bind = "%s"\n    v6only = %s\n    upstream = { %s }\n%s}\n' % (
        bind, v6only, ups, extra)


def _check(text, expect_status, what):
    path = write_file("check.conf", text)
    st, out, err = run_relay(["-C", "-c", path], timeout=bound(30))
    note("  relay64 -C (%s):\n%s" % (what, "".join("    | " + line + "\n" for line in out.splitlines())))
    expect_eq(st, expect_status, "%s: exit status of relay64 -C (stderr %r)" % (what, err))
    expect("configuration OK" in out, "%s: -C prints what -t prints first" % what, "configuration OK", out)
    return out


def _held(family, v6only=None, addr=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    track(s)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((addr or ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0))
    s.listen(8)
    return s.getsockname()[1]


def case_reachable():
    "a free port and a listening upstream: free, reachable, exit 0"
    be = Backend(echo())
    out = _check(_conf("[::1]:0", [be.addr]), 0, "reachable")
    expect_match(r"^listen a: bind \[::1\]:0: free", out, "the bind state")
    expect_match(r"^listen a: takes IPv6 clients of this address only; no PROXY header", out, "the families")
    expect_match(r"^listen a: upstream %s: reachable \(connected in [0-9.]+ ms; nothing sent\)$"
                 % re.escape(be.addr), out, "the upstream")
    expect_match(r"^check: 1 of 1 listeners can bind, 1 of 1 reach an upstream: OK$", out, "the summary")
    rec = be.wait_conns(1).wait()
    expect_eq(rec.rx_len, 0, "bytes -C sent to the upstream")


def case_refused_and_timeout():
    "a refused port and one whose connects hang: refused (with the likely cause), timed out after connect-timeout, exit 1"
    dead = RefusedPort()
    hang = FullBacklog()
    out = _check(_conf("[::1]:0", [dead.addr, hang.addr], extra="    connect-timeout = 1\n"), 1, "failing")
    expect_match(r"^listen a: upstream %s: refused: nothing listens on %s, or a firewall rejects it; "
                 r"check ss -ltn on that host$" % (re.escape(dead.addr), re.escape(dead.addr)), out, "refused")
    expect_match(r"^listen a: upstream %s: timed out after 1 s: the host is down, or a firewall drops the "
                 r"packets" % re.escape(hang.addr), out, "timed out")
    expect_match(r"^check: 1 of 1 listeners can bind, 0 of 1 reach an upstream: FAILED$", out, "the summary")


def case_port_held():
    "a port held by an IPv4, a dual-stack and an IPv6-only socket: each named, with what it means; exit 1"
    be = Backend(echo())
    p4 = _held(socket.AF_INET)
    out = _check(_conf("[::]:%d" % p4, [be.addr], v6only="false"), 1, "held by IPv4")
    expect_match(r"^listen a: bind \[::\]:%d: in use by an IPv4 socket on 0\.0\.0\.0 by python3 \(pid %d\): "
                 r"an IPv4 socket holds the port, so IPv4 clients reach it" % (p4, os.getpid()), out, "IPv4 holder")
    out = _check(_conf("[::]:%d" % p4, [be.addr], v6only="true"), 0, "v6only beside an IPv4 socket")
    expect_match(r"^listen a: bind \[::\]:%d: free$" % p4, out, "v6only binds beside it")
    expect_match(r"^listen a: note: port %d is held for IPv4 by an IPv4 socket on 0\.0\.0\.0 by python3 "
                 r"\(pid %d\): IPv4 clients reach that program, not relay64$" % (p4, os.getpid()), out,
                 "the note that explains 'IPv6 works, IPv4 not'")
    pd = _held(socket.AF_INET6, v6only=0)
    out = _check(_conf("[::]:%d" % pd, [be.addr]), 1, "held by dual-stack")
    expect_match(r"^listen a: bind \[::\]:%d: in use by a dual-stack socket on :: by python3 \(pid %d\): "
                 r"IPv6 and IPv4 clients of this port reach that program$" % (pd, os.getpid()), out,
                 "dual-stack holder")
    p6 = _held(socket.AF_INET6, v6only=1)
    out = _check(_conf("[::]:%d" % p6, [be.addr]), 1, "held by IPv6-only")
    expect_match(r"^listen a: bind \[::\]:%d: in use by an IPv6-only socket on :: by python3 \(pid %d\): "
                 r"an IPv6 socket holds the port for IPv6 clients$" % (p6, os.getpid()), out, "IPv6-only holder")


def case_while_running():
    "-C while relay64 runs the same configuration: its listeners are in use by relay64, exit 0"
    be = Backend(echo())
    r = Relay(config=_conf("[::1]:0", [be.addr]))
    port = r.port("a")
    out = _check(_conf("[::1]:%d" % port, [be.addr]), 0, "while running")
    expect_match(r"^listen a: bind \[::1\]:%d: in use by relay64 \(an IPv6 socket on ::1 by relay64 "
                 r"\(pid %d\); an IPv6 socket on ::1 by relay64 \(pid %d\)\): this configuration runs already$"
                 % (port, r.pid, r.pid), out, "in use by relay64")


def case_not_local():
    "an address that is not on this host: said so, exit 1"
    be = Backend(echo())
    out = _check(_conf("[2001:db8::7:1]:80", [be.addr]), 1, "not local")
    expect_match(r"^listen a: bind \[2001:db8::7:1\]:80: not an address of this host", out, "not local")


def _root_tools(*tools):
    if os.geteuid() != 0:
        raise Skip("needs root (network namespaces, mounts)")
    for t in tools:
        if not shutil.which(t):
            raise Skip("%s is not installed" % t)


def case_cannot_resolve():
    "an upstream name that does not resolve (a resolv.conf of the test's own, no server): cannot resolve, exit 1"
    _root_tools("unshare")
    be = Backend(echo())
    path = write_file("check.conf", _conf("[::1]:0", ["no-such-host.test:80", be.addr]))
    resolv = write_file("resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    cmd = WRAPPER + [os.environ["RELAY64"], "-C", "-c", path]
    p = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                        resolv] + cmd, capture_output=True, text=True, timeout=bound(30))
    if p.returncode not in (0, 1):
        raise Skip("cannot run in a mount namespace here: %s" % p.stderr.strip())
    expect_match(r"^listen a: upstream no-such-host\.test:80: cannot resolve: ", p.stdout, "cannot resolve")
    expect_match(r"^listen a: upstream %s: reachable" % re.escape(be.addr), p.stdout, "the other upstream")
    expect_eq(p.returncode, 0, "exit status: one upstream of the listener is reachable")


# The namespace's subnet, from the benchmarking range (RFC 2544): nothing on it
# is anywhere but in the namespace, and its blackholed address stays on-link.
NS_HERE, NS_THERE, NS_HOLE = "198.18.64.1", "198.18.64.2", "198.18.64.9"


class _Netns:
    """An IPv4-only host in a network namespace, joined to this one by a veth pair:
    this side NS_HERE/24, that side NS_THERE/24."""

    def __init__(self):
        self.name = "r64chk%d" % os.getpid()
        self.veth = "r64c%d" % (os.getpid() % 100000)
        self.ok = False
        routes = subprocess.run(["ip", "-4", "route", "show", "to", "match", NS_THERE], capture_output=True,
                                text=True).stdout.splitlines()
        addrs = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
        if [r for r in routes if not r.startswith("default")] or "198.18.64." in addrs:
            raise Skip("198.18.64.0/24 is in use on this host: %s" % routes)
        track(self)
        self._run("ip", "netns", "add", self.name)
        self.ok = True
        self._run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        self._run("ip", "addr", "add", NS_HERE + "/24", "dev", self.veth)
        self._run("ip", "link", "set", self.veth, "up")
        self._ns("ip", "addr", "add", NS_THERE + "/24", "dev", "eth0")
        self._ns("ip", "link", "set", "eth0", "up")
        self._ns("ip", "link", "set", "lo", "up")
        # The server host has no IPv6 at all.
        self._ns("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")

    def _run(self, *cmd):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise Skip("%s: %s" % (" ".join(cmd), p.stderr.strip()))

    def _ns(self, *cmd):
        self._run("ip", "netns", "exec", self.name, *cmd)

    def server(self, port):
        """A TCP listener on 192.0.2.2:port inside the namespace (a Python one-liner)."""
        code = ("import socket,time;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                "s.bind(('%s',%d));s.listen(8);print('up',flush=True);time.sleep(600)" % (NS_THERE, port))
        p = subprocess.Popen(["ip", "netns", "exec", self.name, sys.executable, "-c", code],
                             stdout=subprocess.PIPE, text=True)
        self.procs = getattr(self, "procs", []) + [p]
        expect_eq(p.stdout.readline().strip(), "up", "the namespace's server is up")

    def close(self):
        for p in getattr(self, "procs", []):
            p.kill()
            p.wait()
        if self.ok:
            subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            subprocess.run(["ip", "route", "del", "blackhole", NS_HOLE + "/32"], capture_output=True)
            self.ok = False


def case_ipv4_only_host():
    "an IPv4-only upstream host in a namespace: its open port reachable, a closed one refused, a blackholed address no route"
    _root_tools("ip")
    ns = _Netns()
    ns.server(8080)
    ns._run("ip", "route", "add", "blackhole", NS_HOLE + "/32")
    route = subprocess.run(["ip", "route", "get", NS_HOLE], capture_output=True, text=True)
    expect(route.stdout.startswith("blackhole") or route.returncode != 0, "the blackhole route is in place",
           "blackhole", route.stdout + route.stderr)
    there = re.escape(NS_THERE)
    out = _check(_conf("[::1]:0", [NS_THERE + ":8080", NS_THERE + ":8081", NS_HOLE + ":80"],
                       extra="    connect-timeout = 2\n"), 0, "IPv4-only host")
    expect_match(r"^listen a: upstream %s:8080: reachable" % there, out, "the open port")
    expect_match(r"^listen a: upstream %s:8081: refused" % there, out, "the closed port")
    expect_match(r"^listen a: upstream %s:80: no route: this host cannot reach %s" % (re.escape(NS_HOLE),
                 re.escape(NS_HOLE)), out, "the blackholed address")


if __name__ == "__main__":
    main([case_reachable, case_refused_and_timeout, case_port_held, case_while_running, case_not_local,
          case_cannot_resolve, case_ipv4_only_host], overall=240)
